"""Errors the pipeline raises on purpose. Their messages are meant for users: what, where, what next."""


class PipelineError(RuntimeError):
    """A run cannot go on; the message says why and what to do."""


class RawFileError(ValueError):
    """A raw input file cannot be read as the long-format contract; the file is quarantined, the run goes on."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"file '{name}': {reason}")
        self.name = name
        self.reason = reason

"""Errors the pipeline raises on purpose, and how they are shown.

Their messages are meant for users (what, where, what next), so the console shows them as one line, not
as a traceback: Prefect logs every failed task and flow run with its traceback, and `quiet_expected_errors`
drops the traceback from those records when the exception is one of these. Unexpected exceptions keep
theirs. `LSTM_FORECAST_DEBUG=1` (the CLI's `--debug`) keeps every traceback.
"""

from __future__ import annotations

import logging
import os

DEBUG_VARIABLE = "LSTM_FORECAST_DEBUG"


class PipelineError(RuntimeError):
    """A run cannot go on; the message says why and what to do."""


class RawFileError(ValueError):
    """A raw input file cannot be read as the long-format contract; the file is quarantined, the run goes on."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"file '{name}': {reason}")
        self.name = name
        self.reason = reason


class UsageError(ValueError):
    """A command-line argument or setting is invalid; nothing has run."""


EXPECTED_ERRORS = (PipelineError, RawFileError, UsageError)


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


class _WithoutTraceback(logging.Filter):
    """Rewrites Prefect's "Task run failed with exception: PipelineError('...')" + traceback records into
    "Task run failed: ..." when the exception is an expected one (see the module docstring)."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, EXPECTED_ERRORS) and not debug_enabled():
            record.msg, record.args = f"{self.what} failed: {error}", ()
            record.exc_info, record.exc_text = None, None
        return True


# The loggers of Prefect's task and flow run loggers; a filter on a logger sees the records it creates.
_RUN_LOGGERS = {"prefect.task_runs": "Task run", "prefect.flow_runs": "Flow run"}


def quiet_expected_errors() -> None:
    """Install the filter on Prefect's run loggers (idempotent; Prefect's logging set-up keeps filters)."""
    for name, what in _RUN_LOGGERS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WithoutTraceback) for f in logger.filters):
            logger.addFilter(_WithoutTraceback(what))

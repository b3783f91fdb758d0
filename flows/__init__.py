"""Prefect flows (the pipeline's table of contents) and the `lstm-forecast` command line."""

import tasks  # noqa: F401 - sets the quiet/offline environment defaults before Prefect is imported

"""Prefect flows (the pipeline's table of contents) and the `lstm-forecast` command line."""

import tasks  # noqa: F401 - sets the quiet/offline environment defaults before Prefect is imported

from forecasting.errors import quiet_expected_errors  # noqa: E402 - after the environment defaults above

quiet_expected_errors()  # expected errors (bad input, bad settings) reach the console as one line each

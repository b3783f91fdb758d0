"""Import the libraries the flow's tasks need while Prefect starts its API.

Without PREFECT_API_URL each command starts a temporary Prefect server (a subprocess) before the flow's first
task: about 4 s on two cores with an existing PREFECT_HOME, 11 s where its database is created first. The
main thread only waits for it. The tasks then import Great Expectations (validation, about 1.5 s) and
TensorFlow through Keras (training, about 2.5 s), one after the other, while the flow waits for them. A
background thread imports both during the server's start instead; a task that needs one sooner waits for
the import in progress (Python's import lock), so nothing runs half-imported.
"""

from __future__ import annotations

import importlib
import threading

# The modules the tasks import when they run (forecasting/validation.py, forecasting/model/*), slowest first.
TASK_LIBRARIES = ("keras", "great_expectations")


def import_in_background(modules: tuple[str, ...] = TASK_LIBRARIES) -> threading.Thread:
    """Start importing `modules` in a daemon thread (a failed import is left for the task that needs the
    module to raise, with its own message) and return the thread."""

    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the task importing it reports the failure where it matters
                pass

    thread = threading.Thread(target=load, name="import-task-libraries", daemon=True)
    thread.start()
    return thread

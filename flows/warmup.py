"""Import the libraries the flow's tasks need in the background, while the flow starts and runs its first tasks.

The tasks import Great Expectations (validation, about 1.5 s on two cores) and TensorFlow through Keras
(training, about 2.5 s) when they run, one after the other, while the flow waits for them. A background
thread started once the flow's module is imported brings them in while the command waits for the Prefect
API (flows/local_api.py) and runs ingestion; a task that needs one sooner waits for the import in progress
(Python's import lock), so nothing runs half-imported.
"""

from __future__ import annotations

import importlib
import threading

# The modules the tasks import when they run, in the order the flow needs them: validation's
# (forecasting/validation.py) a few seconds after the flow starts, training's (forecasting/model/*) later.
TASK_LIBRARIES = ("great_expectations", "keras")


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

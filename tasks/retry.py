"""Retry conditions for Prefect tasks: retry what can heal by itself (I/O, databases), never bad data or bugs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def retry_on(*transient: type[BaseException]) -> Callable[[Any, Any, Any], bool]:
    """A `retry_condition_fn` that retries only when the task failed with one of `transient`."""

    def should_retry(task: Any, task_run: Any, state: Any) -> bool:
        try:
            state.result()
        except transient:
            return True
        except Exception:  # noqa: BLE001 - anything else is not transient
            return False
        return False

    return should_retry

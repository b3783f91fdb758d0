"""Retries of the stage tasks: retry what can heal by itself (I/O, databases), never bad data or bugs.

Every stage retries: each writes its outputs atomically to its run date's partition (a rerun replaces
them whole) and the model registry registers a version once, so a retry never duplicates or corrupts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Attempts after the first, and the waits before them: a share, object store or database that went away
# usually comes back within seconds to a minute.
RETRIES = 3
RETRY_DELAYS = [2, 10, 30]


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


def retrying(*transient: type[BaseException]) -> dict[str, Any]:
    """`@task` options that retry the task when it failed with one of `transient` (default: OSError, a file
    system, share or object store that went away)."""
    return {"retries": RETRIES, "retry_delay_seconds": RETRY_DELAYS,
            "retry_condition_fn": retry_on(*(transient or (OSError,)))}

"""Telling people: the Prefect notification block named by the `notify_block` setting
(`<block-type>/<block-name>`, e.g. `slack-webhook/forecast-alerts`), used for failed runs (flows/hooks.py)
and for drift (tasks/accuracy.py). Without the setting nothing is sent; the run's artifacts still say it."""

from __future__ import annotations

from typing import Any


def notify(block_name: str | None, subject: str, body: str) -> bool:
    """Send `body` through the named notification block; False when no block is configured."""
    if not block_name:
        return False
    from prefect.blocks.core import Block

    Block.load(block_name).notify(body=body, subject=subject)
    return True


def notify_or_log(block_name: str | None, subject: str, body: str, log: Any) -> None:
    """notify(), for a running task: a notification that cannot be sent is logged, never fails the run."""
    try:
        if notify(block_name, subject, body):
            log.info("Notified %s: %s", block_name, subject)
    except Exception as exc:  # noqa: BLE001 - the alert is in the artifact anyway; a dead webhook must not stop the run
        log.warning("Could not notify %s (%s: %s); the run's artifact says the same", block_name,
                    type(exc).__name__, exc)

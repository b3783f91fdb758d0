"""What every flow does when it fails: say so where people look.

`report_failure` is each flow's `on_failure` hook. It leaves a `run-failure` markdown artifact on the run
(the error, the task runs that failed, and what was kept: nothing is published by a failed run, so the
previous forecasts stay), and when the `notify_block` setting names a Prefect notification block
(`<block-type>/<block-name>`, e.g. `slack-webhook/forecast-alerts`) it sends the same text there. A hook
must not turn one failure into two: its own errors are logged, never raised.
"""

from __future__ import annotations

import logging
from typing import Any

from forecasting.settings import load_settings
from tasks.notify import notify

logger = logging.getLogger("lstm_forecast.hooks")


def failure_markdown(flow_name: str, run_name: str, message: str, failed_tasks: list[str]) -> str:
    tasks = ", ".join(f"`{name}`" for name in failed_tasks) or "none (the flow itself)"
    return "\n".join([
        f"# Run {run_name} of {flow_name} failed",
        "",
        f"**Error:** {message}",
        "",
        f"**Failed task runs:** {tasks}",
        "",
        "Nothing was published by this run: the forecasts published before it stay in place, Parquet and "
        "SQL agreeing. Transient faults were retried before giving up; see the run's logs for each try.",
    ])


def failed_task_names(flow_run_id: Any) -> list[str]:
    from prefect import get_client
    from prefect.client.schemas.filters import (FlowRunFilter, FlowRunFilterId, TaskRunFilter,
                                                TaskRunFilterState, TaskRunFilterStateType)
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
            task_run_filter=TaskRunFilter(state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.FAILED]))))
    return sorted(run.name for run in runs)


def report_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """on_failure hook: a `run-failure` artifact, and a notification when `notify_block` is set."""
    from prefect.artifacts import MarkdownArtifact

    try:
        message = " ".join(str(state.message or state.name).split())[:2000]
        try:
            failed = failed_task_names(flow_run.id)
        except Exception:  # noqa: BLE001 - the API may be what failed; report without the task names
            failed = []
        text = failure_markdown(flow.name, flow_run.name, message, failed)
        MarkdownArtifact(key="run-failure", markdown=text, flow_run_id=flow_run.id,
                         description=f"Why {flow_run.name} failed").create()
        notify(load_settings().notify_block, f"lstm-forecast: {flow_run.name} failed", text)
    except Exception:  # noqa: BLE001 - never mask the run's own failure
        logger.exception("Could not report the failure of flow run %s", getattr(flow_run, "name", "?"))

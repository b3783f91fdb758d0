"""The backtest flow: rolling-origin evaluation of the daily modelling path on the store's data."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from prefect import flow, get_run_logger, task

from flows.hooks import report_failure

from forecasting.settings import Settings, load_settings
from stores.files import exclusive_run
from tasks.ingest import ingest_files
from tasks.tune import with_tuned
from tasks.validate import validate_batch


@task(name="backtest", tags=["gpu"])
def run_backtest(settings: Settings, validated: dict[str, Any], origins: int, output: str | None) -> dict[str, Any]:
    """Train and score at each origin; write JSON and a markdown artifact; return the summary."""
    from pathlib import Path

    from prefect.artifacts import create_markdown_artifact

    from stores import files
    from tasks.backtest import backtest, summary_markdown

    log = get_run_logger()
    started = time.perf_counter()
    valid = files.read_parquet(validated["valid_path"])
    result = backtest(valid, validated["frequency"], settings, origins=origins, log=log)
    report = {**result.as_dict(), "frequency": validated["frequency"], "input": str(settings.input_path),
              "settings": settings.model_dump(mode="json", exclude={"database_url"}),
              "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    target = Path(output) if output else settings.data_dir / "backtest" / f"backtest-{validated['run_date']}.json"
    files.write_json(report, target)
    create_markdown_artifact(markdown=summary_markdown(result, str(settings.input_path)), key="backtest-metrics",
                             description="Rolling-origin MASE, sMAPE and interval coverage")
    summary = result.summary()
    log.info("Backtest over %d origins: MASE %.4f, sMAPE %.2f, coverage %.3f; written to %s", origins,
             summary["mase"], summary["smape"], summary["coverage"], target)
    return {**summary, "path": str(target), "duration_s": round(time.perf_counter() - started, 3)}


@flow(name="backtest", flow_run_name="backtest-{origins}-origins", on_failure=[report_failure])
def backtest_flow(input_path: str | None = None, data_dir: str | None = None, origins: int = 3,
                  horizon: int | None = None, lookback: int | None = None, max_epochs: int | None = None,
                  output: str | None = None) -> dict[str, Any]:
    """Ingest and validate like the daily flow, then evaluate at `origins` rolling origins.

    Uses the same settings as daily runs, the tune flow's winner included.
    """
    settings = with_tuned(load_settings(input_path=input_path, data_dir=data_dir, horizon=horizon,
                                        lookback=lookback, max_epochs=max_epochs))
    with exclusive_run(settings.data_dir):
        ingest_files(settings)
        validated = validate_batch(settings, None)
        return run_backtest(settings, validated, origins, output)

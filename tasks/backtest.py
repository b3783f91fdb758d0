"""The backtest task: rolling-origin evaluation (forecasting/backtest.py) of the store's validated data,
written as a JSON report under `<data-dir>/backtest/` and a `backtest-metrics` artifact."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from forecasting.backtest import backtest, summary_markdown
from forecasting.results import Validated
from forecasting.settings import Settings
from stores import files


@task(name="backtest", tags=["gpu"])
def run_backtest(settings: Settings, validated: Validated, origins: int, output: str | None) -> dict[str, Any]:
    """Train and score at each origin; write JSON and a markdown artifact; return the summary."""
    log = get_run_logger()
    started = time.perf_counter()
    valid = files.read_parquet(validated.valid_path)
    result = backtest(valid, validated.frequency, settings, origins=origins, log=log)
    report = {**result.as_dict(), "frequency": validated.frequency, "input": str(settings.input_path),
              "settings": settings.model_dump(mode="json", exclude={"database_url"}),
              "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    target = Path(output) if output else settings.data_dir / "backtest" / f"backtest-{validated.run_date}.json"
    files.write_json(report, target)
    create_markdown_artifact(markdown=summary_markdown(result, str(settings.input_path)), key="backtest-metrics",
                             description="Rolling-origin MASE, sMAPE and interval coverage")
    summary = result.summary()
    log.info("Backtest over %d origins: MASE %.4f, sMAPE %.2f, coverage %.3f; written to %s", origins,
             summary["mase"], summary["smape"], summary["coverage"], target)
    return {**summary, "path": str(target), "duration_s": round(time.perf_counter() - started, 3)}

"""The daily forecast flow: raw files in, published forecasts out, eight tasks in order.

Tasks exchange small summaries and file paths, never DataFrames, so the flow's memory and Prefect's
stored results stay small however many series there are.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from flows.hooks import report_failure

from forecasting.settings import load_settings
from stores.files import exclusive_run
from tasks.accuracy import score_accuracy
from tasks.explain import explain_model
from tasks.gapfill import fill_gaps
from tasks.ingest import ingest_files
from tasks.publish import publish
from tasks.train import train_model
from tasks.tune import with_tuned
from tasks.validate import validate_batch
from tasks.windows import build_windows

FLOW_NAME = "daily-forecast"


def run_name() -> str:
    """`daily-asof-2016-12-31` for an explicit as-of, `daily-latest-<today>` when it follows the data."""
    as_of = flow_run.parameters.get("as_of")
    if as_of:
        return f"daily-asof-{str(as_of)[:10]}"
    return f"daily-latest-{datetime.now(timezone.utc):%Y-%m-%d}"


@flow(name=FLOW_NAME, flow_run_name=run_name, log_prints=True, on_failure=[report_failure])
def daily_forecast(
    input_path: str | None = None,
    data_dir: str | None = None,
    as_of: str | None = None,
    horizon: int | None = None,
    lookback: int | None = None,
    max_epochs: int | None = None,
    task_runner: str | None = None,
) -> dict[str, Any]:
    """Ingest, validate, gap-fill, window, train, explain, score earlier forecasts and publish once.

    Parameters left empty come from the settings (environment, `lstm-forecast.toml`, the weekly tune
    flow's winner, defaults): the bundled sample as input and `data/store` as data dir. `as_of` (ISO-8601, naive = UTC) is the forecast
    origin: only data up to it is used; by default the newest timestamp in the data. `task_runner` says
    where the per-series stages run (`threads`, `dask` for a local cluster, `dask:<address>`).
    """
    settings = with_tuned(load_settings(input_path=input_path, data_dir=data_dir, horizon=horizon,
                                        lookback=lookback, max_epochs=max_epochs,
                                        task_runner=task_runner))
    summaries: dict[str, Any] = {}  # stage name -> its typed result (forecasting/results.py)
    with exclusive_run(settings.data_dir):  # one run per data dir at a time
        summaries["ingest"] = ingest_files(settings)
        summaries["validate"] = validate_batch(settings, as_of)
        summaries["gapfill"] = fill_gaps(settings, summaries["validate"])
        summaries["windows"] = build_windows(settings, summaries["validate"], summaries["gapfill"])
        summaries["train"] = train_model(settings, summaries["validate"], summaries["windows"])
        summaries["explain"] = explain_model(settings, summaries["windows"], summaries["train"])
        summaries["accuracy"] = score_accuracy(settings, summaries["validate"], summaries["gapfill"],
                                               summaries["train"])
        published = publish(settings, summaries)
    return {"published": published, **summaries}

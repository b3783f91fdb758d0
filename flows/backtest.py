"""The backtest flow: rolling-origin evaluation of the daily modelling path on the store's data."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.hooks import report_failure

from forecasting.settings import load_settings
from stores.files import exclusive_run
from tasks.backtest import run_backtest
from tasks.ingest import ingest_files
from tasks.tune import with_tuned
from tasks.validate import validate_batch


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

"""The weekly tune flow: pick lookback, layers, units and dropout by rolling-origin cross-validation."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.hooks import report_failure

from forecasting.settings import load_settings
from stores.files import exclusive_run
from tasks.ingest import ingest_files
from tasks.tune import grid_search
from tasks.validate import validate_batch


@flow(name="tune", flow_run_name="tune-{origins}-origins", on_failure=[report_failure])
def tune_flow(input_path: str | None = None, data_dir: str | None = None, origins: int = 2,
              grid: dict[str, list[Any]] | None = None, max_epochs: int | None = None) -> dict[str, Any]:
    """Ingest and validate like the daily flow, then grid-search the model's size on rolling origins.

    `grid` maps any of lookback, layers, units, dropout to the values to try (default: a 16-candidate grid).
    """
    settings = load_settings(input_path=input_path, data_dir=data_dir, max_epochs=max_epochs)
    with exclusive_run(settings.data_dir):
        ingest_files(settings)
        validated = validate_batch(settings, None)
        return grid_search(settings, validated, origins, grid)

"""The tune task (grid search by rolling-origin cross-validation, forecasting/tuning.py) and how runs
read its winner back from the model registry."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from forecasting.frequency import defaults_for
from forecasting.results import Validated
from forecasting.settings import Settings
from forecasting.tuning import apply_tuned, default_grid, search, winner
from stores import files
from stores.registry import read_tuned, save_tuned


@task(name="grid-search", tags=["gpu"])
def grid_search(settings: Settings, validated: Validated, origins: int,
                grid: dict[str, list[Any]] | None) -> dict[str, Any]:
    log = get_run_logger()
    freq = validated.frequency
    grid = grid or default_grid(settings.lookback or defaults_for(freq).lookback)
    results = search(files.read_parquet(validated.valid_path), freq, settings, grid, origins, log=log)
    best = winner(results, validated.as_of)
    save_tuned(settings.data_dir / "models", best)
    create_table_artifact(table=results.round(4).to_dict("records"), key="tuning-results",
                          description=f"Rolling-origin CV over {origins} origins; winner {best['config']}")
    log.info("Tuned config %s (MASE %.4f over %d origins) saved for daily runs", best["config"], best["mase"],
             origins)
    return best


def with_tuned(settings: Settings) -> Settings:
    """`settings` with the stored tuning winner applied to the fields the user did not set."""
    return apply_tuned(settings, read_tuned(settings.data_dir / "models"))

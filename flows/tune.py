"""The weekly tune flow: pick lookback, layers, units and dropout by rolling-origin cross-validation."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task

from flows.hooks import report_failure

from forecasting.settings import Settings, load_settings
from stores.files import exclusive_run
from tasks.ingest import ingest_files
from tasks.validate import validate_batch


@task(name="grid-search", tags=["gpu"])
def grid_search(settings: Settings, validated: dict[str, Any], origins: int,
                grid: dict[str, list[Any]] | None) -> dict[str, Any]:
    from prefect.artifacts import create_table_artifact

    from forecasting.frequency import defaults_for
    from stores import files
    from tasks.tune import default_grid, save_winner, search

    log = get_run_logger()
    freq = validated["frequency"]
    grid = grid or default_grid(settings.lookback or defaults_for(freq).lookback)
    results = search(files.read_parquet(validated["valid_path"]), freq, settings, grid, origins, log=log)
    winner = save_winner(results, settings.data_dir, validated["as_of"])
    create_table_artifact(table=results.round(4).to_dict("records"), key="tuning-results",
                          description=f"Rolling-origin CV over {origins} origins; winner {winner['config']}")
    log.info("Tuned config %s (MASE %.4f over %d origins) saved for daily runs", winner["config"], winner["mase"],
             origins)
    return winner


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

"""Stage 6, publication: forecast from each series' latest window and publish the versioned result.

The champion model predicts all `horizon` steps from the last `lookback` points of every series, the
per-series scaling is inverted, and the interval is the model's validation residual quantiles added to
the point forecast (clipped at zero for series that have never been negative). Output rows follow the contract (README, "Output"): Parquet and SQL, replaced per
run date, plus a Prefect table artifact of the forecasts and a markdown artifact of the run's metrics.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from prefect import get_run_logger, task

from tasks import storage
from tasks.columns import (MODEL_VERSION, ORIGIN, RUN_ID, SERIES_ID, STEP, TIMESTAMP, VALUE, YHAT, YHAT_LOWER,
                           YHAT_UPPER)
from tasks.forecast_store import parquet_path, publish_forecasts_atomically, redacted_url
from tasks.registry import ModelVersion, load_version
from tasks.retry import retry_on
from tasks.settings import Settings

ARTIFACT_TABLE_ROWS = 1000  # the forecast table artifact is for people; the stores hold everything


def latest_windows(clean: pd.DataFrame, lookback: int) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """Series ids, origins (last timestamp) and the last `lookback` values of every long-enough series."""
    clean = clean.sort_values([SERIES_ID, TIMESTAMP], kind="stable")
    tails = clean.groupby(SERIES_ID, sort=True).tail(lookback)
    counts = tails.groupby(SERIES_ID, sort=True).size()
    complete = counts.index[counts == lookback]
    tails = tails[tails[SERIES_ID].isin(complete)]
    values = tails[VALUE].to_numpy(dtype="float64").reshape(len(complete), lookback)  # [series, lookback]
    origins = tails.groupby(SERIES_ID, sort=True)[TIMESTAMP].max()
    return pd.Series(complete, dtype="string"), origins.reset_index(drop=True), values


def forecast(champion: ModelVersion, clean: pd.DataFrame) -> pd.DataFrame:
    """Forecast rows (contract columns except model_version and run_id) for every series in `clean`."""
    meta = champion.metadata
    lookback, horizon, freq = meta["lookback"], meta["horizon"], meta["frequency"]
    series_ids, origins, history = latest_windows(clean, lookback)
    if len(series_ids) == 0:
        return pd.DataFrame(columns=[SERIES_ID, ORIGIN, TIMESTAMP, STEP, YHAT, YHAT_LOWER, YHAT_UPPER])
    repeated_ids = np.repeat(series_ids.to_numpy(), lookback)
    scaled = champion.scaler.transform(repeated_ids, history.ravel()).reshape(history.shape)
    inputs = scaled[..., None].astype("float32")  # [series, lookback, 1]
    point = np.asarray(champion.model.predict(inputs, verbose=0), dtype="float64")  # [series, horizon]
    lower = point + np.asarray(meta["interval"]["lower"])[None, :]
    upper = point + np.asarray(meta["interval"]["upper"])[None, :]
    # Keep the point inside its interval even when the residuals are skewed to one side.
    lower, upper = np.minimum(lower, point), np.maximum(upper, point)
    point, lower, upper = (champion.scaler.inverse_transform(series_ids, v) for v in (point, lower, upper))
    # A series that never went below zero (counts, volumes, page views) gets no negative forecasts.
    non_negative = clean.groupby(SERIES_ID)[VALUE].min().reindex(series_ids).to_numpy() >= 0
    point, lower, upper = (np.where(non_negative[:, None], np.maximum(v, 0.0), v) for v in (point, lower, upper))
    steps = np.arange(1, horizon + 1)
    timestamps = np.concatenate([pd.date_range(origin, periods=horizon + 1, freq=freq)[1:] for origin in origins])
    return pd.DataFrame({
        SERIES_ID: np.repeat(series_ids.to_numpy(), horizon),
        ORIGIN: np.repeat(origins.to_numpy(), horizon),
        TIMESTAMP: pd.DatetimeIndex(timestamps).tz_convert("UTC"),
        STEP: np.tile(steps, len(series_ids)).astype("int32"),
        YHAT: point.ravel(),
        YHAT_LOWER: lower.ravel(),
        YHAT_UPPER: upper.ravel(),
    })


def metrics_markdown(summaries: dict[str, dict[str, Any]], published: dict[str, Any]) -> str:
    """The run-metrics artifact: rows in/out, imputed share, validation loss, model version, durations."""
    ingest, validate, fill, windows, train = (summaries[k] for k in ("ingest", "validate", "gapfill", "windows",
                                                                      "train"))
    durations = {name: summaries[name]["duration_s"] for name in summaries} | {"publish": published["duration_s"]}
    lines = [
        f"# Run {published['run_date']} (as-of {validate['as_of']})",
        "",
        "| metric | value |",
        "|---|---|",
        f"| files new / already ingested / rejected | {ingest['files_new']} / {ingest['files_already_ingested']} / "
        f"{len(ingest['files_rejected'])} |",
        f"| rows ingested this run | {ingest['rows_new']} |",
        f"| rows validated / quarantined | {validate['rows_checked']} / {validate['rows_quarantined']} |",
        f"| series forecast / valid | {published['series']} / {validate['series_valid']} |",
        f"| series quarantined at gap-fill / too short | {fill['series_quarantined']} / "
        f"{windows['too_short_series']} |",
        f"| imputed share | {100 * fill['imputed_share']:.2f}% ({fill['imputed']} points) |",
        f"| windows train / validation | {windows['train_windows']} / {windows['val_windows']} |",
        f"| model version | {train['model_version']} |",
        f"| device | {train['device']} |",
        f"| epochs (best) | {train['epochs_run']} ({train['best_epoch']}) |",
        f"| validation loss (MSE, scaled) / MAE | {train['val_loss']:.4f} / {train['val_mae']:.4f} |",
        f"| forecast rows out | {published['rows']} |",
        "",
        "| stage | seconds |",
        "|---|---|",
        *[f"| {name} | {seconds:.2f} |" for name, seconds in durations.items()],
    ]
    return "\n".join(lines)


@task(name="publish", retries=3, retry_delay_seconds=[2, 10, 30],
      retry_condition_fn=retry_on(OSError, sa.exc.OperationalError, sa.exc.InterfaceError))
def publish(settings: Settings, summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Prefect task: forecast with the trained model and publish to Parquet, SQL and artifacts."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact
    from prefect.runtime import flow_run

    log = get_run_logger()
    started = time.perf_counter()
    validated, filled, trained = summaries["validate"], summaries["gapfill"], summaries["train"]
    run_date = pd.Timestamp(validated["run_date"]).date()
    champion = load_version(settings.data_dir / "models", trained["model_version"])
    rows = forecast(champion, storage.read_parquet(filled["clean_path"]))
    rows[MODEL_VERSION] = champion.version
    rows[RUN_ID] = str(flow_run.id or "local")
    written = publish_forecasts_atomically(rows, run_date, settings.data_dir, settings.database_url)
    log.info("Published %d forecast rows for %d series to %s and %s", written, rows[SERIES_ID].nunique(),
             parquet_path(settings.data_dir, run_date), redacted_url(settings.database_url))
    table = rows.head(ARTIFACT_TABLE_ROWS).assign(**{
        ORIGIN: rows[ORIGIN].head(ARTIFACT_TABLE_ROWS).map(pd.Timestamp.isoformat),
        TIMESTAMP: rows[TIMESTAMP].head(ARTIFACT_TABLE_ROWS).map(pd.Timestamp.isoformat),
        **{c: rows[c].head(ARTIFACT_TABLE_ROWS).round(3) for c in (YHAT, YHAT_LOWER, YHAT_UPPER)},
    })
    create_table_artifact(table=table.to_dict("records"), key="forecast-table",
                          description=f"Forecasts of {run_date} ({written} rows; first {len(table)} shown)")
    published = {"run_date": run_date.isoformat(), "rows": written, "series": int(rows[SERIES_ID].nunique()),
                 "parquet_path": str(parquet_path(settings.data_dir, run_date)),
                 "model_version": champion.version, "duration_s": round(time.perf_counter() - started, 3)}
    create_markdown_artifact(markdown=metrics_markdown(summaries, published), key="run-metrics",
                             description="Rows in/out, imputed share, validation loss, model version, durations")
    return published

"""Stage 6, publication: forecast from each series' latest window and publish the versioned result.

The champion model forecasts all `horizon` steps from the last `lookback` points of every series that
has them; its calibrated quantiles give the interval. Series where seasonal naive beat the champion on
their holdout publish the better there of its seasonal base alone (its `base_series`: the base with the
model's interval moved onto it, `model_version = "<version>:seasonal-base"`) and seasonal naive (its
`fallback_series`; see forecasting/promotion.py, series_choices). Series shorter than the lookback, series in
`fallback_series`, or every series when there is no champion yet, get the documented fallback: seasonal naive (the last season repeated;
the last value when there is less than a season), with an interval from the series' own in-sample
seasonal-naive errors, widened with the number of seasons ahead. Such rows carry
`model_version = "seasonal-naive"`. Forecasts of series that have never been negative are clipped at 0.
Output rows follow the contract (README, "Output"): Parquet and SQL, replaced per run date, plus
Prefect artifacts for the forecasts, the run's metrics and the model comparison.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from prefect import get_run_logger, task

from forecasting.columns import (MODEL_VERSION, ORIGIN, RUN_ID, SERIES_ID, STEP, TIMESTAMP, VALUE, YHAT, YHAT_LOWER,
                                 YHAT_UPPER)
from forecasting.frequency import defaults_for
from forecasting.metrics import seasonal_naive
from forecasting.model.version import ModelVersion
from forecasting.settings import Settings
from stores import files
from stores.forecasts import parquet_path, publish_forecasts_atomically, reconcile, redacted_url
from stores.forecasts import resolve_database_url
from stores.registry import load_version
from tasks.retry import retrying

FALLBACK_VERSION = "seasonal-naive"
BASE_SUFFIX = ":seasonal-base"  # model_version of rows published by a champion's seasonal base alone
ARTIFACT_TABLE_ROWS = 1000  # the forecast table artifact is for people; the stores hold everything


def forecast(champion: ModelVersion | None, clean: pd.DataFrame, freq: str, horizon: int,
             level: float = 0.8) -> pd.DataFrame:
    """Contract rows (all but run_id) for every series in `clean`: the champion where it can, else fallback."""
    clean = clean.sort_values([SERIES_ID, TIMESTAMP], kind="stable").reset_index(drop=True)
    lengths = clean.groupby(SERIES_ID, sort=True).size()
    lookback = champion.config.lookback if champion is not None else None
    long_enough = lengths.index[lengths >= lookback].astype(str).tolist() if champion is not None else []
    # The champion's per-series choices on its holdout (see forecasting/promotion.py): model, its seasonal base, or naive.
    meta = champion.metadata if champion is not None else {}
    base, naive = set(meta.get("base_series", [])), set(meta.get("fallback_series", []))
    by_base = [series_id for series_id in long_enough if series_id in base]
    by_model = [series_id for series_id in long_enough if series_id not in base | naive]
    parts = []
    if by_model:
        parts.append(_model_rows(champion, clean[clean[SERIES_ID].isin(by_model)], freq))
    if by_base:
        parts.append(_model_rows(champion, clean[clean[SERIES_ID].isin(by_base)], freq, base_only=True))
    fallback = clean[~clean[SERIES_ID].isin(by_model + by_base)]
    if not fallback.empty:
        parts.append(_fallback_rows(fallback, freq, horizon, level))
    rows = pd.concat(parts, ignore_index=True)
    non_negative = clean.groupby(SERIES_ID)[VALUE].min().reindex(rows[SERIES_ID]).to_numpy() >= 0
    for column in (YHAT, YHAT_LOWER, YHAT_UPPER):
        rows[column] = np.where(non_negative, np.maximum(rows[column], 0.0), rows[column])
    return rows.sort_values([SERIES_ID, STEP], kind="stable").reset_index(drop=True)


def published_by(rows: pd.DataFrame) -> dict[str, int]:
    """How many series of forecast `rows` the model, its seasonal base alone and seasonal naive publish."""
    versions = rows.groupby(SERIES_ID)[MODEL_VERSION].first()
    base = int(versions.str.endswith(BASE_SUFFIX).sum())
    naive = int((versions == FALLBACK_VERSION).sum())
    return {"model": len(versions) - base - naive, "base": base, "seasonal-naive": naive}


def _model_rows(champion: ModelVersion, clean: pd.DataFrame, freq: str, base_only: bool = False) -> pd.DataFrame:
    from forecasting.model.training import predict_quantiles
    from forecasting.windows import add_features

    config = champion.config
    tails = clean.groupby(SERIES_ID, sort=True).tail(config.lookback)
    scalers = champion.scalers.extend(tails)  # a series new since training is scaled by its recent inputs
    featured, _ = add_features(tails, scalers, freq)
    n_series = featured[SERIES_ID].nunique()
    x = featured[list(config.features)].to_numpy("float32").reshape(n_series, config.lookback, -1)
    quantiles = predict_quantiles(champion.model, x, champion.metadata["interval"]["correction"],
                                  base_only=base_only)  # [S, H, 3]
    ids = featured[SERIES_ID].to_numpy()[::config.lookback]
    original = scalers.target.inverse_transform(ids, quantiles)
    origins = featured.groupby(SERIES_ID, sort=True)[TIMESTAMP].max().to_numpy()
    version = champion.version + (BASE_SUFFIX if base_only else "")
    return _rows(ids, origins, original[..., 1], original[..., 0], original[..., 2], freq, version)


def _fallback_rows(clean: pd.DataFrame, freq: str, horizon: int, level: float) -> pd.DataFrame:
    season = defaults_for(freq).season
    tail = (1.0 - level) / 2.0
    ids, origins, points, lowers, uppers = [], [], [], [], []
    seasons_ahead = np.sqrt(np.ceil(np.arange(1, horizon + 1) / season))
    for series_id, group in clean.groupby(SERIES_ID, sort=True):
        history = group[VALUE].to_numpy("float64")
        point = seasonal_naive(history, horizon, season)
        lag = season if len(history) > season else 1
        errors = history[lag:] - history[:-lag]
        low, high = (np.quantile(errors, [tail, 1 - tail]) if len(errors) >= 2 else (0.0, 0.0))
        ids.append(series_id)
        origins.append(group[TIMESTAMP].max())
        points.append(point)
        lowers.append(point + min(low, 0.0) * seasons_ahead)
        uppers.append(point + max(high, 0.0) * seasons_ahead)
    return _rows(np.asarray(ids), np.asarray(origins), np.stack(points), np.stack(lowers), np.stack(uppers), freq,
                 FALLBACK_VERSION)


def _rows(ids, origins, point, lower, upper, freq: str, version: str) -> pd.DataFrame:
    n_series, horizon = point.shape
    timestamps = np.concatenate([pd.date_range(o, periods=horizon + 1, freq=freq)[1:] for o in origins])
    return pd.DataFrame({
        SERIES_ID: pd.array(np.repeat(ids, horizon), dtype="string"),
        ORIGIN: pd.DatetimeIndex(np.repeat(pd.DatetimeIndex(origins), horizon)).tz_convert("UTC"),
        TIMESTAMP: pd.DatetimeIndex(timestamps).tz_convert("UTC"),
        STEP: np.tile(np.arange(1, horizon + 1), n_series).astype("int32"),
        YHAT: point.ravel(), YHAT_LOWER: np.minimum(lower, point).ravel(), YHAT_UPPER: np.maximum(upper, point).ravel(),
        MODEL_VERSION: version,
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
        f"| rows checked by validation / quarantined | {validate['rows_checked']} / {validate['rows_quarantined']} |",
        f"| mode (validate / gap-fill / windows) | {validate.get('mode', 'full')} / {fill.get('mode', 'full')} / "
        f"{windows.get('mode', 'full')}"
        + (f" (on the run of {validate['base_run_date']}; {validate['series_rebuilt']} series rebuilt)"
           if validate.get("base_run_date") else f" ({validate.get('full_reason') or 'full'})") + " |",
        f"| series forecast / by model / by its seasonal base / by seasonal-naive fallback | "
        f"{published['series']} / {published['series_by_model']} / {published['series_by_base']} / "
        f"{published['series'] - published['series_by_model'] - published['series_by_base']} |",
        f"| series cut after a gap over max_gap (earlier rows set aside) | {fill['series_cut_at_gap']} "
        f"({fill['rows_set_aside']} rows) |",
        f"| series with a gap over max_gap filled (short beside the history before it) | "
        f"{fill.get('series_bridged_gap', 0)} |",
        f"| imputed share | {100 * fill['imputed_share']:.2f}% ({fill['imputed']} points) |",
        f"| windows train / validation | {windows['train_windows']} / {windows['val_windows']} |",
        f"| trained version | {train['model_version'] or 'none (too little history to train)'}"
        f"{(' (warm start)' if train['warm_start'] else ' (full retrain)') if train['model_version'] else ''} |",
        f"| published by | {published['model_version']} |",
        f"| decision | {train['decision']} |",
        f"| device | {train['device']} |",
        f"| epochs (best) | {train['epochs_run']} ({train['best_epoch']}) |",
        f"| validation loss (pinball, scaled) | {_number(train['val_loss'], 4)} |",
        f"| interval coverage on validation (calibrated) | {_number(train['interval_val_coverage'], 3)} |",
        f"| forecast rows out | {published['rows']} |",
        "",
        "| stage | seconds |",
        "|---|---|",
        *[f"| {name} | {seconds:.2f} |" for name, seconds in durations.items()],
    ]
    return "\n".join(lines)


def _number(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def comparison_markdown(train: dict[str, Any]) -> str:
    """The model-comparison artifact: holdout MASE of challenger, champion and seasonal naive."""
    holdout = train["holdout"]
    if holdout is None:  # nothing was trained this run
        return "\n".join(["# No challenger this run", "", f"{train['decision']}.", "",
                          f"Publishing: {train['champion_version'] or FALLBACK_VERSION}."])

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    return "\n".join([
        f"# Challenger {train['model_version']}: {'promoted' if train['promoted'] else 'not promoted'}",
        "",
        f"{train['decision']}.",
        "",
        f"| model | holdout MASE ({holdout['windows']} windows) |",
        "|---|---|",
        f"| challenger {train['model_version']} | {fmt(holdout['challenger_mase'])} |",
        f"| champion before this run | {fmt(holdout['champion_mase'])} |",
        f"| seasonal naive | {fmt(holdout['seasonal_naive_mase'])} |",
        "",
        f"Publishing: {train['champion_version'] or FALLBACK_VERSION}.",
    ])


def write_run_report(settings: Settings, run_date: Any, filled: dict[str, Any], rows: pd.DataFrame,
                     summaries: dict[str, dict[str, Any]], published: dict[str, Any], log: Any) -> Any:
    """The run's HTML report (tasks/report.py); a failure here is logged and never fails the published run."""
    from stores.quarantine import quarantine_path
    from tasks.report import render, write_report

    try:
        quarantined_file = quarantine_path(settings.data_dir, run_date, "validate")
        quarantined = files.read_parquet(quarantined_file) if quarantined_file.exists() else pd.DataFrame()
        page = render(run_date, files.read_parquet(filled["clean_path"]), rows, quarantined, summaries,
                      published, settings.interval_level)
        path = write_report(settings.data_dir, run_date, page)
        log.info("Report: %s", path)
        return path
    except Exception as exc:  # noqa: BLE001 - the forecasts are published; a report problem must not undo that
        log.warning("The run report could not be written (%s: %s); the forecasts are published", type(exc).__name__, exc)
        return None


@task(name="publish", **retrying(OSError, sa.exc.OperationalError, sa.exc.InterfaceError))
def publish(settings: Settings, summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Prefect task: forecast with the champion and publish to Parquet, SQL and artifacts."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
    from prefect.runtime import flow_run

    log = get_run_logger()
    started = time.perf_counter()
    validated, filled, windows, trained = (summaries[k] for k in ("validate", "gapfill", "windows", "train"))
    run_date = pd.Timestamp(validated["run_date"]).date()
    database_url = resolve_database_url(settings)
    repaired = reconcile(settings.data_dir, database_url)
    if repaired:
        log.warning("Parquet forecasts of %s disagreed with SQL (an earlier publication was interrupted after "
                    "its database commit); rewritten from SQL", ", ".join(repaired))
    champion_version = trained["champion_version"]
    champion = load_version(settings.data_dir / "models", champion_version) if champion_version else None
    if champion is None:
        log.warning("No champion model yet: every series is forecast by seasonal naive")
    rows = forecast(champion, files.read_parquet(filled["clean_path"]), validated["frequency"],
                    windows["horizon"], settings.interval_level)
    rows[RUN_ID] = str(flow_run.id or "local")
    written = publish_forecasts_atomically(rows, run_date, settings.data_dir, database_url)
    by = published_by(rows)
    by_model, by_base = by["model"], by["base"]
    log.info("Published %d forecast rows for %d series (%d by %s, %d by its seasonal base alone, %d by seasonal "
             "naive) to %s and %s", written, sum(by.values()), by_model, champion_version, by_base,
             by["seasonal-naive"], parquet_path(settings.data_dir, run_date), redacted_url(database_url))
    shown = rows.head(ARTIFACT_TABLE_ROWS)
    table = shown.assign(**{ORIGIN: shown[ORIGIN].map(pd.Timestamp.isoformat),
                            TIMESTAMP: shown[TIMESTAMP].map(pd.Timestamp.isoformat),
                            **{c: shown[c].round(3) for c in (YHAT, YHAT_LOWER, YHAT_UPPER)}})
    create_table_artifact(table=table.to_dict("records"), key="forecast-table",
                          description=f"Forecasts of {run_date} ({written} rows; first {len(table)} shown)")
    published = {"run_date": run_date.isoformat(), "rows": written, "series": int(rows[SERIES_ID].nunique()),
                 "series_by_model": by_model, "series_by_base": by_base,
                 "parquet_path": str(parquet_path(settings.data_dir, run_date)),
                 "model_version": champion_version or FALLBACK_VERSION,
                 "duration_s": round(time.perf_counter() - started, 3)}
    report = write_run_report(settings, run_date, filled, rows, summaries, published, log)
    if report is not None:
        published["report_path"] = str(report)
        link = Path(report).resolve().as_uri() if files.is_local(report) else str(report)
        create_link_artifact(key="run-report", link=link,
                             link_text=f"Report of {run_date.isoformat()}",
                             description="Plots of history, forecasts and intervals; validation and model summaries")
    create_markdown_artifact(markdown=comparison_markdown(trained), key="model-comparison",
                             description="Challenger vs champion vs seasonal naive on the latest holdout")
    create_markdown_artifact(markdown=metrics_markdown(summaries, published), key="run-metrics",
                             description="Rows in/out, imputed share, validation loss, model version, durations")
    return published

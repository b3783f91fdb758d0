"""Stage 8, publication (the Prefect task): forecast every series (forecasting/forecast.py) and publish the
versioned rows to Parquet and SQL, replaced per run date, plus Prefect artifacts for the forecasts, the
run's metrics and the model comparison, and the run's HTML report."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from prefect import get_run_logger, task

from forecasting.columns import ORIGIN, RUN_ID, SERIES_ID, TIMESTAMP, YHAT, YHAT_LOWER, YHAT_UPPER
from forecasting.forecast import FALLBACK_VERSION, forecast, published_by
from forecasting.report import render
from forecasting.results import Filled, Published
from forecasting.settings import Settings
from forecasting.summaries import comparison_markdown, metrics_markdown
from stores import files
from stores.accuracy import read_accuracy, scored_run_dates
from stores.forecasts import parquet_path, publish_forecasts_atomically, reconcile, redacted_url, resolve_database_url
from stores.quarantine import quarantine_path
from stores.registry import load_version
from stores.reports import write_report
from tasks.retry import retrying

ARTIFACT_TABLE_ROWS = 1000  # the forecast table artifact is for people; the stores hold everything
REPORT_RUN_DATES = 7  # earlier publications drawn against what happened in the report


def write_run_report(settings: Settings, run_date: Any, filled: Filled, rows: pd.DataFrame,
                     summaries: dict[str, Any], published: Published, log: Any) -> Any:
    """The run's HTML report (forecasting/report.py); a failure here is logged and never fails the published run."""
    try:
        quarantined_file = quarantine_path(settings.data_dir, run_date, "validate")
        quarantined = files.read_parquet(quarantined_file) if quarantined_file.exists() else pd.DataFrame()
        realised = read_accuracy(settings.data_dir, scored_run_dates(settings.data_dir)[-REPORT_RUN_DATES:])
        page = render(run_date, files.read_parquet(filled.clean_path), rows, quarantined, summaries,
                      published, settings.interval_level, realised)
        path = write_report(settings.data_dir, run_date, page)
        log.info("Report: %s", path)
        return path
    except Exception as exc:  # noqa: BLE001 - the forecasts are published; a report problem must not undo that
        log.warning("The run report could not be written (%s: %s); the forecasts are published", type(exc).__name__, exc)
        return None


@task(name="publish", **retrying(OSError, sa.exc.OperationalError, sa.exc.InterfaceError))
def publish(settings: Settings, summaries: dict[str, Any]) -> Published:
    """Prefect task: forecast with the champion and publish to Parquet, SQL and artifacts."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
    from prefect.runtime import flow_run

    log = get_run_logger()
    started = time.perf_counter()
    validated, filled, windows, trained = (summaries[k] for k in ("validate", "gapfill", "windows", "train"))
    run_date = pd.Timestamp(validated.run_date).date()
    database_url = resolve_database_url(settings)
    repaired = reconcile(settings.data_dir, database_url)
    if repaired:
        log.warning("Parquet forecasts of %s disagreed with SQL (an earlier publication was interrupted after "
                    "its database commit); rewritten from SQL", ", ".join(repaired))
    champion_version = trained.champion_version
    champion = load_version(settings.data_dir / "models", champion_version) if champion_version else None
    if champion is None:
        log.warning("No champion model yet: every series is forecast by seasonal naive")
    rows = forecast(champion, files.read_parquet(filled.clean_path), validated.frequency,
                    windows.horizon, settings.interval_level, as_of=pd.Timestamp(validated.as_of))
    rows[RUN_ID] = str(flow_run.id or "local")
    written = publish_forecasts_atomically(rows, run_date, settings.data_dir, database_url)
    by = published_by(rows)
    by_model, by_base = by["model"], by["base"]
    # Without a champion every series is seasonal naive's: no "0 by None" of a model that does not exist.
    models = f"{by_model} by {champion_version}, {by_base} by its seasonal base alone, " if champion else ""
    log.info("Published %d forecast rows for %d series (%s%d by seasonal naive) to %s and %s", written,
             sum(by.values()), models, by["seasonal-naive"], parquet_path(settings.data_dir, run_date),
             redacted_url(database_url))
    shown = rows.head(ARTIFACT_TABLE_ROWS)
    table = shown.assign(**{ORIGIN: shown[ORIGIN].map(pd.Timestamp.isoformat),
                            TIMESTAMP: shown[TIMESTAMP].map(pd.Timestamp.isoformat),
                            **{c: shown[c].round(3) for c in (YHAT, YHAT_LOWER, YHAT_UPPER)}})
    create_table_artifact(table=table.to_dict("records"), key="forecast-table",
                          description=f"Forecasts of {run_date} ({written} rows; first {len(table)} shown)")
    published = Published(run_date=run_date.isoformat(), rows=written, series=int(rows[SERIES_ID].nunique()),
                          series_by_model=by_model, series_by_base=by_base,
                          parquet_path=str(parquet_path(settings.data_dir, run_date)),
                          model_version=champion_version or FALLBACK_VERSION,
                          duration_s=round(time.perf_counter() - started, 3))
    report = write_run_report(settings, run_date, filled, rows, summaries, published, log)
    if report is not None:
        published = replace(published, report_path=str(report))
        link = Path(report).resolve().as_uri() if files.is_local(report) else str(report)
        create_link_artifact(key="run-report", link=link,
                             link_text=f"Report of {run_date.isoformat()}",
                             description="Plots of history, forecasts and intervals; validation and model summaries")
    create_markdown_artifact(markdown=comparison_markdown(trained), key="model-comparison",
                             description="Challenger vs champion vs seasonal naive on the latest holdout")
    create_markdown_artifact(markdown=metrics_markdown(summaries, published), key="run-metrics",
                             description="Rows in/out, imputed share, validation loss, model version, durations")
    return published

"""Stage 7, realised accuracy (the Prefect task): score earlier publications against what was observed
since (forecasting/accuracy.py), store the rows (stores/accuracy.py: Parquet and the `forecast_accuracy`
table), show the rolling picture as the `realised-accuracy` artifact, and judge drift: when the champion's
realised accuracy since its last full retrain breaks the drift rule, the run says so, notifies, and leaves
the mark that makes the next run's training a full retrain."""

from __future__ import annotations

import time
from datetime import timedelta

import pandas as pd
import sqlalchemy as sa
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from forecasting.accuracy import DriftRule, drift_reason, rolling, score_publications
from forecasting.columns import RUN_DATE, TIMESTAMP
from forecasting.frequency import defaults_for
from forecasting.results import Filled, Scored, Trained, Validated
from forecasting.settings import Settings
from forecasting.summaries import accuracy_markdown
from stores import files
from stores.accuracy import read_accuracy, save_drift, save_scores, scored_run_dates
from stores.forecasts import read_publications, resolve_database_url
from stores.registry import read_metadata
from tasks.notify import notify_or_log
from tasks.retry import retrying


@task(name="accuracy", **retrying(OSError, sa.exc.OperationalError, sa.exc.InterfaceError))
def score_accuracy(settings: Settings, validated: Validated, filled: Filled, trained: Trained) -> Scored:
    """Prefect task: score, store, summarise and judge drift (see the module docstring)."""
    log = get_run_logger()
    started = time.perf_counter()
    as_of, run_date = pd.Timestamp(validated.as_of), pd.Timestamp(validated.run_date).date()
    publications = read_publications(settings.data_dir, run_date - timedelta(days=settings.accuracy_days), run_date)
    publications = publications[publications[TIMESTAMP] <= as_of]
    fresh = score_publications(publications, files.read_parquet(filled.clean_path),
                               defaults_for(validated.frequency).season)
    counts = save_scores(settings.data_dir, resolve_database_url(settings), fresh)
    if counts["restated"]:
        log.warning("Realised accuracy: %d point(s) restated (a late or corrected actual changed an already "
                    "scored value) and rescored", counts["restated"])
    recent = read_accuracy(settings.data_dir, scored_run_dates(settings.data_dir)[-28:])
    last_7, last_28 = rolling(recent, 7), rolling(recent, 28)
    drift = judge_drift(settings, trained, recent)
    notified = False
    if drift:
        log.warning("Drift of champion %s: %s; the next run retrains from scratch", trained.champion_version, drift)
        save_drift(settings.data_dir, {"as_of": validated.as_of, "run_date": validated.run_date,
                                       "champion": trained.champion_version, "reason": drift})
        notify_or_log(settings.notify_block, f"lstm-forecast: drift of {trained.champion_version}",
                      f"Run of {validated.run_date}: {drift}. The next run retrains from scratch.", log)
        notified = bool(settings.notify_block)
    log.info("Realised accuracy: %d new point(s) scored in %d publication(s); last 7 run dates MASE %.3f "
             "(seasonal naive %.3f), coverage %.2f over %d points", counts["new"], counts["publications_updated"],
             last_7.mase, last_7.naive_mase, last_7.coverage, last_7.points)
    scored = Scored(points_new=counts["new"], points_restated=counts["restated"],
                    publications_updated=counts["publications_updated"], last_7=last_7.as_dict(),
                    last_28=last_28.as_dict(), drift=drift, notified=notified,
                    duration_s=round(time.perf_counter() - started, 3))
    create_markdown_artifact(markdown=accuracy_markdown(scored, settings.interval_level), key="realised-accuracy",
                             description="Earlier forecasts against what happened: rolling MASE and coverage, drift")
    return scored


def judge_drift(settings: Settings, trained: Trained, recent: pd.DataFrame) -> str | None:
    """The drift rule on the champion's publications since its last full retrain (so one drift asks for one
    full retrain, not one per day while the rows from before it are in the window), held to the holdout
    MASE of that full retrain (warm starts re-score the holdout on ever newer data, so their own holdout
    would drift along with the data)."""
    if not trained.champion_version or recent.empty:
        return None
    metadata = read_metadata(settings.data_dir / "models", trained.champion_version)
    since = pd.Timestamp(metadata.get("full_retrain_as_of", "1970-01-01T00:00:00+00:00")).date().isoformat()
    window = rolling(recent[recent[RUN_DATE].astype(str) >= since], 7)
    rule = DriftRule(settings.drift_mase_ratio, settings.drift_naive_ratio, settings.drift_coverage_band,
                     settings.drift_min_points)
    reference = metadata.get("reference_holdout_mase", (metadata.get("holdout") or {}).get("challenger_mase"))
    return drift_reason(window, reference, settings.interval_level, rule)

"""Stage 3, gap-filling (the Prefect tasks): fill this run's valid series (forecasting/gapfill.py), in
chunks of `fanout_series` series on the configured task runner, or incrementally on the base run's clean
series; write `<data-dir>/clean/run_date=.../series.parquet` with its state, and the quarantine."""

from __future__ import annotations

import os
import time
from typing import Any

import pandas as pd
from prefect import get_run_logger, task, unmapped

from forecasting.columns import IMPUTED, SERIES_ID
from forecasting.gapfill import bridged_gaps, fill_limit, gapfill, gapfill_increment, resolve_method
from forecasting.results import Filled, Validated
from forecasting.settings import Settings
from stores import files
from stores.quarantine import quarantine_path, write_quarantine
from stores.registry import usable_champion
from stores.snapshots import (CLEAN_FILE, chunk_staging, clean_base, read_chunks, rebuilt_series,
                              write_chunk, write_clean_snapshot)
from tasks.retry import retrying
from tasks.runners import chunked, fanout_runner

def fill_champion(settings: Settings, freq: str, log: Any) -> Any:
    """The champion the `model` fill method forecasts gaps with (None for other methods, or none usable)."""
    if settings.fill_method != "model":
        return None
    return usable_champion(settings.data_dir / "models", freq, log)


@task(name="gap-fill-chunk", **retrying())
def fill_chunk(settings: Settings, validated: Validated, series_ids: list[str], number: int,
               staging: str) -> dict[str, Any]:
    """Prefect task: gap-fill one chunk of series (read from the validated rows by id) into the staging folder.

    Runs wherever the task runner puts it (a thread, or a Dask worker process), so it reads and writes
    files itself and returns only their paths and counts.
    """
    valid = files.read_parquet(validated.valid_path, filters=[(SERIES_ID, "in", series_ids)]) \
        if series_ids else files.read_parquet(validated.valid_path).iloc[0:0]
    champion = fill_champion(settings, validated.frequency, get_run_logger())
    result = gapfill(valid, validated.frequency, settings.fill_method, settings.max_gap, champion)
    return {**write_chunk(staging, number, result.clean, result.quarantined), "series": len(series_ids),
            "pid": os.getpid(), "champion": champion.version if champion else None}


@task(name="gap-fill", **retrying())
def merge_filled(settings: Settings, validated: Validated, parts: list[dict[str, Any]], started: float,
                 runner: str) -> Filled:
    """Prefect task: join the chunks in order into this run's clean series and quarantine, then report."""
    log = get_run_logger()
    clean, quarantined = read_chunks(parts)
    if settings.fill_method == "model":
        champion = parts[0]["champion"]
        log.info("Model gap-fill: %s", f"champion {champion}" if champion else
                 "no usable champion yet, gaps are interpolated linearly")
    return write_clean(settings, validated, clean, quarantined, log, started, {
        "mode": "full", "rows_processed": len(clean), "series_rebuilt": int(clean[SERIES_ID].nunique()),
        "chunks": len(parts), "workers": len({part["pid"] for part in parts}), "runner": runner})


@task(name="gap-fill", **retrying())
def fill_increment(settings: Settings, validated: Validated, base_folder: str) -> Filled:
    """Prefect task: gap-fill the rows new since the base run on top of its clean series (one task: an
    increment is small), series rebuilt by validation in full."""
    log = get_run_logger()
    started = time.perf_counter()
    champion = fill_champion(settings, validated.frequency, log)
    valid_path = files.as_path(validated.valid_path)
    result, full_ids, processed = gapfill_increment(
        files.read_parquet(valid_path), files.read_parquet(files.as_path(base_folder) / CLEAN_FILE),
        rebuilt_series(valid_path.parent), validated.frequency, settings.fill_method, settings.max_gap, champion)
    log.info("Incremental gap-fill on %s: %d new clean row(s); %d series filled in full",
             files.as_path(base_folder).name, processed, len(full_ids))
    return write_clean(settings, validated, result.clean, result.quarantined, log, started, {
        "mode": "incremental", "rows_processed": processed, "series_rebuilt": len(full_ids),
        "chunks": 1, "workers": 1, "runner": "this process"}, rebuilt=full_ids)


def write_clean(settings: Settings, validated: Validated, clean: pd.DataFrame, quarantined: pd.DataFrame,
                log: Any, started: float, facts: dict[str, Any], rebuilt: list[str] | None = None) -> Filled:
    """Write the run's clean series, quarantine and gap-fill state; log and summarise."""
    run_date = pd.Timestamp(validated.run_date).date()
    write_quarantine(quarantined, quarantine_path(settings.data_dir, run_date, "gapfill"))
    for reason in quarantined["reason"].unique():
        log.warning("Gap-fill: %s", reason)
    clean_path = write_clean_snapshot(settings, validated, clean, facts["mode"], rebuilt or [])
    imputed = int(clean[IMPUTED].sum())
    share = imputed / max(len(clean), 1)
    limit = fill_limit(settings.max_gap, validated.frequency)
    bridged = bridged_gaps(clean, limit)
    for gap in bridged.head(20).itertuples():
        log.warning("Gap-fill: series %r has a gap of %d periods from %s to %s, over the fill limit of %d "
                    "(setting max_gap), filled and marked imputed: it is short beside the history before it",
                    gap.series_id, gap.length, gap.gap_start.isoformat(), gap.gap_end.isoformat(), limit)
    log.info("Gap-fill (%s, %s, %d chunks on %s): %d rows in %d series, %d imputed (%.2f%%), %d series cut "
             "after a gap over max_gap, %d with such a gap filled",
             resolve_method(settings.fill_method, validated.frequency), facts["mode"], facts["chunks"],
             facts["runner"], len(clean), clean[SERIES_ID].nunique(), imputed, 100 * share,
             quarantined[SERIES_ID].nunique(), bridged[SERIES_ID].nunique())
    return Filled(
        clean_path=str(clean_path),
        rows=len(clean),
        series=int(clean[SERIES_ID].nunique()),
        imputed=imputed,
        imputed_share=round(share, 6),
        # Series whose history before a gap over max_gap was set aside (they are still forecast).
        series_cut_at_gap=int(quarantined[SERIES_ID].nunique()),
        rows_set_aside=len(quarantined),
        # Series with a gap over max_gap that was filled (bridged): short beside the history before it.
        series_bridged_gap=int(bridged[SERIES_ID].nunique()),
        **{k: v for k, v in facts.items() if k != "runner"},
        duration_s=round(time.perf_counter() - started, 3),
    )


def fill_gaps(settings: Settings, validated: Validated) -> Filled:
    """Gap-fill stage, inside the flow. After an incremental validation, one `gap-fill` task fills the new
    rows on the base run's clean series. Otherwise one `gap-fill-chunk` task per `fanout_series` series
    on the configured task runner (threads or Dask), then one `gap-fill` task that joins them."""
    base = clean_base(settings, validated)
    if base is not None:
        return fill_increment(settings, validated, str(base))
    started = time.perf_counter()
    run_date = pd.Timestamp(validated.run_date).date()
    ids = files.read_parquet(validated.valid_path, columns=[SERIES_ID])[SERIES_ID].drop_duplicates()
    chunks = chunked(sorted(map(str, ids)), settings.fanout_series)
    with chunk_staging(settings.data_dir, run_date) as staging:
        with fanout_runner(settings.task_runner, settings.dask_workers) as runner:
            futures = runner.map(fill_chunk, {"settings": unmapped(settings), "validated": unmapped(validated),
                                              "series_ids": chunks, "number": list(range(len(chunks))),
                                              "staging": unmapped(str(staging))})
            parts = [future.result() for future in futures]
        return merge_filled(settings, validated, parts, started, settings.task_runner)

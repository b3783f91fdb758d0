"""Stage 3, gap-filling: put each series on its regular grid and fill the holes, marking every fill.

Methods (setting `fill_method`): `ffill`, `bfill`, `linear` (by position), `time` (by timestamp),
`seasonal` (the value one season earlier, e.g. 7 days for daily data; linear where no such value exists),
and `model` (the current champion forecasts each gap from the `lookback` points before it, up to its
horizon at a time; linear interpolation where there is no champion, or too little history before a gap).
A series whose longest gap exceeds `max_gap` periods is quarantined rather than filled: inventing that
much data would teach the model made-up patterns.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task, unmapped

from tasks import storage
from tasks.columns import IMPUTED, SERIES_ID, TIMESTAMP, VALUE
from tasks.frequency import defaults_for
from tasks.runners import chunked, fanout_runner
from tasks.quarantine import quarantine_path, quarantine_records, write_quarantine
from tasks.settings import FillMethod, Settings

FILL_METHODS: tuple[str, ...] = ("ffill", "bfill", "linear", "time", "seasonal", "model")


def regularize(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
    """Each series reindexed onto its full grid from first to last timestamp; inserted rows have NaN values
    and `imputed=True`. Input: sorted, unique long-format rows of one frequency."""
    parts = []
    for series, group in frame.groupby(SERIES_ID, sort=True):
        grid = pd.date_range(group[TIMESTAMP].iloc[0], group[TIMESTAMP].iloc[-1], freq=freq)
        part = group.set_index(TIMESTAMP).drop(columns=SERIES_ID).reindex(grid)
        part.index.name = TIMESTAMP
        part = part.reset_index()
        part.insert(0, SERIES_ID, series)
        part[IMPUTED] = ~part[TIMESTAMP].isin(group[TIMESTAMP]).to_numpy()
        parts.append(part)
    if not parts:
        return frame.assign(**{IMPUTED: pd.Series(dtype=bool)})
    result = pd.concat(parts, ignore_index=True)
    result[SERIES_ID] = result[SERIES_ID].astype("string")
    result[TIMESTAMP] = result[TIMESTAMP].astype("datetime64[us, UTC]")
    return result


def longest_gaps(regular: pd.DataFrame) -> pd.DataFrame:
    """Per series: the longest run of imputed points, with where it starts and ends."""
    rows = []
    for series, group in regular.groupby(SERIES_ID, sort=True):
        missing = group[IMPUTED].to_numpy()
        if not missing.any():
            rows.append((series, 0, pd.NaT, pd.NaT))
            continue
        run_id = np.cumsum(~missing)  # constant along each run of missing points
        lengths = pd.Series(missing).groupby(run_id).sum()
        longest_run = lengths.idxmax()
        where = np.flatnonzero(missing & (run_id == longest_run))
        stamps = group[TIMESTAMP].to_numpy()
        rows.append((series, int(lengths.max()), stamps[where[0]], stamps[where[-1]]))
    return pd.DataFrame(rows, columns=[SERIES_ID, "longest_gap", "gap_start", "gap_end"])


def fill_values(regular: pd.DataFrame, method: FillMethod, season: int, champion: Any = None,
                freq: str | None = None) -> pd.DataFrame:
    """Fill NaN values per series with `method`; covariates are carried forward (then back).

    `champion` (a registry ModelVersion) and `freq` are used by the `model` method only.
    """
    if method not in FILL_METHODS:
        raise ValueError(f"fill method {method!r} is not one of {FILL_METHODS}")
    filled = regular.copy()
    by_series = filled.groupby(SERIES_ID, sort=False)
    if method == "ffill":
        filled[VALUE] = by_series[VALUE].ffill()
    elif method == "bfill":
        filled[VALUE] = by_series[VALUE].bfill()
    elif method in ("linear", "model"):
        filled[VALUE] = by_series[VALUE].transform(lambda s: s.interpolate("linear", limit_direction="both"))
    elif method == "time":
        values = filled[VALUE].copy()
        for index in by_series.groups.values():
            values.loc[index] = _time_interpolate(filled.loc[index])
        filled[VALUE] = values
    else:
        filled[VALUE] = by_series[VALUE].transform(lambda s: _seasonal_fill(s.to_numpy(), season))
    covariates = [c for c in filled.columns if c not in (SERIES_ID, TIMESTAMP, VALUE, IMPUTED)]
    for column in covariates:
        filled[column] = filled.groupby(SERIES_ID, sort=False)[column].transform(lambda s: s.ffill().bfill())
    if method == "model" and champion is not None:
        filled[VALUE] = model_fill(filled, champion, freq)  # over the linear fill, where history allows
    return filled


def model_fill(frame: pd.DataFrame, champion: Any, freq: str) -> np.ndarray:
    """Values with each gap replaced by the champion's median forecasts from the window before it.

    Gaps are filled in rounds, all series at once: each round forecasts up to `horizon` points of every
    gap that has `lookback` points before it, so a long gap is filled horizon by horizon.
    """
    from tasks.train import predict_quantiles
    from tasks.windows import add_features

    lookback, horizon = champion.config.lookback, champion.config.horizon
    values = frame[VALUE].to_numpy("float64", copy=True)
    imputed = frame[IMPUTED].to_numpy()
    scalers = champion.scalers.extend(frame[~frame[IMPUTED]])
    gaps = []  # [next position to fill, end position (exclusive)] of each gap with enough history
    for positions in frame.groupby(SERIES_ID, sort=False).indices.values():
        first = positions[0]
        missing = imputed[positions]
        starts = np.flatnonzero(missing & ~np.r_[False, missing[:-1]])
        ends = np.flatnonzero(missing & ~np.r_[missing[1:], False]) + 1
        gaps += [[first + a, first + b] for a, b in zip(starts, ends) if a >= lookback]
    while gaps:
        window_rows = np.concatenate([np.arange(start - lookback, start) for start, _ in gaps])
        windows = frame.iloc[window_rows].assign(**{VALUE: values[window_rows]})
        featured, _ = add_features(windows, scalers, freq)
        x = featured[list(champion.config.features)].to_numpy("float32").reshape(len(gaps), lookback, -1)
        median = predict_quantiles(champion.model, x)[..., 1]  # [gaps, horizon], scaled
        ids = featured[SERIES_ID].to_numpy()[::lookback]
        forecasts = scalers.target.inverse_transform(ids, median)
        for gap, forecast in zip(gaps, forecasts):
            count = min(horizon, gap[1] - gap[0])
            values[gap[0]:gap[0] + count] = forecast[:count]
            gap[0] += count
        gaps = [gap for gap in gaps if gap[0] < gap[1]]
    never_negative = frame.loc[~frame[IMPUTED]].groupby(SERIES_ID)[VALUE].min().reindex(frame[SERIES_ID]).to_numpy() >= 0
    return np.where(never_negative & imputed, np.maximum(values, 0.0), values)


def _time_interpolate(group: pd.DataFrame) -> np.ndarray:
    return group.set_index(TIMESTAMP)[VALUE].interpolate("time", limit_direction="both").to_numpy()


def _seasonal_fill(values: np.ndarray, season: int) -> np.ndarray:
    """Copy the value one season back into each hole (in time order, so long holes chain); linear otherwise."""
    out = values.astype("float64", copy=True)
    for position in np.flatnonzero(np.isnan(out)):
        if position >= season and not np.isnan(out[position - season]):
            out[position] = out[position - season]
    return pd.Series(out).interpolate("linear", limit_direction="both").to_numpy()


@dataclass
class GapFillResult:
    clean: pd.DataFrame
    quarantined: pd.DataFrame
    gaps: pd.DataFrame


def gapfill(valid: pd.DataFrame, freq: str, method: FillMethod, max_gap: int, champion: Any = None) -> GapFillResult:
    """Regularise, quarantine series with a gap longer than `max_gap` periods, fill the rest."""
    regular = regularize(valid, freq)
    gaps = longest_gaps(regular)
    too_long = gaps[gaps["longest_gap"] > max_gap]
    rejected = valid[valid[SERIES_ID].isin(too_long[SERIES_ID])]
    reasons = rejected[SERIES_ID].map({
        row.series_id: (f"series {row.series_id!r} has a gap of {row.longest_gap} periods from "
                        f"{row.gap_start.isoformat()} to {row.gap_end.isoformat()}, over the fill limit of "
                        f"{max_gap} (setting max_gap)")
        for row in too_long.itertuples()})
    quarantined = quarantine_records(rejected, stage="gapfill", reason=reasons.to_numpy())
    kept = regular[~regular[SERIES_ID].isin(too_long[SERIES_ID])]
    clean = fill_values(kept, method, season=defaults_for(freq).season, champion=champion, freq=freq)
    return GapFillResult(clean=clean.reset_index(drop=True), quarantined=quarantined, gaps=gaps)


@task(name="gap-fill-chunk")
def fill_chunk(settings: Settings, validated: dict[str, Any], series_ids: list[str], number: int,
               staging: str) -> dict[str, Any]:
    """Prefect task: gap-fill one chunk of series (read from the validated rows by id) into the staging folder.

    Runs wherever the task runner puts it (a thread, or a Dask worker process), so it reads and writes
    files itself and returns only their paths and counts.
    """
    valid = storage.read_parquet(validated["valid_path"], filters=[(SERIES_ID, "in", series_ids)]) \
        if series_ids else storage.read_parquet(validated["valid_path"]).iloc[0:0]
    champion = None
    if settings.fill_method == "model":
        from tasks.registry import usable_champion

        champion = usable_champion(settings.data_dir / "models", validated["frequency"], get_run_logger())
    result = gapfill(valid, validated["frequency"], settings.fill_method, settings.max_gap, champion)
    folder = storage.as_path(staging)
    clean_part, quarantine_part = folder / f"clean-{number:05d}.parquet", folder / f"quarantine-{number:05d}.parquet"
    storage.write_parquet(result.clean, clean_part)
    storage.write_parquet(result.quarantined, quarantine_part)
    return {"clean": str(clean_part), "quarantine": str(quarantine_part), "series": len(series_ids),
            "pid": os.getpid(), "champion": champion.version if champion else None}


@task(name="gap-fill")
def merge_filled(settings: Settings, validated: dict[str, Any], parts: list[dict[str, Any]], started: float,
                 runner: str) -> dict[str, Any]:
    """Prefect task: join the chunks in order into this run's clean series and quarantine, then report."""
    log = get_run_logger()
    run_date = pd.Timestamp(validated["run_date"]).date()
    clean = pd.concat([storage.read_parquet(part["clean"]) for part in parts], ignore_index=True)
    quarantined = pd.concat([storage.read_parquet(part["quarantine"]) for part in parts], ignore_index=True)
    if settings.fill_method == "model":
        champion = parts[0]["champion"]
        log.info("Model gap-fill: %s", f"champion {champion}" if champion else
                 "no usable champion yet, gaps are interpolated linearly")
    write_quarantine(quarantined, quarantine_path(settings.data_dir, run_date, "gapfill"))
    for reason in quarantined["reason"].unique():
        log.warning("Quarantined series: %s", reason)
    clean_path = storage.partition_dir(settings.data_dir / "clean", run_date) / "series.parquet"
    storage.write_parquet(clean, clean_path)
    imputed = int(clean[IMPUTED].sum())
    share = imputed / max(len(clean), 1)
    log.info("Gap-fill (%s, %d chunks on %s): %d rows in %d series, %d imputed (%.2f%%), %d series quarantined",
             settings.fill_method, len(parts), runner, len(clean), clean[SERIES_ID].nunique(), imputed,
             100 * share, quarantined[SERIES_ID].nunique())
    return {
        "clean_path": str(clean_path),
        "rows": len(clean),
        "series": int(clean[SERIES_ID].nunique()),
        "imputed": imputed,
        "imputed_share": round(share, 6),
        "series_quarantined": int(quarantined[SERIES_ID].nunique()),
        "chunks": len(parts),
        "workers": len({part["pid"] for part in parts}),
        "duration_s": round(time.perf_counter() - started, 3),
    }


def fill_gaps(settings: Settings, validated: dict[str, Any]) -> dict[str, Any]:
    """Gap-fill stage, inside the flow: one `gap-fill-chunk` task per `fanout_series` series on the
    configured task runner (threads or Dask), then one `gap-fill` task that joins them."""
    started = time.perf_counter()
    run_date = pd.Timestamp(validated["run_date"]).date()
    ids = storage.read_parquet(validated["valid_path"], columns=[SERIES_ID])[SERIES_ID].drop_duplicates()
    chunks = chunked(sorted(map(str, ids)), settings.fanout_series)
    staging = storage.partition_dir(settings.data_dir / "clean", run_date) / ".chunks"
    storage.remove_tree(staging)  # leftovers of an interrupted run of the same date
    staging.mkdir(parents=True)
    try:
        with fanout_runner(settings.task_runner, settings.dask_workers) as runner:
            futures = runner.map(fill_chunk, {"settings": unmapped(settings), "validated": unmapped(validated),
                                              "series_ids": chunks, "number": list(range(len(chunks))),
                                              "staging": unmapped(str(staging))})
            parts = [future.result() for future in futures]
        return merge_filled(settings, validated, parts, started, settings.task_runner)
    finally:
        storage.remove_tree(staging)

"""Stage 4, windowing: lookback/horizon windows with a time-ordered split, written to Parquet.

Windows are stored as indices over shared series arrays rather than copied out: `series.parquet` holds
every series' scaled values once, `index.parquet` holds one row per window (its start position and split).
A window at `start` has inputs `scaled[start : start+lookback]` and targets
`scaled[start+lookback : start+lookback+horizon]`, always inside one series. This keeps storage close to
the size of the clean data instead of lookback+horizon times it.

The split is by time for the whole panel: a cutoff timestamp is placed `val_periods` before the panel's
end. Training windows end on or before the cutoff; validation windows start their targets after it;
windows straddling the cutoff are dropped so no validation target is ever a training target.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task

from tasks import storage
from tasks.columns import IMPUTED, SERIES_ID, TIMESTAMP, VALUE
from tasks.errors import PipelineError
from tasks.frequency import defaults_for
from tasks.quarantine import quarantine_path, quarantine_records, write_quarantine
from tasks.scaling import SeriesScaler
from tasks.settings import Settings

SCALED = "value_scaled"
START = "start"
SPLIT = "split"
TRAIN, VALIDATION = "train", "val"


@dataclass
class WindowPlan:
    series: pd.DataFrame  # long format, sorted by series and time, with SCALED; row position = array index
    index: pd.DataFrame  # START (int64 row position), SPLIT
    scaler: SeriesScaler
    cutoff: pd.Timestamp
    too_short: pd.DataFrame  # rows of series with fewer points than the lookback


def resolve_sizes(freq: str, lookback: int | None, horizon: int | None) -> tuple[int, int]:
    defaults = defaults_for(freq)
    return lookback or defaults.lookback, horizon or defaults.horizon


def split_cutoff(timestamps: pd.Series, freq: str, horizon: int, val_fraction: float) -> tuple[pd.Timestamp, int]:
    """The panel-wide cutoff: `val_periods` periods before the last timestamp (at least one horizon)."""
    start, end = timestamps.min(), timestamps.max()
    total_periods = len(pd.date_range(start, end, freq=freq))
    val_periods = max(horizon, math.ceil(val_fraction * total_periods))
    grid = pd.date_range(end=end, periods=val_periods + 1, freq=freq)
    return grid[0], val_periods


def plan_windows(clean: pd.DataFrame, freq: str, lookback: int, horizon: int, val_fraction: float) -> WindowPlan:
    """Scale each series on its training slice and index every window; no window is copied."""
    clean = clean.sort_values([SERIES_ID, TIMESTAMP], kind="stable").reset_index(drop=True)
    lengths = clean.groupby(SERIES_ID, sort=True).size()
    short_ids = lengths.index[lengths < lookback]
    too_short = clean[clean[SERIES_ID].isin(short_ids)]
    series = clean[~clean[SERIES_ID].isin(short_ids)].reset_index(drop=True)
    if series.empty:
        raise PipelineError(f"every series is shorter than the lookback of {lookback} periods "
                            f"(longest has {lengths.max()}); lower --lookback or supply more history")
    cutoff, _ = split_cutoff(series[TIMESTAMP], freq, horizon, val_fraction)

    # Scaler statistics: observed (not imputed) training points; a series that starts after the cutoff
    # falls back to its first `lookback` points, which are only ever model inputs, never targets.
    training = series[(series[TIMESTAMP] <= cutoff) & ~series[IMPUTED]]
    counts = training.groupby(SERIES_ID).size()
    late = series[~series[SERIES_ID].isin(counts.index[counts >= 2])]
    fit_rows = pd.concat([training, late.groupby(SERIES_ID, sort=False).head(lookback)])
    scaler = SeriesScaler().fit(fit_rows)
    series[SCALED] = scaler.transform(series[SERIES_ID], series[VALUE].to_numpy()).astype("float32")

    # Window starts, vectorised: per series, positions first..last-(lookback+horizon)+1.
    lengths = series.groupby(SERIES_ID, sort=True).size().to_numpy()
    firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    per_series = np.maximum(lengths - lookback - horizon + 1, 0)
    starts = np.repeat(firsts, per_series) + (np.arange(per_series.sum()) - np.repeat(np.cumsum(per_series)
                                                                                    - per_series, per_series))
    stamps = series[TIMESTAMP].dt.tz_convert(None).to_numpy()  # datetime64, UTC
    target_start = stamps[starts + lookback]
    target_end = stamps[starts + lookback + horizon - 1]
    cutoff64 = np.datetime64(cutoff.tz_convert(None))
    split = np.where(target_end <= cutoff64, TRAIN, np.where(target_start > cutoff64, VALIDATION, ""))
    keep = split != ""
    index = pd.DataFrame({START: starts[keep].astype("int64"), SPLIT: pd.Categorical(split[keep],
                                                                                 [TRAIN, VALIDATION])})
    return WindowPlan(series=series, index=index, scaler=scaler, cutoff=cutoff, too_short=too_short)


def materialize(scaled: np.ndarray, starts: np.ndarray, lookback: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs [n, lookback, 1] and targets [n, horizon] for windows at `starts`, via strided views."""
    view_in = np.lib.stride_tricks.sliding_window_view(scaled, lookback)
    view_out = np.lib.stride_tricks.sliding_window_view(scaled, horizon)
    inputs = view_in[starts][..., None]  # [batch, lookback, features=1]
    targets = view_out[starts + lookback]  # [batch, horizon]
    return inputs.astype("float32"), targets.astype("float32")


@task(name="windows")
def build_windows(settings: Settings, validated: dict[str, Any], filled: dict[str, Any]) -> dict[str, Any]:
    """Prefect task: plan windows for this run and write them under `<data-dir>/windows/run_date=.../`."""
    log = get_run_logger()
    started = time.perf_counter()
    run_date = pd.Timestamp(validated["run_date"]).date()
    freq = validated["frequency"]
    lookback, horizon = resolve_sizes(freq, settings.lookback, settings.horizon)
    plan = plan_windows(storage.read_parquet(filled["clean_path"]), freq, lookback, horizon, settings.val_fraction)
    reasons = plan.too_short[SERIES_ID].map(lambda s: f"series {s!r} has fewer points than the lookback of "
                                            f"{lookback} periods; it cannot be forecast yet")
    write_quarantine(quarantine_records(plan.too_short, stage="windows", reason=reasons.to_numpy()),
                     quarantine_path(settings.data_dir, run_date, "windows"))
    folder = storage.partition_dir(settings.data_dir / "windows", run_date)
    storage.write_parquet(plan.series[[SERIES_ID, TIMESTAMP, VALUE, IMPUTED, SCALED]], folder / "series.parquet")
    storage.write_parquet(plan.index, folder / "index.parquet")
    storage.write_json(plan.scaler.to_dict(), folder / "scaler.json")
    n_train = int((plan.index[SPLIT] == TRAIN).sum())
    n_val = int((plan.index[SPLIT] == VALIDATION).sum())
    meta = {"lookback": lookback, "horizon": horizon, "frequency": freq, "cutoff": plan.cutoff.isoformat(),
            "train_windows": n_train, "val_windows": n_val, "series": int(plan.series[SERIES_ID].nunique())}
    storage.write_json(meta, folder / "meta.json")
    if n_train == 0 or n_val == 0:
        raise PipelineError(f"not enough history to train: {n_train} training and {n_val} validation windows "
                            f"with lookback {lookback} and horizon {horizon} (cutoff {plan.cutoff.isoformat()}); "
                            "lower --lookback/--horizon or supply more history")
    log.info("Windows: %d train + %d validation (lookback %d, horizon %d, cutoff %s) over %d series",
             n_train, n_val, lookback, horizon, plan.cutoff.isoformat(), meta["series"])
    return {**meta, "folder": str(folder), "too_short_series": int(plan.too_short[SERIES_ID].nunique()),
            "duration_s": round(time.perf_counter() - started, 3)}

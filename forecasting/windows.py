"""Windowing: lookback/horizon windows with a time-ordered split (stores/windows.py writes them to Parquet).

Windows are stored as indices over shared series arrays rather than copied out: `series.parquet` holds
every series' features once (scaled target, calendar encodings, scaled covariates), `index.parquet` holds
one row per window (its start position and split). A window at `start` has inputs
`features[start : start+lookback]` and targets `target[start+lookback : start+lookback+horizon]`, always
inside one series. This keeps storage close to the size of the clean data instead of lookback+horizon
times it.

The split is by time for the whole panel: a cutoff timestamp is placed `val_periods` before the panel's
end. Training windows end on or before the cutoff; validation windows start their targets after it;
windows straddling the cutoff are dropped so no validation target is ever a training target. Scalers
are fitted on observed (not imputed) points up to the cutoff.

Series shorter than the lookback cannot feed the network; they are listed in `short_series` and
forecast by the seasonal-naive fallback at publication, never dropped silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np
import pandas as pd

from forecasting.columns import IMPUTED, SERIES_ID, TIMESTAMP, VALUE
from forecasting.errors import PipelineError
from forecasting.features import calendar_features
from forecasting.frequency import defaults_for, periods_per_year
from forecasting.rows import append_rows, in_series, last_per_series, newer_rows, series_blocks
from forecasting.scaling import Scalers, TargetTransform
from forecasting.smoothing import BaseSmoothing, base_period
from forecasting.smoothing import CHANNELS as SMOOTHING_CHANNELS
from forecasting.smoothing import PROFILE


SCALED = "value_scaled"


START = "start"


SPLIT = "split"


TRAIN, VALIDATION = "train", "val"


@dataclass
class WindowPlan:
    series: pd.DataFrame  # long format, sorted by series and time, with feature columns; row = array index
    features: list[str]  # model input channels, SCALED first
    index: pd.DataFrame  # START (int64 row position), SPLIT
    scalers: Scalers
    cutoff: pd.Timestamp
    short_series: list[str]  # fewer points than the lookback: seasonal-naive fallback


def longest_length(clean: pd.DataFrame) -> int | None:
    """Points in the longest series of `clean` (None when it is empty): what the default window fits."""
    return int(clean.groupby(SERIES_ID).size().max()) if len(clean) else None


def resolve_sizes(freq: str, lookback: int | None, horizon: int | None,
                  longest: int | None = None) -> tuple[int, int]:
    """(lookback, horizon): the given ones, else the frequency's defaults; with `longest` (the longest
    series' length) the default window shrinks to the recurrent lookback where full windows would not fit."""
    defaults = defaults_for(freq) if longest is None else defaults_for(freq).sizes_for(longest)
    return lookback or defaults.lookback, horizon or defaults.horizon


def split_cutoff(timestamps: pd.Series, freq: str, horizon: int, val_fraction: float) -> pd.Timestamp:
    """The panel-wide cutoff: `val_periods` periods before the last timestamp (at least one horizon)."""
    start, end = timestamps.min(), timestamps.max()
    total_periods = len(pd.date_range(start, end, freq=freq))
    val_periods = max(horizon, math.ceil(val_fraction * total_periods))
    return pd.date_range(end=end, periods=val_periods + 1, freq=freq)[0]


def covariate_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in (SERIES_ID, TIMESTAMP, VALUE, IMPUTED)
            and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].notna().all()]


def add_features(frame: pd.DataFrame, scalers: Scalers, freq: str) -> tuple[pd.DataFrame, list[str]]:
    """`frame` plus the model's input channels: scaled target, calendar encodings, scaled covariates, and the
    seasonal base's smoothing statistics (constant per series) and profile channel where the scalers carry
    them. The profile channel reads each series' rows from its first one: hand whole series (or recompute it
    with `with_profile` once they are whole)."""
    frame = frame.copy()
    frame[SCALED] = scalers.target.scale(frame[SERIES_ID], frame[VALUE].to_numpy()).astype("float32")
    calendar = calendar_features(frame[TIMESTAMP], freq)
    for column in calendar.columns:
        frame[column] = calendar[column].to_numpy()
    scaled_covariates = []
    for name, scaler in scalers.covariates.items():
        frame[f"{name}_scaled"] = scaler.scale(frame[SERIES_ID], frame[name].to_numpy()).astype("float32")
        scaled_covariates.append(f"{name}_scaled")
    smoothing = []
    if scalers.smoothing is not None:
        statistics = scalers.smoothing.channels(frame[SERIES_ID])
        for position, column in enumerate(SMOOTHING_CHANNELS):
            frame[column] = statistics[:, position]
        smoothing = list(SMOOTHING_CHANNELS)
        frame = with_profile(frame, scalers)
        if PROFILE in frame:
            smoothing.append(PROFILE)
    return frame, [SCALED, *calendar.columns, *scaled_covariates, *smoothing]


def with_profile(frame: pd.DataFrame, scalers: Scalers) -> pd.DataFrame:
    """`frame` (each series' rows together, in time order, from its first row) with the seasonal base's
    profile channel (forecasting/smoothing.py, PROFILE) computed from its scaled target; unchanged where the
    scalers' statistics predate the channel."""
    observed = ~frame[IMPUTED].to_numpy(dtype=bool) if IMPUTED in frame.columns else None
    profiles = scalers.smoothing.profiles(frame[SERIES_ID], frame[SCALED].to_numpy(), observed) \
        if scalers.smoothing is not None else None
    return frame if profiles is None else frame.assign(**{PROFILE: profiles})


def window_starts(lengths: np.ndarray, lookback: int, horizon: int) -> np.ndarray:
    """Start rows of every window of series stored one after another with these lengths, in one pass of
    array arithmetic (no loop per window or per series): positions first..last-(lookback+horizon)+1."""
    lengths = np.asarray(lengths, dtype="int64")
    firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype("int64")
    per_series = np.maximum(lengths - lookback - horizon + 1, 0)
    offsets = np.arange(per_series.sum(), dtype="int64") - np.repeat(np.cumsum(per_series) - per_series, per_series)
    return np.repeat(firsts, per_series) + offsets


def plan_windows(clean: pd.DataFrame, freq: str, lookback: int, horizon: int, val_fraction: float,
                 transform: TargetTransform = "auto") -> WindowPlan:
    """Fit scalers on the training slice, add features and index every window; no window is copied."""
    clean = clean.sort_values([SERIES_ID, TIMESTAMP], kind="stable").reset_index(drop=True)
    lengths = clean.groupby(SERIES_ID, sort=True).size()
    short_ids = [str(s) for s in lengths.index[lengths < lookback]]
    series = clean[~clean[SERIES_ID].isin(short_ids)].reset_index(drop=True)
    if clean.empty:
        raise PipelineError("no series is left to window: every series was quarantined upstream "
                            "(see the run's quarantine files for the reasons)")
    if series.empty:
        raise PipelineError(f"every series is shorter than the lookback of {lookback} periods "
                            f"(longest has {int(lengths.max())}); lower --lookback or supply more history")
    cutoff = split_cutoff(series[TIMESTAMP], freq, horizon, val_fraction)
    defaults = defaults_for(freq)
    period = base_period(defaults.season, defaults.long_season, lookback)
    smoothing = BaseSmoothing(period, horizon, lookback // period if period > 1 else 0, periods_per_year(freq),
                              lookback=lookback)
    scalers = Scalers.fit(scaler_rows(series, cutoff, lookback), transform, covariate_columns(series))
    scalers.fit_smoothing(smoothing, scaler_rows(series, cutoff, lookback, observed_only=False))
    series, features = add_features(series, scalers, freq)
    return WindowPlan(series=series, features=features, index=index_windows(series, lookback, horizon, cutoff),
                      scalers=scalers, cutoff=cutoff, short_series=short_ids)


def scaler_rows(series: pd.DataFrame, cutoff: pd.Timestamp, lookback: int, observed_only: bool = True) -> pd.DataFrame:
    """The rows scalers are fitted on: observed training points (up to the cutoff; imputed ones too unless
    `observed_only`); a series that starts after the cutoff falls back to its first `lookback` points,
    which are only ever inputs, never targets."""
    keep = series[TIMESTAMP] <= cutoff
    if observed_only:
        keep &= ~series[IMPUTED]
    training = series[keep]
    counts = training.groupby(SERIES_ID).size()
    late = series[~series[SERIES_ID].isin(counts.index[counts >= 2])]
    return pd.concat([training, late.groupby(SERIES_ID, sort=False).head(lookback)])


def index_windows(series: pd.DataFrame, lookback: int, horizon: int, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Every window's start row and split over series sorted by id and time: training windows end on or
    before the cutoff, validation windows start their targets after it, straddling ones are dropped."""
    _, _, ends = series_blocks(series)
    starts = window_starts(np.diff(ends, prepend=0), lookback, horizon)
    stamps = series[TIMESTAMP].dt.tz_convert(None).to_numpy()  # datetime64, UTC
    target_start = stamps[starts + lookback]
    target_end = stamps[starts + lookback + horizon - 1]
    cutoff64 = np.datetime64(cutoff.tz_convert(None))
    split = np.where(target_end <= cutoff64, 0, np.where(target_start > cutoff64, 1, -1))  # category codes
    keep = split >= 0
    return pd.DataFrame({START: starts[keep].astype("int64"),
                         SPLIT: pd.Categorical.from_codes(split[keep], [TRAIN, VALIDATION])})


def plan_increment(clean: pd.DataFrame, base_series: pd.DataFrame, scalers: Scalers, rebuilt: set[str], freq: str,
                   lookback: int, horizon: int, val_fraction: float) -> tuple[WindowPlan, int]:
    """Windows on top of an earlier run's featured series (`base_series`) and its cycle's scalers: only rows
    new since then get features; series the base did not window (new, short before, or rebuilt upstream)
    get features for all their rows, with scalers fitted for the ones the cycle's scalers lack. The split
    moves with the data (the index is recomputed by array arithmetic). Returns the plan and the number
    of rows featured by this run."""
    base_last = last_per_series(base_series)
    codes, uniques = pd.factorize(clean[SERIES_ID])
    lengths = pd.Series(np.bincount(codes, minlength=len(uniques)), index=pd.Index(uniques, dtype=object))
    ids = lengths.index
    carried = ids.intersection(base_last.index).difference(pd.Index(sorted(rebuilt), dtype=object))
    new = clean[newer_rows(clean, base_last.reindex(carried))]
    others = ids.difference(carried)
    short_ids = [str(s) for s in others[lengths.reindex(others).to_numpy() < lookback]]
    whole = clean[in_series(clean, set(others.astype(str)) - set(short_ids))]
    dropped = set(base_last.index.difference(carried).astype(str))
    kept = base_series[~in_series(base_series, dropped)] if dropped else base_series
    first = min([stamp for stamp in (kept[TIMESTAMP].min(), whole[TIMESTAMP].min()) if pd.notna(stamp)])
    newest = max([stamp for stamp in (kept[TIMESTAMP].max(), new[TIMESTAMP].max(), whole[TIMESTAMP].max())
                  if pd.notna(stamp)])
    cutoff = split_cutoff(pd.Series([first, newest]), freq, horizon, val_fraction)
    scalers.extend(scaler_rows(whole, cutoff, lookback))  # only series the cycle's scalers lack
    fresh, features = add_features(pd.concat([new, whole], ignore_index=True), scalers, freq)
    series = append_rows(kept, fresh[kept.columns])
    if PROFILE in features:  # new rows' channel reads the rows before them: recompute it on whole series
        series = with_profile(series, scalers)
    plan = WindowPlan(series=series, features=features, index=index_windows(series, lookback, horizon, cutoff),
                      scalers=scalers, cutoff=cutoff, short_series=short_ids)
    return plan, len(fresh)


@dataclass
class WindowSource:
    """Windows as start positions over shared arrays: features [rows, n_features], target [rows].

    Training streams batches from here (see forecasting/model/dataset.py), so memory holds the series once
    plus one batch, never every window.
    """

    features: np.ndarray
    target: np.ndarray
    starts: dict[str, np.ndarray]  # split -> window start positions
    lookback: int
    horizon: int
    # 1.0 where the target was observed, 0.0 where gap-fill imputed it (None: all observed). Imputed points
    # are inputs, never targets: they carry no weight in the loss, the calibration or the holdout score.
    observed: np.ndarray | None = None

    @classmethod
    def from_plan(cls, plan: WindowPlan, lookback: int, horizon: int) -> "WindowSource":
        return cls.from_frames(plan.series, plan.index, plan.features, lookback, horizon)

    @classmethod
    def from_frames(cls, series: pd.DataFrame, index: pd.DataFrame, features: list[str], lookback: int,
                    horizon: int) -> "WindowSource":
        starts = {split: index.loc[index[SPLIT] == split, START].to_numpy("int64") for split in (TRAIN, VALIDATION)}
        observed = None
        if IMPUTED in series.columns and series[IMPUTED].any():
            observed = np.ascontiguousarray((~series[IMPUTED].to_numpy(dtype=bool)).astype("float32"))
        return cls(np.ascontiguousarray(series[features].to_numpy("float32")),
                   np.ascontiguousarray(series[SCALED].to_numpy("float32")), starts, lookback, horizon, observed)

    def count(self, split: str) -> int:
        return len(self.starts[split])

    def window(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inputs [n, lookback, features] and targets [n, horizon] of the windows at `starts`."""
        return materialize(self.features, self.target, starts, self.lookback, self.horizon)

    def target_weights(self, starts: np.ndarray) -> np.ndarray | None:
        """[n, horizon]: 1 for observed targets, 0 for imputed ones; None when every point was observed."""
        if self.observed is None:
            return None
        view = np.lib.stride_tricks.sliding_window_view(self.observed, self.horizon)
        return np.ascontiguousarray(view[starts + self.lookback])

    def chunks(self, split: str, size: int = 4096):
        """(inputs, targets) of a split's windows, `size` at a time, in order."""
        starts = self.starts[split]
        for i in range(0, len(starts), size):
            yield self.window(starts[i:i + size])

    def weighted_chunks(self, split: str, size: int = 4096):
        """(inputs, targets, target weights or None) of a split's windows, `size` at a time, in order."""
        starts = self.starts[split]
        for i in range(0, len(starts), size):
            yield (*self.window(starts[i:i + size]), self.target_weights(starts[i:i + size]))


def materialize(features: np.ndarray, target: np.ndarray, starts: np.ndarray, lookback: int,
                horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs [n, lookback, n_features] and targets [n, horizon] for windows at `starts`, via strided views."""
    features = np.asarray(features, dtype="float32").reshape(len(features), -1)
    view_in = np.lib.stride_tricks.sliding_window_view(features, lookback, axis=0)  # [rows, features, lookback]
    view_out = np.lib.stride_tricks.sliding_window_view(np.asarray(target, dtype="float32"), horizon)
    return np.ascontiguousarray(view_in[starts].transpose(0, 2, 1)), np.ascontiguousarray(view_out[starts + lookback])

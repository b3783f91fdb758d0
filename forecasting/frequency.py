"""Per-series frequency inference and the defaults that depend on frequency.

A frequency is kept as a pandas offset alias string ("D", "h", "7D", "MS", ...) so it is JSON-friendly
and can rebuild the regular grid with `pandas.date_range`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forecasting.columns import SERIES_ID, TIMESTAMP


@dataclass(frozen=True)
class FrequencyDefaults:
    """What a sensible user would pick for data of one frequency."""

    lookback: int  # steps of history each window hands the model
    horizon: int
    season: int  # periods in the dominant seasonal cycle, used by seasonal fill and seasonal naive
    # A longer cycle the seasonal base averages when the window spans two of them (the week of sub-daily
    # data); 0: none.
    long_season: int = 0
    # The most recent steps of the window the recurrent layers read; None: all of it. The seasonal base
    # reads the whole window, so a long window costs the network nothing.
    recurrent_lookback: int | None = None
    # Steps between the holdout windows that decide promotion and per-series fallback. Sub-daily: a day, so
    # each starts at the time of day the published forecast will, and `holdout_windows` of them cover as
    # many days (one step apart, 28 hourly windows scored one day and a bit and chose by its luck).
    holdout_spacing: int = 1
    # Longest gap (periods) gap-fill fills; history before a longer one is set aside. Sub-daily: two days, so
    # a day-long outage is filled (imputed points are never targets) instead of costing all earlier history.
    max_gap: int = 14
    # Periods a series may lag the as-of before it is quarantined as stale (publication forecasts a lagging
    # series through its missing periods). Sub-daily: two days, as max_gap: an outage gap-fill would fill
    # inside the history does not cost a series at its end either (at 7 periods, an hourly series 10 hours
    # late was quarantined, and with it a single-series run).
    max_staleness: int = 7

    def sizes_for(self, longest: int) -> "FrequencyDefaults":
        """These defaults, with a shorter window when the longest series is shorter than two full windows
        (too few windows of the full length to train on): what the recurrent layers read where the frequency
        sets that, else half the window, but not below the two seasons the seasonal base needs for a profile
        where the full window holds them (monthly windows keep their two years). On the development panel
        an 80-week M4 series had no training window at any cut with the 52-week window and published
        seasonal naive (MASE 0.673); with 26 weeks the model trained (0.589; AutoETS 0.632)."""
        if longest >= 2 * self.lookback:
            return self
        if self.recurrent_lookback is not None:
            return replace(self, lookback=self.recurrent_lookback)
        shorter = self.lookback // 2
        if self.season > 1 and self.lookback >= 2 * self.season:
            shorter = max(shorter, 2 * self.season)
        return self if shorter >= self.lookback else replace(self, lookback=shorter)


# Recurrent lookbacks set the cost of every training step on a 2-core CPU. Hourly data's recurrent layers
# look back a week (as NeuralForecast's defaults do): on the development panel's M4 hourly series MASE
# 1.03 -> 0.80 against 72 hours, at 1.6x the CPU. Its windows span two weeks, so the seasonal base can
# average a weekly profile (weekday and weekend hours apart) over two weeks, which alone, with no network,
# scores 0.73 there against 0.97 for the daily profile of one week (and 0.31 against 1.28 on 30-minute
# electricity demand); the two-week window costs the recurrent layers nothing.
_DEFAULTS = {
    "min": FrequencyDefaults(lookback=120, horizon=60, season=60),
    "h": FrequencyDefaults(lookback=336, horizon=24, season=24, long_season=168, recurrent_lookback=168,
                           holdout_spacing=24, max_gap=48, max_staleness=48),
    "D": FrequencyDefaults(lookback=28, horizon=14, season=7),
    "W": FrequencyDefaults(lookback=52, horizon=8, season=52),
    "M": FrequencyDefaults(lookback=24, horizon=12, season=12),
}
_FALLBACK = FrequencyDefaults(lookback=32, horizon=8, season=1)


def defaults_for(freq: str) -> FrequencyDefaults:
    """Defaults for an offset alias; unknown multiples fall back to generic values.

    Sub-daily steps that divide a day into 2 to 96 periods (30 minutes, 2 hours, 15 minutes, ...) get the
    hourly rule in their own periods: the season is a day, the long season a week, the horizon a day, the
    window two weeks, of which the recurrent layers read a week, or three days where a week would be over
    168 steps (finer than hourly: the cost of a recurrent step grows with it).
    """
    if freq in ("MS", "ME"):
        return _DEFAULTS["M"]
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    for unit, size in (("min", "1min"), ("h", "1h"), ("D", "1D"), ("W", "7D")):
        if step == pd.Timedelta(size):
            return _DEFAULTS[unit]
    day = pd.Timedelta(days=1)
    if step < day and day % step == pd.Timedelta(0) and 2 <= day // step <= 96:
        per_day = int(day // step)
        recurrent = 7 * per_day if 7 * per_day <= 168 else 3 * per_day
        return FrequencyDefaults(lookback=14 * per_day, horizon=per_day, season=per_day, long_season=7 * per_day,
                                 recurrent_lookback=recurrent, holdout_spacing=per_day, max_gap=2 * per_day,
                                 max_staleness=2 * per_day)
    return _FALLBACK


def periods_per_year(freq: str) -> int:
    """Periods of `freq` in a year (365 days; 12 for calendar months, 52 for weeks)."""
    if freq in ("MS", "ME"):
        return 12
    if freq.startswith("W"):  # anchored weeks ("W", "W-SUN") have no fixed Timedelta in pandas
        return 52
    return max(1, int(pd.Timedelta(days=365) // pd.Timedelta(pd.tseries.frequencies.to_offset(freq))))


def infer_frequency(timestamps: pd.Series) -> str | None:
    """Frequency of one series from its (sorted, unique, UTC) timestamps; None with fewer than 2.

    The most common spacing wins, so a series with gaps still gets its true frequency. Month-start and
    month-end series are recognised as calendar months, which have no fixed spacing, when their most
    common spacing is a month (a missing month leaves a two-month step, not a 59-day frequency).
    """
    ts = pd.DatetimeIndex(timestamps.dropna().unique()).sort_values()
    if len(ts) < 2:
        return None
    deltas = pd.Series(ts[1:] - ts[:-1])
    month_long = deltas.between(pd.Timedelta(days=28), pd.Timedelta(days=31))
    if month_long.mean() > 0.5 and (ts == ts.normalize()).all():
        if ts.is_month_start.all():
            return "MS"
        if ts.is_month_end.all():
            return "ME"
    return _alias(deltas.mode().iloc[0])


def _alias(step: pd.Timedelta) -> str:
    """Readable offset alias for a fixed spacing: 1 day is "D", 6 hours "6h", 90 seconds "90s"."""
    for unit, size in (("D", pd.Timedelta(days=1)), ("h", pd.Timedelta(hours=1)),
                       ("min", pd.Timedelta(minutes=1)), ("s", pd.Timedelta(seconds=1))):
        if step % size == pd.Timedelta(0):
            count = step // size
            return unit if count == 1 else f"{count}{unit}"
    return pd.tseries.frequencies.to_offset(step).freqstr


def infer_frequencies(frame: pd.DataFrame, *, series_id: str = SERIES_ID, timestamp: str = TIMESTAMP) -> pd.Series:
    """Frequency alias (or None) per series id."""
    return frame.groupby(series_id, sort=True)[timestamp].agg(infer_frequency)


def on_grid(timestamps: pd.Series, freq: str) -> np.ndarray:
    """True where a timestamp lies on the regular grid of `freq` anchored at the series' first timestamp."""
    valid = timestamps.dropna()
    result = np.zeros(len(timestamps), dtype=bool)
    if valid.empty:
        return result
    grid = pd.date_range(valid.min(), valid.max(), freq=freq)
    result[timestamps.notna().to_numpy()] = valid.isin(grid).to_numpy()
    return result


def periods_between(start: pd.Timestamp, end: pd.Timestamp, freq: str) -> int:
    """Whole periods of `freq` from start to end (0 when end <= start)."""
    if end <= start:
        return 0
    return max(len(pd.date_range(start, end, freq=freq)) - 1, 0)


def fixed_step(freq: str) -> pd.Timedelta | None:
    """The spacing of a fixed-step frequency ("D", "6h"); None for calendar months."""
    try:
        return pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    except ValueError:
        return None


def on_grid_from(timestamps: pd.Series, anchors: pd.Series, freq: str) -> np.ndarray:
    """True where each timestamp lies on the `freq` grid through its row's anchor (an earlier on-grid
    timestamp of the same series): the on-grid check for new rows of a series already known."""
    step = fixed_step(freq)
    if step is None:  # calendar months: on the grid means the same day-of-month rule at midnight
        ts = pd.DatetimeIndex(timestamps)
        rule = ts.is_month_start if freq == "MS" else ts.is_month_end
        return np.asarray(rule & (ts == ts.normalize()), dtype=bool)
    offset = pd.Series(timestamps.array - anchors.array)  # datetime arrays, not Python objects
    return ((offset % step) == pd.Timedelta(0)).to_numpy(dtype=bool, na_value=False)


def periods_since(last_seen: pd.Series, as_of: pd.Timestamp, freq: str) -> np.ndarray:
    """`periods_between(last, as_of, freq)` for many series at once (vectorised for fixed steps)."""
    step = fixed_step(freq)
    if step is None:
        return np.array([periods_between(last, as_of, freq) for last in last_seen], dtype="int64")
    lag = (as_of - pd.DatetimeIndex(last_seen)) // step
    return np.maximum(np.asarray(lag, dtype="int64"), 0)


def frequency_change(timestamps: pd.Series, freq: str, min_run: int = 4) -> tuple[pd.Timestamp, str] | None:
    """(since, new spacing) when a series' latest `min_run` spacings all equal one another and differ
    from `freq` (e.g. daily data that turned into every-3-days data); None otherwise.

    Gaps are irregular; a run of identical, different spacings at the end is a source that changed how
    often it reports, and gap-filling it would invent most of the recent points.
    """
    try:
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    except ValueError:  # calendar months have no fixed spacing
        return None
    ts = pd.DatetimeIndex(timestamps.dropna().unique()).sort_values()
    deltas = ts[1:] - ts[:-1]
    if len(deltas) < min_run:
        return None
    last = deltas[-1]
    if last == step or not (deltas[-min_run:] == last).all():
        return None
    run = min_run
    while run < len(deltas) and deltas[-run - 1] == last:
        run += 1
    if run == len(deltas):  # the whole series has this spacing: it is the series' frequency, no change
        return None
    return ts[-run - 1], _alias(last)

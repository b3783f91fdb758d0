"""Model input features besides the target: cyclic calendar encodings and scaled covariates.

Calendar position is encoded as sin/cos pairs, so the last day of a cycle sits next to the first
(Sunday beside Monday, December beside January) instead of at the far end of a ramp. Which cycles are
used depends on the frequency: hour of day and day of week for sub-daily data, day of week and day of
year for daily, week of year for weekly, month of year for monthly.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.frequency import defaults_for

# (name, extractor, period) per frequency family.
_CYCLES = {
    "subdaily": [("hour_of_day", lambda t: t.hour + t.minute / 60.0, 24.0),
                 ("day_of_week", lambda t: t.day_of_week + t.hour / 24.0, 7.0)],
    "daily": [("day_of_week", lambda t: t.day_of_week, 7.0), ("day_of_year", lambda t: t.day_of_year - 1, 365.25)],
    "weekly": [("week_of_year", lambda t: t.isocalendar().week.to_numpy() - 1, 52.18)],
    "monthly": [("month_of_year", lambda t: t.month - 1, 12.0)],
}


def _family(freq: str) -> str | None:
    if freq in ("MS", "ME"):
        return "monthly"
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    if step < pd.Timedelta(days=1):
        return "subdaily"
    if step == pd.Timedelta(days=1):
        return "daily"
    if step == pd.Timedelta(days=7):
        return "weekly"
    return None


def calendar_columns(freq: str) -> list[str]:
    family = _family(freq)
    return [f"{name}_{fn}" for name, _, _ in _CYCLES.get(family, []) for fn in ("sin", "cos")]


def calendar_features(timestamps: pd.Series, freq: str) -> pd.DataFrame:
    """Cyclic calendar encodings for each timestamp: columns `calendar_columns(freq)`, values in [-1, 1]."""
    stamps = pd.DatetimeIndex(timestamps)
    columns = {}
    for name, extract, period in _CYCLES.get(_family(freq), []):
        angle = 2 * np.pi * np.asarray(extract(stamps), dtype="float64") / period
        columns[f"{name}_sin"] = np.sin(angle).astype("float32")
        columns[f"{name}_cos"] = np.cos(angle).astype("float32")
    return pd.DataFrame(columns, index=timestamps.index if isinstance(timestamps, pd.Series) else None)


def level_window(freq: str, lookback: int) -> int:
    """How many recent steps define a window's level: one season, capped at the lookback."""
    return max(1, min(defaults_for(freq).season, lookback))

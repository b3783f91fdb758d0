"""Forecast accuracy metrics and the seasonal-naive reference, on plain numpy arrays.

Kept free of pandas and the rest of the pipeline so the baseline benchmark (which runs in its own
environment, next to statsforecast) scores every method with exactly this code.
"""

from __future__ import annotations

import numpy as np


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeat the last full season (the last value when the history is shorter than a season)."""
    history = np.asarray(history, dtype="float64")
    if len(history) == 0:
        raise ValueError("seasonal naive needs at least one observation")
    if len(history) < season:
        return np.repeat(history[-1], horizon)
    last_season = history[-season:]
    return np.resize(last_season, horizon)


def mase_scale(history: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal-naive forecast with lag `season` (lag 1 if the history is too short)."""
    history = np.asarray(history, dtype="float64")
    lag = season if len(history) > season else 1
    if len(history) <= lag:
        return float("nan")
    return float(np.mean(np.abs(history[lag:] - history[:-lag])))


def mase(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray, season: int) -> float:
    """Mean absolute scaled error; NaN when the history has no variation to scale by."""
    scale = mase_scale(history, season)
    if not np.isfinite(scale) or scale == 0:
        return float("nan")
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(forecast))) / scale)


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric MAPE in percent (0..200); points where both are zero count as exact."""
    actual, forecast = np.asarray(actual, dtype="float64"), np.asarray(forecast, dtype="float64")
    denominator = np.abs(actual) + np.abs(forecast)
    ratio = np.divide(2 * np.abs(actual - forecast), denominator, out=np.zeros_like(denominator),
                      where=denominator > 0)
    return float(100 * np.mean(ratio))


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actual values inside [lower, upper]."""
    actual = np.asarray(actual)
    return float(np.mean((actual >= np.asarray(lower)) & (actual <= np.asarray(upper))))

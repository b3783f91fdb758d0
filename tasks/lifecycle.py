"""Champion and challenger: score models on the latest holdout windows and decide promotion.

The holdout is the latest `holdout_windows` validation windows of every series: targets no model has
trained on (training windows end at the cutoff, before the validation period). Each candidate is scored
by MASE on the original scale, where the scale of a window is the in-sample seasonal-naive MAE of the
series' history before that window's first target. Seasonal naive is scored on the same windows: a
model that cannot beat it is not worth publishing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from tasks.columns import SERIES_ID, VALUE
from tasks.frequency import defaults_for
from tasks.metrics import mase_scale, seasonal_naive
from tasks.registry import ModelVersion
from tasks.scaling import Scalers
from tasks.windows import SCALED, SPLIT, START, VALIDATION, add_features, materialize


@dataclass
class Verdict:
    promote: bool
    reason: str
    challenger_mase: float
    champion_mase: float | None
    seasonal_naive_mase: float
    windows: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def holdout_starts(series: pd.DataFrame, index: pd.DataFrame, per_series: int) -> np.ndarray:
    """Start positions of the latest `per_series` validation windows of every series."""
    val = index[index[SPLIT] == VALIDATION].copy()
    val[SERIES_ID] = series[SERIES_ID].to_numpy()[val[START].to_numpy()]
    latest = val.sort_values(START).groupby(SERIES_ID, sort=False).tail(per_series)
    return np.sort(latest[START].to_numpy())


def mean_mase(series: pd.DataFrame, starts: np.ndarray, forecasts: np.ndarray, lookback: int, season: int) -> float:
    """Mean MASE of [n, horizon] original-scale forecasts for the windows at `starts`."""
    values = series[VALUE].to_numpy("float64")
    ids = series[SERIES_ID].to_numpy()
    firsts = pd.Series(np.arange(len(ids))).groupby(ids).transform("min").to_numpy()
    horizon = forecasts.shape[1]
    scores = []
    for row, start in enumerate(starts):
        origin = start + lookback
        scale = mase_scale(values[firsts[start]:origin], season)
        if np.isfinite(scale) and scale > 0:
            scores.append(np.mean(np.abs(values[origin:origin + horizon] - forecasts[row])) / scale)
    return float(np.mean(scores)) if scores else float("nan")


def model_forecasts(model: Any, correction: Any, scalers: Scalers, series: pd.DataFrame, features: list[str],
                    starts: np.ndarray, lookback: int, horizon: int) -> np.ndarray:
    """Median forecasts on the original scale for windows at `starts`, features already in `series`."""
    from tasks.train import predict_quantiles

    x, _ = materialize(series[features].to_numpy("float32"), series[SCALED].to_numpy("float32"), starts,
                       lookback, horizon)
    median = predict_quantiles(model, x, correction)[..., 1]
    ids = series[SERIES_ID].to_numpy()[starts]
    return scalers.target.inverse_transform(ids, median)


def challenge(model: Any, interval: dict[str, Any], scalers: Scalers, champion: ModelVersion | None,
              series: pd.DataFrame, index: pd.DataFrame, config: Any, freq: str, per_series: int,
              diverged: bool = False) -> Verdict:
    """Score challenger, champion and seasonal naive on the holdout and decide whether to promote."""
    lookback, horizon, season = config.lookback, config.horizon, defaults_for(freq).season
    starts = holdout_starts(series, index, per_series)
    values = series[VALUE].to_numpy("float64")
    naive = np.stack([seasonal_naive(values[s:s + lookback], horizon, season) for s in starts])
    naive_score = mean_mase(series, starts, naive, lookback, season)
    challenger = mean_mase(series, starts, model_forecasts(model, interval["correction"], scalers, series,
                                                           list(config.features), starts, lookback, horizon),
                           lookback, season)
    champion_score = None
    note = ""
    if champion is not None:
        if champion.config.architecture() == config.architecture():
            champion_series, _ = add_features(series, champion.scalers.extend(series), freq)
            champion_score = mean_mase(series, starts, model_forecasts(
                champion.model, champion.metadata["interval"]["correction"], champion.scalers, champion_series,
                list(champion.config.features), starts, lookback, horizon), lookback, season)
        else:
            note = f" (champion {champion.version} has a different architecture and is not compared)"
    return decide(challenger, champion_score, naive_score, len(starts), diverged,
                  champion.version if champion is not None else None, note)


def decide(challenger: float, champion: float | None, naive: float, windows: int, diverged: bool = False,
           champion_version: str | None = None, note: str = "") -> Verdict:
    """Promote only a finite challenger that beats seasonal naive and (if comparable) the champion."""
    scores = dict(challenger_mase=challenger, champion_mase=champion, seasonal_naive_mase=naive, windows=windows)
    if diverged or not np.isfinite(challenger):
        return Verdict(False, "training diverged (non-finite loss or forecasts); the champion keeps publishing",
                       **scores)
    if challenger >= naive:
        return Verdict(False, f"challenger MASE {challenger:.4f} does not beat seasonal naive {naive:.4f}{note}",
                       **scores)
    if champion is not None and challenger >= champion:
        return Verdict(False, f"challenger MASE {challenger:.4f} does not beat champion {champion_version} "
                              f"{champion:.4f}", **scores)
    versus = f"champion {champion:.4f} and " if champion is not None else ""
    return Verdict(True, f"challenger MASE {challenger:.4f} beats {versus}seasonal naive {naive:.4f}{note}", **scores)

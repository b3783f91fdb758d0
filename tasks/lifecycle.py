"""Champion and challenger: score models on the latest holdout windows and decide promotion.

The holdout is the latest `holdout_windows` validation windows of every series: targets no model has
trained on (training windows end at the cutoff, before the validation period). Each candidate is scored
by MASE on the original scale, where the scale of a window is the in-sample seasonal-naive MAE of the
series' history before that window's first target. Seasonal naive is scored on the same windows: a
model that cannot beat it is not worth publishing, and the decision is made per series too: a series
where seasonal naive beats the model on its own holdout windows is published by seasonal naive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from tasks.columns import IMPUTED, SERIES_ID, VALUE
from tasks.frequency import defaults_for
from tasks.metrics import mase_scale, seasonal_naive
from tasks.registry import ModelVersion
from tasks.scaling import Scalers
from tasks.windows import SCALED, SPLIT, START, VALIDATION, add_features, materialize


@dataclass
class Verdict:
    promote: bool
    reason: str
    challenger_mase: float  # what the challenger would publish: the model, seasonal naive on fallback series
    champion_mase: float | None  # the same for the champion, with its own fallback series
    seasonal_naive_mase: float
    windows: int
    model_mase: float | None = None  # the challenger's model on every series, before any fallback
    fallback_series: list[str] = field(default_factory=list)  # series where seasonal naive beat the model
    series: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def holdout_starts(series: pd.DataFrame, index: pd.DataFrame, per_series: int) -> np.ndarray:
    """Start positions of the latest `per_series` validation windows of every series."""
    val = index[index[SPLIT] == VALIDATION].copy()
    val[SERIES_ID] = series[SERIES_ID].to_numpy()[val[START].to_numpy()]
    latest = val.sort_values(START).groupby(SERIES_ID, sort=False).tail(per_series)
    return np.sort(latest[START].to_numpy())


def window_mase(series: pd.DataFrame, starts: np.ndarray, forecasts: np.ndarray, lookback: int,
                season: int) -> np.ndarray:
    """MASE of each window's [horizon] original-scale forecast (windows at `starts`) on its observed targets
    (imputed ones are not scored); NaN without a scale or without an observed target."""
    values = series[VALUE].to_numpy("float64")
    observed = ~series[IMPUTED].to_numpy(dtype=bool) if IMPUTED in series.columns else np.ones(len(values), bool)
    ids = series[SERIES_ID].to_numpy()
    firsts = pd.Series(np.arange(len(ids))).groupby(ids).transform("min").to_numpy()
    horizon = forecasts.shape[1]
    scores = np.full(len(starts), np.nan)
    for row, start in enumerate(starts):
        origin = start + lookback
        scale = mase_scale(values[firsts[start]:origin], season)
        keep = observed[origin:origin + horizon]
        if np.isfinite(scale) and scale > 0 and keep.any():
            errors = np.abs(values[origin:origin + horizon] - forecasts[row])
            scores[row] = np.mean(errors[keep]) / scale
    return scores


def mean_score(scores: np.ndarray) -> float:
    """Mean of the finite window scores; NaN when there is none."""
    return float(np.nanmean(scores)) if np.isfinite(scores).any() else float("nan")


def series_choices(series: pd.DataFrame, starts: np.ndarray, model_scores: np.ndarray,
                   naive_scores: np.ndarray) -> pd.DataFrame:
    """Per series, from its holdout windows: model and seasonal-naive MASE and whether the model publishes
    (it must beat seasonal naive on that series; a series without a finite score keeps the model)."""
    frame = pd.DataFrame({SERIES_ID: series[SERIES_ID].to_numpy()[starts], "model_mase": model_scores,
                          "naive_mase": naive_scores})
    per_series = frame.groupby(SERIES_ID, sort=True)[["model_mase", "naive_mase"]].mean()
    per_series["use_model"] = ~(per_series["model_mase"] >= per_series["naive_mase"])
    return per_series.reset_index()


def published_mase(choices: pd.DataFrame, series: pd.DataFrame, starts: np.ndarray, model_scores: np.ndarray,
                   naive_scores: np.ndarray) -> float:
    """Mean holdout MASE of what would be published: the model's where it is chosen, else seasonal naive's."""
    use = pd.Series(choices["use_model"].to_numpy(), index=choices[SERIES_ID].to_numpy())
    chosen = use.reindex(series[SERIES_ID].to_numpy()[starts]).fillna(True).to_numpy(dtype=bool)
    return mean_score(np.where(chosen, model_scores, naive_scores))


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
    """Score challenger, champion and seasonal naive on the holdout and decide whether to promote.

    Each series publishes the model only where the model beats seasonal naive on that series' holdout
    windows (the rest fall back to seasonal naive, listed in `fallback_series`); challenger and champion
    are compared by the holdout MASE of what each would publish.
    """
    lookback, horizon, season = config.lookback, config.horizon, defaults_for(freq).season
    starts = holdout_starts(series, index, per_series)
    values = series[VALUE].to_numpy("float64")
    naive = np.stack([seasonal_naive(values[s:s + lookback], horizon, season) for s in starts])
    naive_scores = window_mase(series, starts, naive, lookback, season)
    model_scores = window_mase(series, starts, model_forecasts(model, interval["correction"], scalers, series,
                                                               list(config.features), starts, lookback, horizon),
                               lookback, season)
    choices = series_choices(series, starts, model_scores, naive_scores)
    challenger = published_mase(choices, series, starts, model_scores, naive_scores)
    champion_score = None
    note = ""
    if champion is not None:
        if champion.config.architecture() == config.architecture():
            champion_series, _ = add_features(series, champion.scalers.extend(series), freq)
            champion_scores = window_mase(series, starts, model_forecasts(
                champion.model, champion.metadata["interval"]["correction"], champion.scalers, champion_series,
                list(champion.config.features), starts, lookback, horizon), lookback, season)
            fallback = set(champion.metadata.get("fallback_series", []))
            champion_choices = choices.assign(use_model=~choices[SERIES_ID].astype(str).isin(fallback))
            champion_score = published_mase(champion_choices, series, starts, champion_scores, naive_scores)
        else:
            note = f" (champion {champion.version} has a different architecture and is not compared)"
    verdict = decide(challenger, champion_score, mean_score(naive_scores), len(starts), diverged,
                     champion.version if champion is not None else None, note)
    return replace(verdict, model_mase=mean_score(model_scores), series=len(choices),
                   fallback_series=sorted(map(str, choices.loc[~choices["use_model"], SERIES_ID])))


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

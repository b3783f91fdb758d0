"""Realised accuracy: earlier publications scored against what was observed since, rolled up over recent
run dates, and the drift rule that asks for a full retrain.

A published forecast row (series, run date, step) is scored once its timestamp has an observed value (an
imputed point is not an observation). Its error is scaled like the holdout's MASE: by the series' in-sample
seasonal-naive MAE of its history up to the forecast's origin, so realised and holdout scores compare. The
seasonal-naive forecast from the same origin is scored on the same points, so a hard week for everyone
is told apart from a model that went wrong.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecasting.columns import (IMPUTED, MODEL_VERSION, ORIGIN, RUN_DATE, SERIES_ID, STEP, TIMESTAMP, VALUE, YHAT,
                                 YHAT_LOWER, YHAT_UPPER)

Y, ABS_ERROR, SCALED_ERROR, NAIVE_SCALED_ERROR, COVERED = "y", "abs_error", "scaled_error", "naive_scaled_error", \
    "covered"
ACCURACY_COLUMNS = (SERIES_ID, RUN_DATE, ORIGIN, STEP, TIMESTAMP, Y, YHAT, YHAT_LOWER, YHAT_UPPER, ABS_ERROR,
                    SCALED_ERROR, NAIVE_SCALED_ERROR, COVERED, MODEL_VERSION)
KEY = (RUN_DATE, SERIES_ID, STEP)


def score_publications(forecasts: pd.DataFrame, clean: pd.DataFrame, season: int) -> pd.DataFrame:
    """Accuracy rows (ACCURACY_COLUMNS) of every forecast row whose timestamp has an observed value in `clean`
    (the regular series with the `imputed` flag, sorted by series and time)."""
    if forecasts.empty or clean.empty:
        return pd.DataFrame(columns=list(ACCURACY_COLUMNS))
    clean = clean.sort_values([SERIES_ID, TIMESTAMP], kind="stable").reset_index(drop=True)
    ids = clean[SERIES_ID].astype(str).to_numpy()
    values = clean[VALUE].to_numpy("float64")
    observed = ~clean[IMPUTED].to_numpy(dtype=bool) if IMPUTED in clean.columns else np.ones(len(clean), bool)
    position = pd.Series(np.arange(len(clean)), index=pd.MultiIndex.from_arrays([ids, clean[TIMESTAMP]]))
    firsts = pd.Series(np.arange(len(ids))).groupby(ids).transform("min").to_numpy()
    rows = forecasts.assign(**{SERIES_ID: forecasts[SERIES_ID].astype(str)})
    at = position.reindex(pd.MultiIndex.from_arrays([rows[SERIES_ID], rows[TIMESTAMP]])).to_numpy()
    origin_at = position.reindex(pd.MultiIndex.from_arrays([rows[SERIES_ID], rows[ORIGIN]])).to_numpy()
    keep = np.isfinite(at) & np.isfinite(origin_at)
    keep[keep] = observed[at[keep].astype(int)]
    rows, at, origin_at = rows[keep].reset_index(drop=True), at[keep].astype(int), origin_at[keep].astype(int)
    steps = rows[STEP].to_numpy("int64")
    scales = _scales_at(values, ids, firsts, origin_at, season)
    # Seasonal naive from the same origin: the value one (or more) whole seasons before the target, inside
    # the history up to the origin; the last value where the history is shorter than a season.
    back = season * np.ceil(steps / season).astype(int)
    naive_at = np.where(origin_at - firsts[origin_at] + 1 >= season, origin_at + steps - back, origin_at)
    y = values[at]
    out = rows[[SERIES_ID, RUN_DATE, ORIGIN, STEP, TIMESTAMP]].copy()
    out[Y] = y
    for column in (YHAT, YHAT_LOWER, YHAT_UPPER):
        out[column] = rows[column].to_numpy("float64")
    out[ABS_ERROR] = np.abs(y - out[YHAT].to_numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        out[SCALED_ERROR] = np.where(scales > 0, out[ABS_ERROR].to_numpy() / scales, np.nan)
        out[NAIVE_SCALED_ERROR] = np.where(scales > 0, np.abs(y - values[naive_at]) / scales, np.nan)
    out[COVERED] = (y >= out[YHAT_LOWER].to_numpy()) & (y <= out[YHAT_UPPER].to_numpy())
    out[MODEL_VERSION] = rows[MODEL_VERSION].astype(str).to_numpy()
    return out[list(ACCURACY_COLUMNS)].sort_values(list(KEY)).reset_index(drop=True)


def _scales_at(values: np.ndarray, ids: np.ndarray, firsts: np.ndarray, origins: np.ndarray,
               season: int) -> np.ndarray:
    """metrics.mase_scale of each series' history up to and including each origin position, from running
    sums (one pass per lag, not one per origin)."""
    scales = np.full(len(origins), np.nan)
    length = origins - firsts[origins] + 1
    for lag in {season, 1}:
        diffs = np.zeros(len(values))
        same = np.zeros(len(values), bool)
        same[lag:] = ids[lag:] == ids[:-lag]
        diffs[lag:] = np.where(same[lag:], np.abs(values[lag:] - values[:-lag]), 0.0)
        total, count = np.cumsum(diffs), np.cumsum(same)
        before = firsts[origins] - 1
        sums = total[origins] - np.where(before >= 0, total[np.maximum(before, 0)], 0.0)
        counts = count[origins] - np.where(before >= 0, count[np.maximum(before, 0)], 0)
        use = (length > season) if lag == season else (length <= season) & (length > 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            scales = np.where(use & (counts > 0), sums / np.maximum(counts, 1), scales)
    return scales


def merge_scores(earlier: pd.DataFrame, fresh: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """A publication's accuracy rows after this run: the earlier rows, plus the newly scored ones, with
    restated actuals (a changed `y` for a row already scored) replaced. Returns (rows, new, restated)."""
    if earlier.empty:
        return fresh.reset_index(drop=True), len(fresh), 0
    key = list(KEY)
    joined = earlier.merge(fresh[[*key, Y]], on=key, how="outer", suffixes=("", "_fresh"), indicator=True)
    new = int((joined["_merge"] == "right_only").sum())
    both = joined["_merge"] == "both"
    restated = int((both & ~np.isclose(joined[Y], joined[f"{Y}_fresh"], rtol=1e-9, atol=0.0)).sum())
    # Rows this run could still score take its values; rows it cannot (e.g. now outside the data) stay.
    kept = earlier.merge(fresh[key], on=key, how="left", indicator=True)
    kept = kept[kept["_merge"] == "left_only"].drop(columns="_merge")
    rows = pd.concat([kept, fresh], ignore_index=True).sort_values(key).reset_index(drop=True)
    return rows[list(ACCURACY_COLUMNS)], new, restated


@dataclass(frozen=True)
class Rolling:
    """Realised accuracy over the latest `run_dates` publication dates that have scored points."""

    run_dates: int
    first_run_date: str | None
    points: int
    mase: float  # mean scaled error of the published forecasts
    naive_mase: float  # seasonal naive's on the same points
    coverage: float  # share of points inside the published interval
    worst_series: str | None
    worst_series_mase: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rolling(accuracy: pd.DataFrame, run_dates: int) -> Rolling:
    """Realised MASE, seasonal naive's MASE and coverage over the latest `run_dates` publications."""
    dates = sorted(accuracy[RUN_DATE].astype(str).unique())[-run_dates:] if len(accuracy) else []
    recent = accuracy[accuracy[RUN_DATE].astype(str).isin(dates)]
    scored = recent[np.isfinite(recent[SCALED_ERROR].astype("float64"))]
    if scored.empty:
        return Rolling(len(dates), dates[0] if dates else None, 0, float("nan"), float("nan"), float("nan"),
                       None, float("nan"))
    by_series = scored.groupby(SERIES_ID)[SCALED_ERROR].mean()
    return Rolling(run_dates=len(dates), first_run_date=dates[0], points=len(scored),
                   mase=float(scored[SCALED_ERROR].mean()), naive_mase=float(scored[NAIVE_SCALED_ERROR].mean()),
                   coverage=float(recent[COVERED].mean()), worst_series=str(by_series.idxmax()),
                   worst_series_mase=float(by_series.max()))


@dataclass(frozen=True)
class DriftRule:
    mase_ratio: float  # realised MASE over this many times the champion's holdout MASE ...
    naive_ratio: float  # ... and over this many times seasonal naive's on the same points is drift
    coverage_band: float  # so is coverage further than this from the interval's level
    min_points: int  # fewer scored points than this: too little to say


def drift_reason(recent: Rolling, holdout_mase: float | None, level: float, rule: DriftRule) -> str | None:
    """Why the champion's realised accuracy counts as drift (None: it does not, or too few points)."""
    if recent.points < rule.min_points or not np.isfinite(recent.mase):
        return None
    reasons = []
    # Worse than at training time *and* worse than seasonal naive on the same points: a week that is hard
    # for every method (a holiday, an outage) is not the model's drift.
    degraded = holdout_mase is not None and np.isfinite(holdout_mase) and recent.mase > rule.mase_ratio * holdout_mase
    beaten = np.isfinite(recent.naive_mase) and recent.mase > rule.naive_ratio * recent.naive_mase
    if degraded and beaten:
        reasons.append(f"realised MASE {recent.mase:.3f} is over {rule.mase_ratio:g} x the champion's holdout "
                       f"MASE {holdout_mase:.3f} and over {rule.naive_ratio:g} x seasonal naive's "
                       f"{recent.naive_mase:.3f} on the same points")
    if abs(recent.coverage - level) > rule.coverage_band:
        reasons.append(f"coverage {recent.coverage:.2f} is outside {level:.2f} +/- {rule.coverage_band:.2f}")
    if not reasons:
        return None
    return (f"over the last {recent.run_dates} publication(s) since the champion's last full retrain "
            f"({recent.points} points): " + "; ".join(reasons))

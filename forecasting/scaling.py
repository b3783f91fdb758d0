"""Per-series scaling, fitted on a training slice only and saved as JSON with the model.

One global model sees series whose levels differ by orders of magnitude (page views from 100 to 100,000),
so each series gets its own statistics. Non-negative series (counts, volumes) are first put on a log1p
scale, where multiplicative seasonality and spikes become additive and tame; then each series is
standardised by its own mean and standard deviation. The statistics come from the training part alone:
fitting on everything would leak the validation period into training.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from forecasting.columns import SERIES_ID, VALUE
from forecasting.smoothing import BaseSmoothing

TargetTransform = Literal["auto", "log1p", "none"]


class SeriesScaler(TransformerMixin, BaseEstimator):
    """A scikit-learn transformer of long-format frames: `fit(X)` learns `log_`, `mean_` and `scale_` per
    series id from the `series_id` and `value` columns of X (the training slice); `transform(X)` returns the
    scaled values [n] and `inverse_transform(X)` undoes it. `scale` and `unscale` do the same on an id array
    and values of any shape ([n], [n, horizon], [n, horizon, k]: one id per row), as the model needs.

    transform_kind: "auto" takes log1p of series that are never negative in the training slice, "log1p" of
    every series (negative values are clipped to 0 first), "none" of none.
    """

    def __init__(self, transform_kind: TargetTransform = "none", min_scale: float = 1e-8,
                 series_id: str = SERIES_ID, value: str = VALUE):
        self.transform_kind = transform_kind
        self.min_scale = min_scale
        self.series_id = series_id
        self.value = value

    def fit(self, X: pd.DataFrame, y: Any = None) -> "SeriesScaler":
        """Learn per-series statistics from X (the training slice); constant series get scale 1."""
        values = X[self.value].to_numpy(dtype="float64")
        # Integer codes instead of string keys: grouping and lookups stay O(rows) with small constants.
        codes, uniques = pd.factorize(X[self.series_id], sort=True)
        index = pd.Index(np.asarray(uniques, dtype=object).astype(str))
        minimum = pd.Series(values).groupby(codes).min().to_numpy()
        log = minimum >= 0 if self.transform_kind == "auto" else np.full(len(index), self.transform_kind == "log1p")
        self.log_ = pd.Series(log.astype(bool), index=index)
        warped = self._warp(values, log[codes])
        stats = pd.Series(warped).groupby(codes).agg(["mean", "std"])
        scale = stats["std"].fillna(0.0).to_numpy(dtype="float64")
        self.mean_ = pd.Series(stats["mean"].to_numpy(dtype="float64"), index=index)
        self.scale_ = pd.Series(np.where(scale > self.min_scale, scale, 1.0), index=index)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        return self.scale(X[self.series_id], X[self.value].to_numpy())

    def inverse_transform(self, X: pd.DataFrame) -> np.ndarray:
        return self.unscale(X[self.series_id], X[self.value].to_numpy())

    def scale(self, series_ids: Any, values: np.ndarray) -> np.ndarray:
        log, mean, scale = self._lookup(series_ids)
        return (self._warp(np.asarray(values, dtype="float64"), log) - mean) / scale

    def unscale(self, series_ids: Any, scaled: np.ndarray) -> np.ndarray:
        """Undo `scale`; `scaled` may be [n], [n, horizon] or [n, horizon, k] with one series id per row."""
        log, mean, scale = self._lookup(series_ids)
        scaled = np.asarray(scaled, dtype="float64")
        shape = (-1,) + (1,) * (scaled.ndim - 1)
        warped = scaled * scale.reshape(shape) + mean.reshape(shape)
        return np.where(log.reshape(shape), np.expm1(warped), warped)

    def knows(self, series_ids: Any) -> np.ndarray:
        return pd.Series(series_ids, dtype="string").astype(str).isin(self.mean_.index).to_numpy()

    def extend(self, X: pd.DataFrame) -> "SeriesScaler":
        """Add statistics for series not seen at fit time (fitted on X, e.g. their recent inputs)."""
        unknown = X[~self.knows(X[self.series_id])]
        if unknown.empty:
            return self
        extra = clone(self).fit(unknown)
        self.log_ = pd.concat([self.log_, extra.log_])
        self.mean_ = pd.concat([self.mean_, extra.mean_])
        self.scale_ = pd.concat([self.scale_, extra.scale_])
        return self

    @staticmethod
    def _warp(values: np.ndarray, log: np.ndarray) -> np.ndarray:
        log = np.broadcast_to(log, values.shape) if np.ndim(log) else np.full(values.shape, bool(log))
        return np.where(log, np.log1p(np.clip(values, 0.0, None)), values)

    def _lookup(self, series_ids: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        check_is_fitted(self, msg="SeriesScaler is not fitted; call fit() on the training slice first")
        codes, uniques = pd.factorize(pd.Series(series_ids, dtype="string"))
        names = pd.Index(np.asarray(uniques, dtype=object).astype(str))
        positions = [statistic.index.get_indexer(names) for statistic in (self.log_, self.mean_, self.scale_)]
        unknown = (positions[1] < 0) | (positions[0] < 0) | (positions[2] < 0)
        if unknown.any() or (codes < 0).any():
            raise KeyError(f"no scaling statistics for series {names[unknown][:5].tolist()}; "
                           "they were not in the training data")
        log, mean, scale = (statistic.to_numpy()[where][codes]
                            for statistic, where in zip((self.log_, self.mean_, self.scale_), positions))
        return log.astype(bool), mean.astype("float64"), scale.astype("float64")

    def to_dict(self) -> dict[str, Any]:
        return {"transform": self.transform_kind, "log1p": self.log_.to_dict(), "mean": self.mean_.to_dict(),
                "scale": self.scale_.to_dict(), "min_scale": self.min_scale}

    @classmethod
    def from_dict(cls, payload: dict[str, Any], value: str = VALUE) -> "SeriesScaler":
        """The scaler `to_dict` saved; `value`: the column it scales (a covariate's name)."""
        scaler = cls(payload.get("transform", "none"), min_scale=payload.get("min_scale", 1e-8), value=value)
        scaler.mean_ = pd.Series(payload["mean"], dtype="float64")
        scaler.scale_ = pd.Series(payload["scale"], dtype="float64")
        log = payload.get("log1p") or {}
        scaler.log_ = pd.Series({key: bool(log.get(key, False)) for key in scaler.mean_.index}, dtype=bool)
        return scaler


class Scalers:
    """The target's scaler plus one plain (no log) scaler per covariate column, saved together as JSON, and
    the seasonal base's per-series smoothing statistics (forecasting/smoothing.py), fitted on the same scaled
    training slice; None for versions saved before they existed."""

    def __init__(self, target: SeriesScaler, covariates: dict[str, SeriesScaler] | None = None,
                 smoothing: BaseSmoothing | None = None):
        self.target = target
        self.covariates = covariates or {}
        self.smoothing = smoothing

    @classmethod
    def fit(cls, training: pd.DataFrame, transform: TargetTransform, covariates: list[str]) -> "Scalers":
        return cls(SeriesScaler(transform).fit(training),
                   {name: SeriesScaler("none", value=name).fit(training) for name in covariates})

    def fit_smoothing(self, smoothing: BaseSmoothing, rows: pd.DataFrame) -> "Scalers":
        """Fit `smoothing` on `rows` (each series' training slice in time order, imputed points included:
        a hole in the series would shift every later point's phase) scaled by the fitted target scaler."""
        self.smoothing = smoothing.fit(rows[SERIES_ID], self.target.scale(rows[SERIES_ID], rows[VALUE].to_numpy()))
        return self

    def extend(self, frame: pd.DataFrame) -> "Scalers":
        """Statistics for series unseen at fit time, from `frame` (their recent history; inputs only)."""
        self.target.extend(frame)
        for name, scaler in self.covariates.items():
            scaler.extend(frame)
        if self.smoothing is not None:
            unknown = frame[~self.smoothing.knows(frame[SERIES_ID])]
            if not unknown.empty:
                self.smoothing.extend(unknown[SERIES_ID], self.target.scale(
                    unknown[SERIES_ID], unknown[VALUE].to_numpy()))
        return self

    def to_dict(self) -> dict[str, Any]:
        payload = {"target": self.target.to_dict(),
                   "covariates": {name: scaler.to_dict() for name, scaler in self.covariates.items()}}
        if self.smoothing is not None:
            payload["smoothing"] = self.smoothing.to_dict()
        return payload

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "Scalers":
        smoothing = BaseSmoothing.from_dict(payload["smoothing"]) if "smoothing" in payload else None
        return cls(SeriesScaler.from_dict(payload["target"]),
                   {name: SeriesScaler.from_dict(item, value=name) for name, item in payload.get("covariates", {}).items()},
                   smoothing)

"""Per-series standard scaling, fitted on a training slice only and saved as JSON with the model.

One global model sees series whose levels differ by orders of magnitude (page views from 100 to 100,000),
so each series is scaled by its own mean and standard deviation. The statistics come from the training
part alone: fitting on everything would leak the validation period into training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tasks.columns import SERIES_ID, VALUE


class SeriesScaler:
    """scikit-learn style: `fit` learns `mean_` and `scale_` per series id; `transform` needs a fitted scaler."""

    def __init__(self, min_scale: float = 1e-8):
        self.min_scale = min_scale

    def fit(self, frame: pd.DataFrame, *, series_id: str = SERIES_ID, value: str = VALUE) -> "SeriesScaler":
        """Learn per-series statistics from `frame` (the training slice); constant series get scale 1."""
        stats = frame.groupby(series_id, sort=True)[value].agg(["mean", "std"])
        scale = stats["std"].fillna(0.0).to_numpy(dtype="float64")
        self.mean_ = pd.Series(stats["mean"].to_numpy(dtype="float64"), index=stats.index.astype(str))
        self.scale_ = pd.Series(np.where(scale > self.min_scale, scale, 1.0), index=stats.index.astype(str))
        return self

    def transform(self, series_ids: pd.Series, values: np.ndarray) -> np.ndarray:
        mean, scale = self._lookup(series_ids)
        return (np.asarray(values, dtype="float64") - mean) / scale

    def inverse_transform(self, series_ids: pd.Series, scaled: np.ndarray) -> np.ndarray:
        """Undo `transform`; `scaled` may be [n] or [n, horizon] with one series id per row."""
        mean, scale = self._lookup(series_ids)
        scaled = np.asarray(scaled, dtype="float64")
        if scaled.ndim == 2:
            mean, scale = mean[:, None], scale[:, None]
        return scaled * scale + mean

    def _lookup(self, series_ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "mean_"):
            raise RuntimeError("SeriesScaler is not fitted; call fit() on the training slice first")
        ids = pd.Series(series_ids, dtype="string").astype(str)
        unknown = ~ids.isin(self.mean_.index)
        if unknown.any():
            raise KeyError(f"no scaling statistics for series {ids[unknown].unique()[:5].tolist()}; "
                           "they were not in the training data")
        return self.mean_.reindex(ids).to_numpy(), self.scale_.reindex(ids).to_numpy()

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean_.to_dict(), "scale": self.scale_.to_dict(), "min_scale": self.min_scale}

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "SeriesScaler":
        scaler = cls(min_scale=payload.get("min_scale", 1e-8))
        scaler.mean_ = pd.Series(payload["mean"], dtype="float64")
        scaler.scale_ = pd.Series(payload["scale"], dtype="float64")
        return scaler

"""Forecast assembly: each series' forecast rows from its latest window, by the champion or the fallback.

The champion model forecasts all `horizon` steps from the last `lookback` points of every series that
has them; its calibrated quantiles give the interval. Series where seasonal naive beat the champion on
their holdout, or its seasonal base clearly did, publish its seasonal base alone (its `base_series`: the
base with the model's interval moved onto it, `model_version = "<version>:seasonal-base"`), or seasonal
naive where the model has no base (its `fallback_series`; see forecasting/promotion.py, series_choices).
Series shorter than the lookback, series in `fallback_series`, or every series when there is no champion
yet, get the documented fallback: seasonal naive (the last season repeated; the last value when there is
less than a season), with an interval from the series' own in-sample seasonal-naive errors, widened with
the number of seasons ahead. Such rows carry `model_version = "seasonal-naive"`. Forecasts of series that
have never been negative are clipped at 0.
Output rows follow the contract (README, "Data contract"); tasks/publish.py writes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.columns import (IMPUTED, MODEL_VERSION, ORIGIN, SERIES_ID, STEP, TIMESTAMP, VALUE, YHAT, YHAT_LOWER,
                                 YHAT_UPPER)
from forecasting.frequency import defaults_for
from forecasting.metrics import seasonal_naive
from forecasting.model.training import predict_quantiles
from forecasting.model.version import ModelVersion
from forecasting.windows import add_features


FALLBACK_VERSION = "seasonal-naive"


BASE_SUFFIX = ":seasonal-base"  # model_version of rows published by a champion's seasonal base alone


def forecast(champion: ModelVersion | None, clean: pd.DataFrame, freq: str, horizon: int,
             level: float = 0.8, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Contract rows (all but run_id) for every series in `clean`: the champion where it can, else fallback.

    With `as_of`, every series' forecast covers the `horizon` periods after it: a series whose last point is
    earlier (validation lets it lag by `max_staleness` periods) is first forecast up to the as-of from its
    last point, those forecasts stand in for its missing periods (marked imputed, as a gap's fill is), and
    its published forecast starts at the as-of. Without this an hourly series 10 hours late published 10 of
    its 24 hours for times already past."""
    rows = _forecast_from_last(champion, clean, freq, horizon, level)
    if as_of is None:
        return rows
    for _ in range(MAX_CATCH_UP_PASSES):
        origins = rows.groupby(SERIES_ID, sort=True)[ORIGIN].first()
        lagging = origins.index[origins < as_of].astype(str)
        if lagging.empty:
            break
        clean = _append_as_imputed(clean, rows[rows[SERIES_ID].isin(lagging) & (rows[TIMESTAMP] <= as_of)])
        again = _forecast_from_last(champion, clean[clean[SERIES_ID].isin(lagging)], freq, horizon, level)
        rows = pd.concat([rows[~rows[SERIES_ID].isin(lagging)], again], ignore_index=True)
    return rows.sort_values([SERIES_ID, STEP], kind="stable").reset_index(drop=True)


# Passes of forecast-and-append that bring a lagging series up to the as-of: each advances it by up to a
# horizon, so this allows a lag of 10 horizons (max_staleness is 7 periods by default, 48 hourly).
MAX_CATCH_UP_PASSES = 10


def _append_as_imputed(clean: pd.DataFrame, forecasts: pd.DataFrame) -> pd.DataFrame:
    """`clean` plus a row per forecast point (its median as the value, marked imputed; covariates and other
    columns carried forward from the series' last row)."""
    if IMPUTED not in clean.columns:
        clean = clean.assign(**{IMPUTED: False})
    last = clean.sort_values(TIMESTAMP, kind="stable").groupby(SERIES_ID, sort=False).tail(1).set_index(SERIES_ID)
    added = last.reindex(forecasts[SERIES_ID].astype(str).to_numpy()).reset_index()
    added[TIMESTAMP] = forecasts[TIMESTAMP].to_numpy()
    added[VALUE] = forecasts[YHAT].to_numpy()
    added[IMPUTED] = True
    return pd.concat([clean, added[clean.columns]], ignore_index=True)


def _forecast_from_last(champion: ModelVersion | None, clean: pd.DataFrame, freq: str, horizon: int,
                        level: float) -> pd.DataFrame:
    """forecast() from each series' last point."""
    clean = clean.sort_values([SERIES_ID, TIMESTAMP], kind="stable").reset_index(drop=True)
    lengths = clean.groupby(SERIES_ID, sort=True).size()
    lookback = champion.config.lookback if champion is not None else None
    long_enough = lengths.index[lengths >= lookback].astype(str).tolist() if champion is not None else []
    # The champion's per-series choices on its holdout (forecasting/promotion.py): model, its seasonal base, or naive.
    meta = champion.metadata if champion is not None else {}
    base, naive = set(meta.get("base_series", [])), set(meta.get("fallback_series", []))
    by_base = [series_id for series_id in long_enough if series_id in base]
    by_model = [series_id for series_id in long_enough if series_id not in base | naive]
    parts = []
    if by_model:
        parts.append(_model_rows(champion, clean[clean[SERIES_ID].isin(by_model)], freq))
    if by_base:
        parts.append(_model_rows(champion, clean[clean[SERIES_ID].isin(by_base)], freq, base_only=True))
    fallback = clean[~clean[SERIES_ID].isin(by_model + by_base)]
    if not fallback.empty:
        parts.append(_fallback_rows(fallback, freq, horizon, level))
    rows = pd.concat(parts, ignore_index=True)
    non_negative = clean.groupby(SERIES_ID)[VALUE].min().reindex(rows[SERIES_ID]).to_numpy() >= 0
    for column in (YHAT, YHAT_LOWER, YHAT_UPPER):
        rows[column] = np.where(non_negative, np.maximum(rows[column], 0.0), rows[column])
    return rows.sort_values([SERIES_ID, STEP], kind="stable").reset_index(drop=True)


def published_by(rows: pd.DataFrame) -> dict[str, int]:
    """How many series of forecast `rows` the model, its seasonal base alone and seasonal naive publish."""
    versions = rows.groupby(SERIES_ID)[MODEL_VERSION].first()
    base = int(versions.str.endswith(BASE_SUFFIX).sum())
    naive = int((versions == FALLBACK_VERSION).sum())
    return {"model": len(versions) - base - naive, "base": base, "seasonal-naive": naive}


def _model_rows(champion: ModelVersion, clean: pd.DataFrame, freq: str, base_only: bool = False) -> pd.DataFrame:
    config = champion.config
    ordered = clean.sort_values([SERIES_ID, TIMESTAMP], kind="stable")
    # A series new since training is scaled by its recent inputs. Features are computed on whole series, as
    # in training (the base's profile channel reads each series from its first row), then each series'
    # last window is cut out.
    scalers = champion.scalers.extend(ordered.groupby(SERIES_ID, sort=True).tail(config.lookback))
    featured = add_features(ordered, scalers, freq)[0].groupby(SERIES_ID, sort=True).tail(config.lookback)
    n_series = featured[SERIES_ID].nunique()
    x = featured[list(config.features)].to_numpy("float32").reshape(n_series, config.lookback, -1)
    quantiles = predict_quantiles(champion.model, x, champion.metadata["interval"]["correction"],
                                  base_only=base_only)  # [S, H, 3]
    ids = featured[SERIES_ID].to_numpy()[::config.lookback]
    original = scalers.target.unscale(ids, quantiles)
    origins = featured.groupby(SERIES_ID, sort=True)[TIMESTAMP].max().to_numpy()
    version = champion.version + (BASE_SUFFIX if base_only else "")
    return _rows(ids, origins, original[..., 1], original[..., 0], original[..., 2], freq, version)


def _fallback_rows(clean: pd.DataFrame, freq: str, horizon: int, level: float) -> pd.DataFrame:
    season = defaults_for(freq).season
    tail = (1.0 - level) / 2.0
    ids, origins, points, lowers, uppers = [], [], [], [], []
    seasons_ahead = np.sqrt(np.ceil(np.arange(1, horizon + 1) / season))
    for series_id, group in clean.groupby(SERIES_ID, sort=True):
        history = group[VALUE].to_numpy("float64")
        point = seasonal_naive(history, horizon, season)
        lag = season if len(history) > season else 1
        errors = history[lag:] - history[:-lag]
        low, high = (np.quantile(errors, [tail, 1 - tail]) if len(errors) >= 2 else (0.0, 0.0))
        ids.append(series_id)
        origins.append(group[TIMESTAMP].max())
        points.append(point)
        lowers.append(point + min(low, 0.0) * seasons_ahead)
        uppers.append(point + max(high, 0.0) * seasons_ahead)
    return _rows(np.asarray(ids), np.asarray(origins), np.stack(points), np.stack(lowers), np.stack(uppers), freq,
                 FALLBACK_VERSION)


def _rows(ids, origins, point, lower, upper, freq: str, version: str) -> pd.DataFrame:
    n_series, horizon = point.shape
    timestamps = np.concatenate([pd.date_range(o, periods=horizon + 1, freq=freq)[1:] for o in origins])
    return pd.DataFrame({
        SERIES_ID: pd.array(np.repeat(ids, horizon), dtype="string"),
        ORIGIN: pd.DatetimeIndex(np.repeat(pd.DatetimeIndex(origins), horizon)).tz_convert("UTC"),
        TIMESTAMP: pd.DatetimeIndex(timestamps).tz_convert("UTC"),
        STEP: np.tile(np.arange(1, horizon + 1), n_series).astype("int32"),
        YHAT: point.ravel(), YHAT_LOWER: np.minimum(lower, point).ravel(), YHAT_UPPER: np.maximum(upper, point).ravel(),
        MODEL_VERSION: version,
    })

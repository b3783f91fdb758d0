"""Per-series statistics that shape the seasonal base: how fast its level follows the data, whether it has
a seasonal profile at all, and its drift. Fitted on the training slice like the scalers, saved with them.

The seasonal base (forecasting/model/network.py, SeasonalBase) is the forecast the network corrects. A fixed rule for it
(the mean of the last season plus an averaged seasonal profile) suits noisy seasonal panels but lags a
series that wanders like a random walk and copies noise forward where there is no season. These are the
three choices exponential smoothing and the Theta method make per series from the series' own history:

- `alpha`: the smoothing constant of the level (1: the last value, small: a long average), chosen by the
  squared error of the level as a forecast of each of the next `horizon` steps (not only the next one: a
  persistent but mean-reverting series such as a temperature wants a longer average for two weeks ahead
  than for tomorrow);
- `seasonal`: 1 when the base's seasonal profile adds more season than noise: it averages the window's
  few last periods, so a weak season (weekdays of a daily temperature, of a noisy page's views) is copied
  forward with the noise of a few periods; a classical decomposition of the training slice tells the two
  apart (`profile_pays`). 0: the base has no profile;
- `drift`: half the slope of a straight line through the training slice (Theta's drift), per step, where
  the slice spans a year (`drift_span` periods): over part of a year a slope cannot be told from the
  yearly season (a temperature rising from winter to summer is no trend). On the development panel a
  daily temperature series whose history a long outage had cut to 340 days drifted up into the winter.

The profile itself is not a statistic but an input channel, `PROFILE` (`profile_channel`): each phase's
exponentially weighted average of the series' own past values at that phase. A window of two weeks holds
two values per phase of an hourly week; the channel carries the weeks before it too, so the base's profile
no longer copies forward two weeks' noise. How much the newest period weighs is chosen per series from
PROFILE_WEIGHTS by how well the base would have forecast the series' latest CHOICE_HORIZONS horizons
(`choose_profile_weight`): a noisy hourly series wants a long average, electricity demand whose daily shape
moves with the daylight wants the latest week. The choice reads the latest data, not the training slice:
on the development panel a choice that stopped at the validation cutoff scored as badly as none, because
what changed lately is what it has to see.

Statistics are in the model's scaled units (see forecasting/scaling.py): the smoothing is affine-equivariant,
so fitting on the scaled series is fitting on the warped one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter


ALPHAS = np.linspace(0.05, 1.0, 20)
# The input channels that carry the statistics to the seasonal base, in this order.
CHANNELS = ("base_alpha", "base_seasonal", "base_drift")
# The input channel that carries the seasonal profile to the base (see profile_channel).
PROFILE = "base_profile"
# Weight of the newest period in the profile channel of versions saved before the per-series choice; the
# period before weighs 0.3 x 0.7, and so on. Measured with the base alone (no network) at the development
# panel's cuts, MASE of the seasonal datasets: the window's plain average (two weeks of hourly data, two
# years of monthly) M4 hourly 0.722, M4 monthly 0.833, 30-minute 0.324, Wikipedia 0.788 (four weeks); 0.2:
# 0.673, 0.773, 0.340, 0.790; 0.3: 0.665, 0.780, 0.308, 0.797; 0.4: 0.675, 0.795, 0.293, 0.803; 1.0 (the
# latest period alone) 30-minute 0.218.
PROFILE_WEIGHT = 0.3
# The weights one is chosen from per series, and on how many of the series' latest horizons. Base alone:
# the choice on the latest 7 horizons M4 hourly 0.650, M4 monthly 0.750, 30-minute 0.237, Wikipedia 0.795
# (mean of all eight datasets 0.727 -> 0.712); on 3: 0.654, 0.751, 0.219, 0.805; on 14: 0.641, 0.757,
# 0.308, 0.804. A criterion without the base's level (each horizon's demeaned values against the demeaned
# profile) chose worse: M4 hourly 0.685.
PROFILE_WEIGHTS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
CHOICE_HORIZONS = 7


def base_period(season: int, long_season: int, lookback: int) -> int:
    """The period the seasonal base averages: the long season where the window holds two of them, else the
    season (1: no seasonal profile)."""
    return long_season if long_season > 1 and lookback // long_season >= 2 else season


def seasonal_indices(values: np.ndarray, period: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A classical decomposition's seasonal indices ([period], phase = position mod period, summing to zero)
    and its remainder (values less centred moving average less indices); None for period 1 or fewer than
    two periods and two points."""
    n = len(values)
    if period <= 1 or n < 2 * period + 2:
        return None
    kernel = np.ones(period) / period
    if period % 2 == 0:  # 2 x period moving average, so the even window is centred on a point
        kernel = np.convolve(kernel, [0.5, 0.5])
    trend = np.convolve(values, kernel, mode="valid")
    start = (len(kernel) - 1) // 2
    deviations = values[start:start + len(trend)] - trend
    phases = np.arange(start, start + len(trend)) % period
    indices = np.bincount(phases, weights=deviations, minlength=period) / np.bincount(phases, minlength=period)
    indices -= indices.mean()
    return indices, deviations - indices[phases]


def profile_pays(values: np.ndarray, period: int, window_seasons: int) -> bool:
    """Whether the base's seasonal profile, the average of the window's `window_seasons` last periods, adds
    more season than noise (see `_pays`)."""
    return _pays(seasonal_indices(values, period), window_seasons)


def _pays(decomposition: tuple[np.ndarray, np.ndarray] | None, window_seasons: int) -> bool:
    """The seasonal indices' variance exceeds the noise variance of an average of `window_seasons` periods
    per phase. The noise scale is the remainder's median absolute deviation (x 1.4826, the standard
    deviation of normal noise), so a few spikes (a page's viral days) do not pass for noise everywhere: on
    the Wikipedia panel the plain variance dropped the weekly profile of 9 series of 10 and the base scored
    0.84 against 0.79 with it."""
    if decomposition is None or window_seasons < 2:
        return False
    indices, remainder = decomposition
    noise = 1.4826 * float(np.median(np.abs(remainder - np.median(remainder))))
    return bool(indices.var() > noise ** 2 / window_seasons)


def deseasonalise(values: np.ndarray, period: int) -> np.ndarray:
    """`values` less their seasonal indices (unchanged where there are none)."""
    return _less_indices(values, seasonal_indices(values, period))


def _less_indices(values: np.ndarray, decomposition: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    if decomposition is None:
        return values
    indices = decomposition[0]
    return values - indices[np.arange(len(values)) % len(indices)]


def smoothing_alpha(values: np.ndarray, horizon: int) -> float:
    """The alpha in ALPHAS whose level best forecasts each of the next 1..horizon values (mean squared
    error over all of them); 1.0 for fewer than horizon + 2 values."""
    n = len(values)
    if n < horizon + 2:
        return 1.0
    # level_t = alpha * y_t + (1 - alpha) * level_(t-1), started at y_0: one row per candidate alpha
    levels = np.stack([lfilter([alpha], [1.0, alpha - 1.0], values, zi=[(1.0 - alpha) * values[0]])[0]
                       for alpha in ALPHAS])
    errors = np.zeros(len(ALPHAS))
    for ahead in range(1, horizon + 1):
        errors += np.mean((values[ahead:] - levels[:, :n - ahead]) ** 2, axis=1)
    return float(ALPHAS[int(np.argmin(errors))])


def profile_channel(values: np.ndarray, period: int, weight: float = PROFILE_WEIGHT) -> np.ndarray:
    """Each point's phase average so far: c[t] = weight * y[t] + (1 - weight) * c[t - period], c[t] = y[t] in
    the first period. Causal (c[t] reads no value after t), so appending rows never changes earlier ones,
    and the last `period` values of a window are the latest average of every phase (less their mean: the
    base's profile)."""
    values = np.asarray(values, dtype="float64")
    if period <= 1 or len(values) == 0:
        return values.copy()
    rows = np.concatenate([values, np.zeros(-len(values) % period)]).reshape(-1, period)  # a row per period
    averaged = lfilter([weight], [1.0, weight - 1.0], rows, axis=0, zi=(1.0 - weight) * rows[:1])[0]
    return averaged.reshape(-1)[:len(values)]


def base_forecast(window: np.ndarray, alpha: float, seasonal: bool, drift: float, profile: np.ndarray | None,
                  horizon: int) -> np.ndarray:
    """The smoothed seasonal base of one window in numpy ([lookback] -> [horizon]), the twin of
    SeasonalBase._smoothed (forecasting/model/network.py) for choosing a profile weight without the
    network; tests/forecasting/test_smoothing.py holds the two equal. `profile`: [period], mean zero."""
    window = np.asarray(window, dtype="float64")
    lookback, ahead = len(window), 0.0
    if profile is not None and seasonal:
        period = len(profile)
        window = window - profile[(np.arange(lookback) - lookback % period) % period]
        ahead = profile[np.arange(horizon) % period]
    weights = alpha * (1.0 - alpha) ** np.arange(lookback - 1, -1, -1, dtype="float64")
    level = weights @ window / weights.sum()
    return level + ahead + drift * np.arange(1, horizon + 1)


def choose_profile_weight(values: np.ndarray, statistics: "SeriesSmoothing", period: int, lookback: int,
                          horizon: int, observed: np.ndarray | None = None,
                          weights: tuple[float, ...] = PROFILE_WEIGHTS, horizons: int = CHOICE_HORIZONS) -> float:
    """The weight in `weights` whose profile channel gives the base the least absolute error over the
    series' latest `horizons` horizons (each forecast from the window before it, as the model's base does),
    scored on `observed` points only (imputed ones are a fill method's guess, not the series) and from windows
    that end on an observed point; PROFILE_WEIGHT where the base has no profile or the series is too short
    to score one horizon."""
    values = np.asarray(values, dtype="float64")
    observed = np.ones(len(values), bool) if observed is None else np.asarray(observed, bool)
    if not statistics.seasonal or period <= 1 or lookback // period < 2:
        return PROFILE_WEIGHT
    # A horizon forecast from a fill (the step before its origin imputed) tests the fill, not the weight: with
    # the level following the last value, one imputed day in an M4 hourly series' latest week flipped its
    # choice from 0.3 to 0.7 and its base's MASE from 0.29 to 0.78.
    origins = [o for o in range(len(values) - horizon, lookback - 1, -horizon)
               if observed[o - 1] and observed[o:o + horizon].any()][:horizons]
    if not origins:
        return PROFILE_WEIGHT
    errors = []
    for weight in weights:
        channel = profile_channel(values, period, weight)
        error = 0.0
        for origin in origins:  # forecast values[origin:origin + horizon] from the window ending before it
            profile = channel[origin - period:origin]
            forecast = base_forecast(values[origin - lookback:origin], statistics.alpha, True, statistics.drift,
                                     profile - profile.mean(), horizon)
            scored = observed[origin:origin + horizon]
            error += float(np.mean(np.abs(forecast - values[origin:origin + horizon])[scored]))
        errors.append(error)
    return float(weights[int(np.argmin(errors))])


def drift(values: np.ndarray) -> float:
    """Half the least-squares slope per step (Theta's drift); 0 for fewer than 3 values."""
    if len(values) < 3:
        return 0.0
    t = np.arange(len(values), dtype="float64")
    t -= t.mean()
    return 0.5 * float(t @ (values - values.mean()) / (t @ t))


@dataclass(frozen=True)
class SeriesSmoothing:
    alpha: float
    seasonal: bool
    drift: float

    @classmethod
    def fit(cls, values: np.ndarray, period: int, horizon: int, window_seasons: int,
            drift_span: int) -> "SeriesSmoothing":
        values = np.asarray(values, dtype="float64")
        decomposition = seasonal_indices(values, period)
        seasonal = _pays(decomposition, window_seasons)
        level_input = _less_indices(values, decomposition) if seasonal else values
        return cls(smoothing_alpha(level_input, horizon), seasonal, drift(values) if len(values) >= drift_span else 0.0)


class BaseSmoothing:
    """SeriesSmoothing per series id, scikit-learn style: `fit` on scaled training values, `extend` for
    series first seen later, `channels` for the model's input, JSON round trip with the scalers."""

    def __init__(self, period: int, horizon: int, window_seasons: int, drift_span: int,
                 profile_weight: float | tuple[float, ...] | None = PROFILE_WEIGHTS, lookback: int | None = None):
        self.period, self.horizon, self.window_seasons = period, horizon, window_seasons
        self.drift_span = drift_span
        # A tuple: the candidates one weight is chosen from per series (choose_profile_weight), which needs
        # the window's length; a number: versions saved with one weight for every series; None: versions
        # saved before the profile channel, whose base averages the window's own periods.
        self.profile_weight = profile_weight
        if isinstance(profile_weight, tuple) and lookback is None:
            raise ValueError("choosing a profile weight per series needs the lookback")
        self.lookback = lookback
        self.series_: dict[str, SeriesSmoothing] = {}

    def fit(self, series_ids: Any, scaled: np.ndarray) -> "BaseSmoothing":
        """`scaled`: the training values in time order within each series (rows of one series together)."""
        self.series_ = {}
        return self.extend(series_ids, scaled)

    def extend(self, series_ids: Any, scaled: np.ndarray) -> "BaseSmoothing":
        frame = pd.DataFrame({"id": np.asarray(series_ids).astype(str), "v": np.asarray(scaled, "float64")})
        for series_id, group in frame.groupby("id", sort=True):
            if series_id not in self.series_:
                self.series_[series_id] = SeriesSmoothing.fit(group["v"].to_numpy(), self.period, self.horizon,
                                                                   self.window_seasons, self.drift_span)
        return self

    def knows(self, series_ids: Any) -> np.ndarray:
        return pd.Index(np.asarray(series_ids).astype(str)).isin(list(self.series_))

    def channels(self, series_ids: Any) -> np.ndarray:
        """[rows, len(CHANNELS)] float32: each row's series' alpha, seasonal flag and drift."""
        ids = pd.Index(np.asarray(series_ids).astype(str))
        known = pd.DataFrame([(s.alpha, float(s.seasonal), s.drift) for s in self.series_.values()],
                             index=pd.Index(list(self.series_), dtype=object), columns=list(CHANNELS))
        missing = ids.difference(known.index)
        if len(missing):
            raise KeyError(f"no smoothing statistics for series {sorted(missing)[:5]}")
        return known.reindex(ids).to_numpy("float32")

    def profiles(self, series_ids: Any, scaled: np.ndarray, observed: np.ndarray | None = None) -> np.ndarray | None:
        """The PROFILE channel of `scaled` values (each series' rows together, in time order, from its first
        row: the channel of a series' tail alone is not the channel of its whole history); None for
        statistics saved without a profile weight."""
        if self.profile_weight is None:
            return None
        ids, values = np.asarray(series_ids).astype(str), np.asarray(scaled, "float64")
        observed = np.ones(len(values), bool) if observed is None else np.asarray(observed, bool)
        out = np.empty(len(values), dtype="float32")
        for series_id, rows in pd.Series(ids).groupby(ids, sort=False).indices.items():
            weight = self.weight_for(series_id, values[rows], observed[rows])
            out[rows] = profile_channel(values[rows], self.period, weight)
        return out

    def weight_for(self, series_id: str, scaled: np.ndarray, observed: np.ndarray | None = None) -> float:
        """The profile weight of a series whose scaled values, from its first row, are `scaled` (`observed`:
        which of them are not imputed)."""
        if not isinstance(self.profile_weight, tuple):
            return float(self.profile_weight)
        return choose_profile_weight(scaled, self.series_[series_id], self.period, self.lookback, self.horizon,
                                     observed, self.profile_weight)

    def to_dict(self) -> dict[str, Any]:
        return {"period": self.period, "horizon": self.horizon, "window_seasons": self.window_seasons,
                "drift_span": self.drift_span, "lookback": self.lookback,
                "profile_weight": list(self.profile_weight) if isinstance(self.profile_weight, tuple)
                else self.profile_weight,
                "series": {k: [s.alpha, s.seasonal, s.drift] for k, s in self.series_.items()}}

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "BaseSmoothing":
        weight = payload.get("profile_weight")
        smoothing = cls(int(payload["period"]), int(payload["horizon"]), int(payload["window_seasons"]),
                        int(payload["drift_span"]), tuple(weight) if isinstance(weight, list) else weight,
                        payload.get("lookback"))
        smoothing.series_ = {k: SeriesSmoothing(float(a), bool(s), float(d)) for k, (a, s, d) in payload["series"].items()}
        return smoothing

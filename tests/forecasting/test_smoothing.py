"""The seasonal base's per-series smoothing statistics (forecasting/smoothing.py) and how the base uses them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.columns import SERIES_ID, VALUE
from forecasting.scaling import Scalers
from forecasting.smoothing import BaseSmoothing, SeriesSmoothing, base_period, deseasonalise, drift, profile_pays, \
    smoothing_alpha


def test_alpha_follows_a_random_walk_and_averages_noise():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=600))
    noise = 5.0 + rng.normal(size=600)
    assert smoothing_alpha(walk, horizon=14) >= 0.8  # the last value is the best guess of a random walk
    assert smoothing_alpha(noise, horizon=14) <= 0.1  # a long average is the best guess of noise
    assert smoothing_alpha(noise[:10], horizon=14) == 1.0  # too short to choose: the last value


def test_a_profile_is_kept_only_where_the_season_outweighs_the_noise_of_its_average():
    rng = np.random.default_rng(1)
    season = np.tile([0.0, 1.0, 2.0, 1.0, 0.0, -2.0, -2.0], 60)
    assert profile_pays(season + rng.normal(scale=0.5, size=len(season)), period=7, window_seasons=4)
    # The same season under noise four times its size: four weeks' average would copy mostly noise forward.
    assert not profile_pays(season + rng.normal(scale=4.0, size=len(season)), period=7, window_seasons=4)
    assert not profile_pays(rng.normal(size=420), period=7, window_seasons=4)
    # A few spikes (a page's viral days) are not noise everywhere: the season still pays.
    spiky = season + rng.normal(scale=0.5, size=len(season)) + 40.0 * (rng.random(len(season)) < 0.03)
    assert profile_pays(spiky, period=7, window_seasons=4)
    assert not profile_pays(season, period=1, window_seasons=4)  # no season to test
    assert not profile_pays(season[:15], period=7, window_seasons=4)  # under two periods of data


def test_deseasonalise_removes_the_profile_and_drift_is_half_the_slope():
    season = np.tile([1.0, -1.0, 3.0, -3.0], 30)
    trend = 0.1 * np.arange(len(season))
    flat = deseasonalise(season + trend, period=4)
    np.testing.assert_allclose(np.diff(flat), 0.1, atol=1e-9)
    assert drift(trend) == pytest.approx(0.05)
    assert drift(np.array([1.0, 2.0])) == 0.0


def test_base_period_is_the_long_season_only_where_the_window_holds_two():
    assert base_period(24, 168, 336) == 168
    assert base_period(24, 168, 168) == 24
    assert base_period(7, 0, 28) == 7


def test_statistics_round_trip_with_the_scalers_and_extend_to_new_series():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({SERIES_ID: np.repeat(["a", "b"], 200),
                          VALUE: np.concatenate([np.cumsum(rng.normal(size=200)) + 50, rng.normal(size=200) + 50])})
    scalers = Scalers.fit(frame, "auto", []).fit_smoothing(BaseSmoothing(period=7, horizon=14, window_seasons=4, drift_span=20, lookback=28), frame)
    restored = Scalers.from_dict(scalers.to_dict())
    np.testing.assert_array_equal(restored.smoothing.channels(["a", "b", "a"]), scalers.smoothing.channels(["a", "b", "a"]))
    assert restored.smoothing.series_["a"].alpha > restored.smoothing.series_["b"].alpha
    with pytest.raises(KeyError, match="c"):
        restored.smoothing.channels(["c"])
    restored.extend(pd.DataFrame({SERIES_ID: ["c"] * 30, VALUE: np.linspace(1.0, 30.0, 30)}))
    assert restored.smoothing.channels(["c"])[0, 2] > 0  # a rising series drifts up
    assert "smoothing" not in Scalers(scalers.target).to_dict()  # versions without them stay as they were


def test_the_smoothed_base_is_exponential_smoothing_with_profile_and_drift():
    from forecasting.model.network import SeasonalBase

    rng = np.random.default_rng(3)
    profile = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]) - 4.0
    window = np.tile(profile, 4) + rng.normal(size=28)
    layer = SeasonalBase(horizon=10, season=7, level_window=7, smoothing_channels=[1, 2, 3])

    def base(alpha: float, seasonal: float, drift_: float) -> np.ndarray:
        stats = np.broadcast_to([alpha, seasonal, drift_], (28, 3))
        x = np.concatenate([window[:, None], stats], axis=1)[None].astype("float32")
        return np.asarray(layer(x))[0]

    average = window.reshape(4, 7).mean(0)
    average -= average.mean()
    # alpha 1: the last de-seasonalised value, plus the window's average profile, plus the drift per step.
    expected = window[-1] - average[-1] + np.resize(average, 10) + 0.5 * np.arange(1, 11)
    np.testing.assert_allclose(base(1.0, 1.0, 0.5), expected, rtol=1e-5, atol=1e-5)
    # No season: an exponentially weighted mean of the raw window, flat.
    weights = 0.3 * 0.7 ** np.arange(27, -1, -1)
    np.testing.assert_allclose(base(0.3, 0.0, 0.0), [weights @ window / weights.sum()] * 10, rtol=1e-5)


def test_series_statistics_choose_per_series():
    rng = np.random.default_rng(4)
    seasonal = SeriesSmoothing.fit(np.tile([0.0, 3.0, -3.0, 0.0], 50) + rng.normal(scale=0.3, size=200), 4, 8, 4, 100)
    assert seasonal.seasonal and seasonal.alpha <= 0.2


def test_drift_needs_a_year_of_history():
    rising = np.linspace(0.0, 10.0, 200)  # half a year of a rising temperature, or a trend?
    assert SeriesSmoothing.fit(rising, 7, 14, 4, drift_span=365).drift == 0.0
    assert SeriesSmoothing.fit(rising, 7, 14, 4, drift_span=100).drift == pytest.approx(0.5 * 10.0 / 199)


def test_the_recurrent_layers_do_not_see_the_statistics():
    from forecasting.model.network import build_forecaster, seasonal_base_of

    model = build_forecaster(lookback=28, horizon=7, n_features=4, base="seasonal", season=7, seed=0,
                             smoothing_channels=[1, 2, 3])
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(size=(2, 28, 1)), np.broadcast_to([0.3, 1.0, 0.0], (2, 28, 3))], axis=2)
    other = x.copy()
    other[:, :, 1:] = [0.9, 0.0, 0.2]  # another series' statistics, the same history
    base = seasonal_base_of(model)
    corrections = [np.asarray(model(v.astype("float32"))) - np.asarray(base(v.astype("float32")))[..., None]
                   for v in (x, other)]
    np.testing.assert_allclose(corrections[0], corrections[1], atol=1e-5)
    assert not np.allclose(np.asarray(base(x.astype("float32"))), np.asarray(base(other.astype("float32"))))


def test_periods_per_year():
    from forecasting.frequency import periods_per_year

    assert [periods_per_year(f) for f in ("D", "h", "30min", "W", "MS", "7D")] == [365, 8760, 17520, 52, 12, 52]


def test_the_profile_channel_averages_each_phase_over_past_periods_and_never_reads_ahead():
    from forecasting.smoothing import profile_channel

    values = np.arange(10.0) ** 2
    channel = profile_channel(values, period=3, weight=0.3)
    np.testing.assert_allclose(channel[:3], values[:3])  # the first period is its own average
    np.testing.assert_allclose(channel[3], 0.3 * values[3] + 0.7 * values[0])
    np.testing.assert_allclose(channel[9], 0.3 * values[9] + 0.7 * (0.3 * values[6] + 0.7 * channel[3]))
    # Causal: a value appended later changes no earlier point, so an incremental run can extend it.
    np.testing.assert_allclose(profile_channel(values[:7], 3, 0.3), channel[:7])


def test_the_base_takes_its_profile_from_the_profile_channel():
    from forecasting.model.network import SeasonalBase

    rng = np.random.default_rng(6)
    window = rng.normal(size=28)  # the window's own periods hold no profile; the channel does
    channel = np.resize([3.0, -1.0, -1.0, -1.0, 0.0, 0.0, 0.0], 28) + 10.0  # a level offset cancels
    stats = np.broadcast_to([1.0, 1.0, 0.0], (28, 3))
    x = np.concatenate([window[:, None], stats, channel[:, None]], axis=1)[None].astype("float32")
    layer = SeasonalBase(horizon=9, season=7, level_window=7, smoothing_channels=[1, 2, 3], profile_channel=4)
    profile = channel[-7:] - channel[-7:].mean()
    expected = window[-1] - profile[-1] + np.resize(profile, 9)  # alpha 1: the last de-seasonalised value
    np.testing.assert_allclose(np.asarray(layer(x))[0], expected, rtol=1e-5, atol=1e-5)
    x[0, :, 2] = 0.0  # seasonal flag 0: no profile, whatever the channel says
    np.testing.assert_allclose(np.asarray(layer(x))[0], [window[-1]] * 9, rtol=1e-5, atol=1e-5)


def test_the_numpy_base_is_the_layers_twin():
    from forecasting.model.network import SeasonalBase
    from forecasting.smoothing import base_forecast

    rng = np.random.default_rng(7)
    window, channel = rng.normal(size=30), rng.normal(size=30)  # 30 = 4 periods of 7 and 2 steps before them
    layer = SeasonalBase(horizon=11, season=7, level_window=7, smoothing_channels=[1, 2, 3], profile_channel=4)
    for alpha, seasonal, drift_ in ((0.2, 1.0, 0.1), (1.0, 1.0, 0.0), (0.5, 0.0, -0.3)):
        stats = np.broadcast_to([alpha, seasonal, drift_], (30, 3))
        x = np.concatenate([window[:, None], stats, channel[:, None]], axis=1)[None].astype("float32")
        profile = x[0, -7:, 4].astype("float64") - x[0, -7:, 4].mean()
        expected = base_forecast(x[0, :, 0], alpha, bool(seasonal), drift_, profile, 11)
        np.testing.assert_allclose(np.asarray(layer(x))[0], expected, rtol=1e-4, atol=1e-4)


def test_the_profile_weight_follows_what_forecast_the_latest_horizons_best():
    from forecasting.smoothing import PROFILE_WEIGHT, choose_profile_weight

    rng = np.random.default_rng(8)
    shape = np.array([0.0, 3.0, -3.0, 1.0, -1.0, 2.0, -2.0])
    statistics = SeriesSmoothing(alpha=0.2, seasonal=True, drift=0.0)
    # A steady season under noise: a long average of each phase beats the latest week's copy.
    steady = np.tile(shape, 60) + rng.normal(scale=1.0, size=420)
    assert choose_profile_weight(steady, statistics, period=7, lookback=28, horizon=14) <= 0.3
    # A season that changed shape eight weeks ago: the latest weeks are the season now.
    changed = np.concatenate([np.tile(shape, 52), np.tile(-shape, 8)]) + rng.normal(scale=0.1, size=420)
    assert choose_profile_weight(changed, statistics, period=7, lookback=28, horizon=14) == 1.0
    # The change scored only on points a fill method imputed is no evidence: the steady choice stands.
    observed = np.ones(420, bool)
    observed[-56:] = False
    hidden = np.concatenate([steady[:-56], changed[-56:]])
    assert choose_profile_weight(hidden, statistics, 7, 28, 14, observed) == \
        choose_profile_weight(steady[:-56], statistics, 7, 28, 14)
    # A horizon forecast from a fill is not scored: whatever was imputed just before the latest origin (the
    # level follows the last value), the choice is the same.
    follows = SeriesSmoothing(alpha=1.0, seasonal=True, drift=0.0)
    before_origin = np.ones(420, bool)
    before_origin[-15] = False
    choices = {choose_profile_weight(np.where(np.arange(420) == 420 - 15, fill, steady), follows, 7, 28, 14,
                                     before_origin) for fill in (-30.0, -8.0, steady[-15], 8.0, 30.0)}
    assert len(choices) == 1
    # No profile in the base, or too short to score a horizon: the fixed weight.
    assert choose_profile_weight(changed, SeriesSmoothing(0.2, False, 0.0), 7, 28, 14) == PROFILE_WEIGHT
    assert choose_profile_weight(changed[:40], statistics, 7, 28, 14) == PROFILE_WEIGHT


def test_the_profile_weight_is_chosen_per_series_and_saved_versions_keep_theirs():
    from forecasting.smoothing import PROFILE_WEIGHTS, profile_channel

    rng = np.random.default_rng(9)
    shape = np.array([0.0, 3.0, -3.0, 1.0, -1.0, 2.0, -2.0])
    steady = np.tile(shape, 60) + rng.normal(scale=1.0, size=420)
    changed = np.concatenate([np.tile(shape, 52), np.tile(-shape, 8)]) + rng.normal(scale=0.1, size=420)
    smoothing = BaseSmoothing(period=7, horizon=14, window_seasons=4, drift_span=1000, lookback=28)
    smoothing.series_ = {"steady": SeriesSmoothing(0.2, True, 0.0), "changed": SeriesSmoothing(0.2, True, 0.0)}
    channels = smoothing.profiles(np.repeat(["steady", "changed"], 420), np.concatenate([steady, changed]))
    np.testing.assert_allclose(channels[420:], profile_channel(changed, 7, 1.0), rtol=1e-6)
    assert not np.allclose(channels[:420], profile_channel(steady, 7, 1.0))
    restored = BaseSmoothing.from_dict(smoothing.to_dict())
    assert restored.profile_weight == PROFILE_WEIGHTS and restored.lookback == 28
    # A version saved with one weight for every series keeps it.
    fixed = BaseSmoothing.from_dict({**smoothing.to_dict(), "profile_weight": 0.3})
    np.testing.assert_allclose(fixed.profiles(["changed"] * 420, changed), profile_channel(changed, 7, 0.3), rtol=1e-6)
    with pytest.raises(ValueError, match="lookback"):
        BaseSmoothing(period=7, horizon=14, window_seasons=4, drift_span=1000)

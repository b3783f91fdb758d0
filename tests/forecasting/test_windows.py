"""Windowing: windows stay inside one series, the split is by time, scaling sees training data only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import PipelineError
from forecasting.scaling import SeriesScaler
from forecasting.windows import SCALED, TRAIN, VALIDATION, materialize, plan_windows


def clean_frame(sample):
    return sample.assign(imputed=False)


def test_windows_never_cross_series_and_split_by_time(sample):
    lookback, horizon = 28, 14
    plan = plan_windows(clean_frame(sample), "D", lookback, horizon, val_fraction=0.2)
    ids = plan.series["series_id"].to_numpy()
    stamps = plan.series["timestamp"].dt.tz_convert(None).to_numpy()
    starts = plan.index["start"].to_numpy()
    assert (ids[starts] == ids[starts + lookback + horizon - 1]).all()
    train = plan.index.loc[plan.index["split"] == TRAIN, "start"].to_numpy()
    val = plan.index.loc[plan.index["split"] == VALIDATION, "start"].to_numpy()
    cutoff = np.datetime64(plan.cutoff.tz_convert(None))
    assert (stamps[train + lookback + horizon - 1] <= cutoff).all()  # training targets end by the cutoff
    assert (stamps[val + lookback] > cutoff).all()  # validation targets start after it
    # 550 days, 20% held out: 110 validation periods; every window that fits on each side is there
    assert len(val) == 10 * (110 - horizon + 1)
    assert len(train) == 10 * (440 - lookback - horizon + 1)


def test_scaler_is_fitted_on_the_training_part_only(sample):
    base = plan_windows(clean_frame(sample), "D", 28, 14, 0.2)
    spoiled = clean_frame(sample)
    late = spoiled["timestamp"] > base.cutoff
    spoiled.loc[late, "value"] = spoiled.loc[late, "value"] * 1000  # change only the validation period
    changed = plan_windows(spoiled, "D", 28, 14, 0.2)
    pd.testing.assert_series_equal(base.scalers.target.mean_, changed.scalers.target.mean_)
    pd.testing.assert_series_equal(base.scalers.target.scale_, changed.scalers.target.scale_)
    # page views are never negative, so "auto" scales them on log1p
    train_part = sample[sample["timestamp"] <= base.cutoff]
    expected = np.log1p(train_part["value"]).groupby(train_part["series_id"]).mean()
    assert base.scalers.target.log_.all()
    np.testing.assert_allclose(base.scalers.target.mean_.sort_index().to_numpy(), expected.sort_index().to_numpy())


def test_materialize_matches_a_plain_loop(sample):
    lookback, horizon = 10, 5
    plan = plan_windows(clean_frame(sample), "D", lookback, horizon, 0.2)
    assert plan.features == [SCALED, "day_of_week_sin", "day_of_week_cos", "day_of_year_sin", "day_of_year_cos",
                             "base_alpha", "base_seasonal", "base_drift", "base_profile"]
    matrix, scaled = plan.series[plan.features].to_numpy("float32"), plan.series[SCALED].to_numpy("float32")
    starts = plan.index["start"].to_numpy()[::97]
    x, y = materialize(matrix, scaled, starts, lookback, horizon)
    assert x.shape == (len(starts), lookback, len(plan.features)) and y.shape == (len(starts), horizon)
    for row, start in enumerate(starts):
        np.testing.assert_array_equal(x[row], matrix[start:start + lookback])
        np.testing.assert_array_equal(y[row], scaled[start + lookback:start + lookback + horizon])


def test_covariates_become_scaled_input_channels(sample):
    frame = clean_frame(sample).assign(temperature=np.arange(len(sample), dtype="float64"))
    plan = plan_windows(frame, "D", 28, 14, 0.2)
    assert "temperature_scaled" in plan.features and "temperature" in plan.scalers.covariates
    training = plan.series[plan.series["timestamp"] <= plan.cutoff]
    means = training.groupby("series_id")["temperature_scaled"].mean()
    np.testing.assert_allclose(means.to_numpy(), 0.0, atol=1e-4)  # standardised on the training slice


def test_short_series_are_listed_for_the_fallback(sample):
    frame = clean_frame(sample)
    short_id = frame["series_id"].iloc[0]
    frame = frame[(frame["series_id"] != short_id) | (frame["timestamp"] < "2015-07-10")]
    plan = plan_windows(frame, "D", 28, 14, 0.2)
    assert plan.short_series == [short_id]
    assert short_id not in set(plan.series["series_id"])


def test_everything_too_short_is_a_clear_error(sample):
    with pytest.raises(PipelineError, match="shorter than the lookback"):
        plan_windows(clean_frame(sample), "D", 600, 14, 0.2)


def test_series_scaler_contract():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    frame = pd.DataFrame({"series_id": ["a", "a", "b", "b", "c", "c"], "value": [1.0, 3.0, 5.0, 5.0, -2.0, 4.0]})
    with pytest.raises(NotFittedError, match="not fitted"):
        SeriesScaler().scale(pd.Series(["a"]), np.array([1.0]))
    scaler = SeriesScaler("auto").fit(frame)
    assert scaler.log_.to_dict() == {"a": True, "b": True, "c": False}  # log only where never negative
    assert scaler.scale_["b"] == 1.0  # constant series: no division by zero
    scaled = scaler.scale(frame["series_id"], frame["value"].to_numpy())
    np.testing.assert_allclose(scaler.unscale(frame["series_id"], scaled), frame["value"])
    # scikit-learn's transformer contract on the frame itself: same numbers
    np.testing.assert_allclose(SeriesScaler("auto").fit_transform(frame), scaled)
    np.testing.assert_allclose(scaler.inverse_transform(frame.assign(value=scaled)), frame["value"])
    assert clone(scaler).get_params() == {"transform_kind": "auto", "min_scale": 1e-8, "series_id": "series_id",
                                          "value": "value"}
    restored = SeriesScaler.from_dict(scaler.to_dict())
    np.testing.assert_allclose(restored.scale(frame["series_id"], frame["value"].to_numpy()), scaled)
    with pytest.raises(KeyError, match="no scaling statistics"):
        scaler.scale(pd.Series(["zzz"]), np.array([1.0]))
    scaler.extend(pd.DataFrame({"series_id": ["zzz", "zzz"], "value": [10.0, 20.0]}))
    assert scaler.knows(["zzz"]).all() and scaler.mean_["a"] == restored.mean_["a"]


def test_window_starts_match_a_loop_over_every_series(rng):
    from forecasting.windows import window_starts

    lengths = rng.integers(0, 60, size=40)
    lengths[:3] = [0, 5, 21]  # empty, shorter than a window, exactly one window
    expected, first = [], 0
    for length in lengths:
        expected.extend(first + i for i in range(length - 14 - 7 + 1))
        first += length
    assert window_starts(lengths, 14, 7).tolist() == expected


def test_smoothing_statistics_see_imputed_points_so_the_season_keeps_its_phase(sample):
    frame = clean_frame(sample)
    plan = plan_windows(frame, "D", 28, 14, 0.2)
    marked = frame.assign(imputed=np.arange(len(frame)) % 5 == 0)  # same values, every fifth one imputed
    with_gaps = plan_windows(marked, "D", 28, 14, 0.2)
    assert not with_gaps.scalers.target.scale_.equals(plan.scalers.target.scale_)  # the scaler skips them
    for series_id, expected in plan.scalers.smoothing.series_.items():
        got = with_gaps.scalers.smoothing.series_[series_id]
        assert (got.alpha, got.seasonal) == (expected.alpha, expected.seasonal)
        # drift is in scaled units: the same slope of the warped series
        assert got.drift * with_gaps.scalers.target.scale_[series_id] == \
            pytest.approx(expected.drift * plan.scalers.target.scale_[series_id])


def test_an_incremental_plan_carries_the_profile_channel_of_whole_series(sample):
    from forecasting.smoothing import PROFILE
    from forecasting.windows import add_features, plan_increment

    clean = clean_frame(sample)
    last = clean["timestamp"].max()
    base = plan_windows(clean[clean["timestamp"] <= last - pd.Timedelta(days=10)], "D", 28, 14, 0.2)
    plan, featured = plan_increment(clean, base.series, base.scalers, set(), "D", 28, 14, 0.2)
    assert featured == 10 * 10  # only the new days got features from scratch
    ordered = clean.sort_values(["series_id", "timestamp"]).reset_index(drop=True)
    whole, _ = add_features(ordered, base.scalers, "D")
    np.testing.assert_allclose(plan.series[PROFILE].to_numpy(), whole[PROFILE].to_numpy(), rtol=1e-6)

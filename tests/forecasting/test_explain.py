"""Explanations: a noise covariate scores about zero, the target's own history dominates on the bundled
sample, the same seed gives the same numbers, and the lookback blocks cover the lookback exactly once."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from forecasting.explain import CALENDAR, PROFILE_GROUP, STATISTICS, TARGET, explain, input_groups, lookback_blocks
from forecasting.model.config import ModelConfig
from forecasting.model.training import calibrate, fit_model
from forecasting.settings import Settings
from forecasting.windows import WindowSource, plan_windows

pytestmark = pytest.mark.xdist_group("test_explain")  # one worker: its module fixtures run once

LOOKBACK, HORIZON = 28, 14


@pytest.mark.parametrize("lookback, season", [(28, 7), (168, 24), (5, 7), (30, 1), (104, 52)])
def test_lookback_blocks_cover_the_lookback_once_most_recent_first(lookback, season):
    blocks = lookback_blocks(lookback, season)
    covered = np.concatenate([np.arange(first, stop) for _, first, stop in blocks])
    assert sorted(covered) == list(range(lookback))  # every position once
    assert blocks[0] == ("most recent step", lookback - 1, lookback)
    assert [stop for _, _, stop in blocks[1:]] == [first for _, first, _ in blocks[:-1]]  # going back in time


def test_lookback_blocks_name_seasons():
    names = [name for name, _, _ in lookback_blocks(28, 7)]
    assert names == ["most recent step", "rest of the latest season", "season 2 back", "season 3 back", "older"]


def test_input_groups_follow_the_feature_names():
    features = ["value_scaled", "day_of_week_sin", "day_of_week_cos", "temp_scaled", "base_alpha", "base_drift",
                "base_profile"]
    assert input_groups(features, "D") == {TARGET: [0], CALENDAR: [1, 2], "covariate temp": [3], STATISTICS: [4, 5],
                                           PROFILE_GROUP: [6]}


@pytest.fixture(scope="module")
def trained_with_noise(sample):
    """A small model trained on the bundled sample plus a covariate of pure noise."""
    frame = sample.assign(imputed=False, noise=np.random.default_rng(7).normal(size=len(sample)))
    plan = plan_windows(frame, "D", LOOKBACK, HORIZON, val_fraction=0.2)
    config = ModelConfig.from_settings(Settings(), lookback=LOOKBACK, horizon=HORIZON, features=plan.features,
                                       frequency="D")
    source = WindowSource.from_plan(plan, LOOKBACK, HORIZON)
    model, _ = fit_model(config, source, max_epochs=3, patience=2)
    interval = calibrate(model, source, 0.8)
    return model, interval["correction"], plan, config


def explained(trained, seed=0, windows=256):
    model, correction, plan, config = trained
    return explain(model, correction, plan.scalers, plan.series, plan.index, plan.features, LOOKBACK, HORIZON,
                   config.quantiles, "D", version="v", windows=windows, repeats=2, seed=seed)


def test_noise_scores_about_zero_and_the_targets_history_dominates(trained_with_noise):
    result = explained(trained_with_noise)
    channels = {c.name: c for c in result.channels}
    assert set(channels) == {TARGET, CALENDAR, STATISTICS, PROFILE_GROUP, "covariate noise"}
    target, noise = channels[TARGET], channels["covariate noise"]
    assert result.channels[0].name == TARGET and target.mase > 0.3  # shuffling its own history ruins it
    assert abs(noise.mase) < 0.02 * target.mase and abs(noise.pinball) < 0.02 * target.pinball
    assert len(target.mase_by_step) == HORIZON and result.windows == 256
    blocks = {b["name"]: b for b in result.lookback_blocks}
    # the recent past matters more than the oldest block of the lookback
    assert blocks["rest of the latest season"]["mase"] > abs(blocks["older"]["mase"])
    assert all(len(b["mase_by_step"]) == HORIZON for b in result.lookback_blocks)


def test_same_seed_same_numbers(trained_with_noise):
    first, again = explained(trained_with_noise, seed=3), explained(trained_with_noise, seed=3)
    assert [c.__dict__ for c in first.channels] == [c.__dict__ for c in again.channels]
    assert first.lookback_blocks == again.lookback_blocks
    other = explained(trained_with_noise, seed=4)
    assert [c.mase for c in other.channels] != [c.mase for c in first.channels]  # the seed does choose


def test_imputed_targets_are_not_scored(trained_with_noise):
    model, correction, plan, config = trained_with_noise
    series = plan.series.copy()
    series["imputed"] = True  # nothing observed: nothing to explain on
    assert explain(model, correction, plan.scalers, series, plan.index, plan.features, LOOKBACK, HORIZON,
                   config.quantiles, "D") is None


def test_constant_series_are_not_scored(trained_with_noise):
    model, correction, plan, config = trained_with_noise
    series = plan.series.assign(value=5.0)  # MASE has no scale: no window can be scored
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no "mean of empty slice" on the way
        assert explain(model, correction, plan.scalers, series, plan.index, plan.features, LOOKBACK, HORIZON,
                       config.quantiles, "D") is None

"""Champion and challenger: holdout scoring and the promotion rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.model.config import ModelConfig
from forecasting.model.training import calibrate, fit_model
from forecasting.model.version import ModelVersion
from forecasting.metrics import seasonal_naive
from forecasting.promotion import base_clearly_better, candidate_scores, challenge, decide, holdout_starts, \
    independence, published_mase, series_choices, window_mase
from forecasting.windows import SPLIT, START, VALIDATION, WindowSource, plan_windows

pytestmark = pytest.mark.xdist_group("test_promotion")  # one worker: its module fixtures run once

LOOKBACK, HORIZON = 14, 7


@pytest.mark.parametrize("challenger, champion, naive, diverged, promote, words", [
    (0.8, None, 0.9, False, True, "beats seasonal naive"),
    (0.8, 0.85, 0.9, False, True, "beats champion 0.8500 and seasonal naive"),
    (0.95, None, 0.9, False, False, "does not beat seasonal naive"),
    (0.8, 0.7, 0.9, False, False, "does not beat champion"),
    (0.8, 0.8, 0.9, False, False, "does not beat champion"),  # a tie keeps the champion
    (float("nan"), 0.7, 0.9, False, False, "diverged"),
    (0.5, 0.7, 0.9, True, False, "diverged"),
    (float("nan"), None, float("nan"), False, False, "the series do not vary"),  # constant: nothing to scale by
])
def test_promotion_rule(challenger, champion, naive, diverged, promote, words):
    verdict = decide(challenger, champion, naive, windows=10, diverged=diverged, champion_version="v0")
    assert verdict.promote is promote and words in verdict.reason


@pytest.fixture(scope="module")
def trained(sample):
    ids = sorted(sample["series_id"].unique())[:4]
    clean = sample[sample["series_id"].isin(ids)].assign(imputed=False).reset_index(drop=True)
    plan = plan_windows(clean, "D", LOOKBACK, HORIZON, 0.2)
    source = WindowSource.from_plan(plan, LOOKBACK, HORIZON)
    config = ModelConfig(lookback=LOOKBACK, horizon=HORIZON, features=tuple(plan.features),
                         quantiles=(0.1, 0.5, 0.9), units=16, layers=1, level_window=7, seed=0)
    model, _ = fit_model(config, source, max_epochs=8, patience=3)
    return plan, config, model, calibrate(model, source, 0.8)


def test_holdout_is_the_latest_validation_windows_of_each_series(trained):
    plan, *_ = trained
    starts = holdout_starts(plan.series, plan.index, per_series=3)
    ids = plan.series["series_id"].to_numpy()
    assert len(starts) == 4 * 3
    for series_id in np.unique(ids):
        mine = starts[ids[starts] == series_id]
        val = plan.index.loc[(plan.index[SPLIT] == VALIDATION) & (ids[plan.index[START]] == series_id), START]
        assert sorted(mine) == sorted(val.nlargest(3))
    spaced = holdout_starts(plan.series, plan.index, per_series=3, spacing=7)  # a week apart, from the latest
    for series_id in np.unique(ids):
        mine = np.sort(spaced[ids[spaced] == series_id])
        latest = starts[ids[starts] == series_id].max()
        assert mine.tolist() == [latest - 14, latest - 7, latest]


def test_trained_challenger_beats_a_biased_champion(trained):
    plan, config, model, interval = trained
    biased = config.build()
    head = biased.get_layer("horizon_head")
    kernel, bias = head.get_weights()
    head.set_weights([kernel, bias + 3.0])  # forecasts three standard deviations too high
    champion = ModelVersion("v-biased", biased, plan.scalers,
                            {"config": config.as_dict(), "interval": {"correction": [0.0] * HORIZON}})
    verdict = challenge(model, interval, plan.scalers, champion, plan.series, plan.index, config, "D", 7)
    assert verdict.champion_mase is not None and verdict.challenger_mase < verdict.champion_mase
    assert verdict.windows == 4 * 7
    assert verdict.promote == (verdict.challenger_mase < verdict.seasonal_naive_mase)


def test_champion_of_another_architecture_is_not_compared(trained):
    plan, config, model, interval = trained
    other = ModelConfig(**{**config.as_dict(), "features": tuple(config.features), "quantiles": (0.1, 0.5, 0.9),
                           "units": 4})
    champion = ModelVersion("v-other", other.build(), plan.scalers,
                            {"config": other.as_dict(), "interval": {"correction": [0.0] * HORIZON}})
    verdict = challenge(model, interval, plan.scalers, champion, plan.series, plan.index, config, "D", 7)
    assert verdict.champion_mase is None
    if not verdict.promote:
        assert "different architecture" in verdict.reason


def test_a_series_falls_back_where_seasonal_naive_beat_the_model_to_its_seasonal_base():
    nan = np.nan
    series = pd.DataFrame({"series_id": np.repeat(list("abcdef"), 4)})
    starts = np.arange(24)
    scores = {"model": np.array([1.0] * 4 + [2.0] * 4 + [1.2] * 4 + [nan] * 4 + [1.1] * 4 + [2.0] * 4),
              "base": np.array([1.5] * 4 + [1.8] * 4 + [1.0] * 4 + [nan] * 4 + [0.5] * 4 + [nan] * 4),
              "seasonal-naive": np.array([2.0] * 4 + [1.0, 1.0, 1.0, 1.5] + [1.2] * 4 + [nan] * 4 + [1.2] * 4
                                         + [1.0] * 4)}
    choices = series_choices(series, starts, scores, independent=1 / 14).set_index("series_id")
    # b: naive beat the model, so it falls back, to its base although naive beat the base too (the holdout
    # decides whether the model stands, not between fallbacks); c: naive tied the model, so it falls back;
    # d has no finite score (no scale): the model; e: the model beat naive, so it publishes although its base
    # scored better (4 daily windows a step apart, 14-step horizon: no evidence); f: the base has no score,
    # so seasonal naive.
    assert choices["choice"].to_dict() == {"a": "model", "b": "base", "c": "base", "d": "model", "e": "model",
                                           "f": "seasonal-naive"}
    assert choices.loc["b", "seasonal-naive_mase"] == pytest.approx(1.125)
    published = published_mase(choices.reset_index(), series, starts, scores)
    assert published == pytest.approx(np.mean([1.0] * 4 + [1.8] * 4 + [1.0] * 4 + [1.1] * 4 + [1.0] * 4))


def test_the_model_gives_way_to_its_base_only_where_the_base_beat_it_clearly():
    rng = np.random.default_rng(0)
    days = 16
    series = pd.DataFrame({"series_id": np.repeat(list("abc"), days)})
    noise = rng.normal(0.0, 0.05, 3 * days)
    model = np.concatenate([np.full(days, 0.30), np.full(days, 0.30), np.full(days, 0.30)]) + noise
    # a: the base better by 0.1 in every window; b: better by 0.01 on average, with window-to-window noise
    # ten times that; c: worse.
    base = np.concatenate([model[:days] - 0.1, 0.29 + rng.normal(0.0, 0.1, days), model[2 * days:] + 0.1])
    scores = {"model": model, "base": base, "seasonal-naive": np.full(3 * days, 1.0)}
    choices = series_choices(series, np.arange(3 * days), scores, independent=1.0).set_index("series_id")
    assert choices["choice"].to_dict() == {"a": "base", "b": "model", "c": "model"}
    assert choices["base_clearly_better"].to_dict() == {"a": True, "b": False, "c": False}
    # The same scores from windows that share most of their targets are no evidence.
    overlapping = series_choices(series, np.arange(3 * days), scores, independent=1 / 14)
    assert set(overlapping["choice"]) == {"model"}
    clear = base_clearly_better(series["series_id"].to_numpy(), model, base, 1.0)
    assert clear.to_dict() == {"a": True, "b": False, "c": False}


def test_holdout_windows_a_day_apart_are_independent_for_sub_daily_data_only():
    assert independence("h", 24) == 1.0 and independence("30min", 48) == 1.0
    assert independence("D", 14) == pytest.approx(1 / 14)


def test_without_a_seasonal_base_the_choice_is_between_model_and_seasonal_naive():
    series = pd.DataFrame({"series_id": ["a"] * 2 + ["b"] * 2})
    scores = {"model": np.array([1.0, 1.0, 2.0, 2.0]), "seasonal-naive": np.array([2.0, 2.0, 1.0, 1.0])}
    choices = series_choices(series, np.arange(4), scores)
    assert choices["choice"].tolist() == ["model", "seasonal-naive"] and "base_mase" not in choices


def test_a_challenger_losing_on_some_series_lists_them_as_fallback(trained):
    plan, config, model, interval = trained
    verdict = challenge(model, interval, plan.scalers, None, plan.series, plan.index, config, "D", 7)
    assert verdict.series == 4 and verdict.model_mase is not None
    ids = set(plan.series["series_id"].astype(str))
    assert set(verdict.fallback_series) <= ids and set(verdict.base_series) <= ids
    assert not set(verdict.fallback_series) & set(verdict.base_series)
    assert set(verdict.clear_base_series) <= set(verdict.base_series)
    # Exactly the series on whose holdout windows seasonal naive scored no worse than the model fall back;
    # this model has no seasonal base (ModelConfig's default base is the level), so to seasonal naive.
    starts = holdout_starts(plan.series, plan.index, 7)
    naive = np.stack([seasonal_naive(plan.series["value"].to_numpy()[s:s + LOOKBACK], HORIZON, 7) for s in starts])
    naive_scores = window_mase(plan.series, starts, naive, LOOKBACK, 7)
    scores = candidate_scores(model, interval["correction"], plan.scalers, plan.series, list(config.features),
                              starts, config, 7, naive_scores)
    per_series = pd.DataFrame({"id": plan.series["series_id"].to_numpy()[starts], "model": scores["model"],
                               "naive": naive_scores}).groupby("id").mean()
    assert "base" not in scores and verdict.base_series == []
    assert verdict.fallback_series == sorted(per_series.index[per_series["model"] >= per_series["naive"]])

"""Champion and challenger: holdout scoring and the promotion rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.lifecycle import challenge, decide, holdout_starts, published_mase, series_choices
from tasks.registry import ModelVersion
from tasks.train import ModelConfig, calibrate, fit_model
from tasks.windows import SPLIT, START, VALIDATION, WindowSource, plan_windows

LOOKBACK, HORIZON = 14, 7


@pytest.mark.parametrize("challenger, champion, naive, diverged, promote, words", [
    (0.8, None, 0.9, False, True, "beats seasonal naive"),
    (0.8, 0.85, 0.9, False, True, "beats champion 0.8500 and seasonal naive"),
    (0.95, None, 0.9, False, False, "does not beat seasonal naive"),
    (0.8, 0.7, 0.9, False, False, "does not beat champion"),
    (0.8, 0.8, 0.9, False, False, "does not beat champion"),  # a tie keeps the champion
    (float("nan"), 0.7, 0.9, False, False, "diverged"),
    (0.5, 0.7, 0.9, True, False, "diverged"),
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


def test_each_series_publishes_the_model_only_where_it_beat_seasonal_naive_on_its_holdout():
    series = pd.DataFrame({"series_id": ["a"] * 4 + ["b"] * 4 + ["c"] * 4})
    starts = np.arange(12)
    model = np.array([1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, np.nan, np.nan, np.nan, np.nan])
    naive = np.array([2.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.5, 1.0, 1.0, 1.0, 1.0])
    choices = series_choices(series, starts, model, naive).set_index("series_id")
    assert choices["use_model"].to_dict() == {"a": True, "b": False, "c": True}  # no score: keeps the model
    assert choices.loc["b", "naive_mase"] == pytest.approx(1.125)
    published = published_mase(choices.reset_index(), series, starts, model, naive)
    assert published == pytest.approx(np.mean([1.0] * 4 + [1.0, 1.0, 1.0, 1.5]))  # a by model, b by naive


def test_a_challenger_losing_on_some_series_lists_them_as_fallback(trained):
    plan, config, model, interval = trained
    verdict = challenge(model, interval, plan.scalers, None, plan.series, plan.index, config, "D", 7)
    assert verdict.series == 4 and verdict.model_mase is not None
    assert set(verdict.fallback_series) <= set(plan.series["series_id"].astype(str))
    # Each series publishes the better of the two on its holdout (same window count per series), so what is
    # published scores no worse than either the model everywhere or seasonal naive everywhere.
    assert verdict.challenger_mase <= verdict.model_mase + 1e-12
    assert verdict.challenger_mase <= verdict.seasonal_naive_mase + 1e-12

"""Tuning: the grid search picks the best backtested candidate, and daily runs use it unless told otherwise."""

from __future__ import annotations

import json

import pandas as pd

from forecasting.settings import load_settings
from forecasting.tuning import search, winner
from stores.registry import save_tuned
from tasks.tune import with_tuned


def test_search_ranks_candidates_by_backtest_mase(sample_slice):
    settings = load_settings(horizon=7, max_epochs=2, units=8)
    results = search(sample_slice, "D", settings, {"lookback": [7, 14], "layers": [1]}, origins=1)
    assert len(results) == 2 and set(results["lookback"]) == {7, 14}
    assert results["mase"].is_monotonic_increasing


def test_winner_applies_only_where_the_user_said_nothing(tmp_path, monkeypatch):
    results = pd.DataFrame([{"lookback": 56, "layers": 1, "units": 64, "dropout": 0.1, "mase": 0.8, "seconds": 1.0}])
    save_tuned(tmp_path / "models", winner(results, "2016-12-31T00:00:00+00:00"))
    saved = json.loads((tmp_path / "models" / "tuned.json").read_text())
    assert saved["config"] == {"lookback": 56, "layers": 1, "units": 64, "dropout": 0.1}
    assert isinstance(saved["config"]["lookback"], int)
    tuned = with_tuned(load_settings(data_dir=tmp_path))
    assert (tuned.lookback, tuned.layers, tuned.units, tuned.dropout) == (56, 1, 64, 0.1)
    monkeypatch.setenv("LSTM_FORECAST_UNITS", "16")
    explicit = with_tuned(load_settings(data_dir=tmp_path, lookback=20))
    assert (explicit.lookback, explicit.units, explicit.layers) == (20, 16, 1)
    untouched = load_settings(data_dir=tmp_path / "elsewhere")
    assert with_tuned(untouched) == untouched

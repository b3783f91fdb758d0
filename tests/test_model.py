"""The LSTM model, its training and the model registry (Keras 3 API, tiny sizes)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tasks.errors import PipelineError
from tasks.model import build_lstm_model, is_cudnn_eligible, recurrent_layers
from tasks.registry import load_champion, load_version, read_index, save_version, version_dir
from tasks.scaling import SeriesScaler
from tasks.train import fit_model, new_version_name, residual_quantiles


def tiny_arrays(rng, lookback=8, horizon=3, n=64):
    wave = np.sin(np.arange(n + lookback + horizon) / 3.0).astype("float32")
    view = np.lib.stride_tricks.sliding_window_view(wave, lookback + horizon)[:n]
    x, y = view[:, :lookback, None], view[:, lookback:]
    return {"train_x": x[:48], "train_y": y[:48], "val_x": x[48:], "val_y": y[48:]}


def test_model_maps_history_to_direct_horizon_and_stays_cudnn_eligible():
    model = build_lstm_model(lookback=12, horizon=5, units=4, layers=3, dropout=0.2, seed=1)
    assert model.output_shape == (None, 5)
    assert model.input_shape == (None, 12, 1)
    layers = recurrent_layers(model)
    assert len(layers) == 3
    assert all(is_cudnn_eligible(layer) for layer in layers)
    assert [layer.return_sequences for layer in layers] == [True, True, False]


def test_cudnn_check_detects_an_ineligible_layer():
    import keras

    assert not is_cudnn_eligible(keras.layers.LSTM(4, recurrent_dropout=0.1))
    assert not is_cudnn_eligible(keras.layers.LSTM(4, activation="relu"))


def test_fit_learns_and_reports_early_stopping_facts(rng):
    arrays = tiny_arrays(rng)
    model, facts = fit_model(arrays, lookback=8, horizon=3, units=8, layers=1, dropout=0.0, learning_rate=0.01,
                             batch_size=16, max_epochs=2, patience=1, seed=0)
    assert 1 <= facts["epochs_run"] <= 2 and 1 <= facts["best_epoch"] <= facts["epochs_run"]
    assert np.isfinite(facts["val_loss"])
    interval = residual_quantiles(model, arrays["val_x"], arrays["val_y"], 0.8, 16)
    assert len(interval["lower"]) == 3 and all(lo <= hi for lo, hi in zip(interval["lower"], interval["upper"]))


def test_registry_round_trip_with_safe_mode(tmp_path, rng):
    model = build_lstm_model(lookback=6, horizon=2, units=3, layers=1, seed=0)
    scaler = SeriesScaler().fit(pd.DataFrame({"series_id": ["a", "a"], "value": [1.0, 2.0]}))
    save_version(tmp_path, "v1", model, scaler, {"lookback": 6})
    save_version(tmp_path, "v2", model, scaler, {"lookback": 6})
    assert read_index(tmp_path) == {"champion": "v2", "versions": ["v1", "v2"]}
    loaded = load_champion(tmp_path)
    x = rng.normal(size=(3, 6, 1)).astype("float32")
    np.testing.assert_allclose(loaded.model.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)
    assert loaded.metadata["version"] == "v2"
    assert json.loads((tmp_path / "v1" / "scaler.json").read_text())["mean"] == {"a": 1.5}
    assert not list(tmp_path.glob(".*"))  # no temporary folder left behind
    with pytest.raises(FileExistsError):
        save_version(tmp_path, "v1", model, scaler, {})


def test_registry_refuses_unsafe_names_and_missing_models(tmp_path):
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="invalid model version"):
            version_dir(tmp_path, bad)
    with pytest.raises(PipelineError, match="no champion"):
        load_champion(tmp_path)
    with pytest.raises(PipelineError, match="missing"):
        load_version(tmp_path, "v9")


def test_version_names_sort_by_data_date():
    early = new_version_name(pd.Timestamp("2016-01-02", tz="UTC"), "abcdef12-3456")
    late = new_version_name(pd.Timestamp("2016-12-31", tz="UTC"), "00000000-0000")
    assert early == "20160102T000000Z-abcdef12" and early < late

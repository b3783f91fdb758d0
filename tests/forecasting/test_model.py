"""The forecasting network, its training and calibration, and the model registry (Keras 3 API, tiny sizes)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import PipelineError
from forecasting.model.config import ModelConfig, quantiles_for
from forecasting.model.network import build_forecaster, is_cudnn_eligible, recurrent_layers
from forecasting.model.training import calibrate, fit_model, forward, predict_quantiles, stall_stopping
from forecasting.model.version import new_version_name
from forecasting.scaling import Scalers, SeriesScaler
from forecasting.windows import TRAIN, VALIDATION, WindowSource
from stores import registry
from stores.registry import load_champion, load_version, read_index, save_version, usable_champion, version_dir


def wave_source(lookback=8, horizon=3, n=96, noise=0.0):
    """A sine wave cut into windows: the first 3/4 train, the rest validation."""
    rng = np.random.default_rng(1)
    wave = (np.sin(np.arange(n + lookback + horizon) / 2.0) + rng.normal(0, noise, n + lookback + horizon))
    starts = np.arange(n)
    cut = n * 3 // 4
    return WindowSource(wave.astype("float32")[:, None], wave.astype("float32"),
                        {TRAIN: starts[:cut], VALIDATION: starts[cut:]}, lookback, horizon)


def tiny_config(**overrides):
    values = dict(lookback=8, horizon=3, features=("value_scaled",), quantiles=(0.1, 0.5, 0.9), units=8, layers=1,
                  dropout=0.0, level_window=4, learning_rate=0.01, batch_size=16, seed=0)
    return ModelConfig(**{**values, **overrides})


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_model_maps_history_to_direct_quantile_horizon_and_stays_cudnn_eligible(cell):
    model = build_forecaster(lookback=12, horizon=5, n_features=3, cell=cell, units=4, layers=3, dropout=0.2,
                             l1=1e-5, l2=1e-4, seed=1)
    assert model.input_shape == (None, 12, 3)
    assert model.output_shape == (None, 5, 3)  # [batch, horizon, quantiles]
    layers = recurrent_layers(model)
    assert len(layers) == 3 and all(is_cudnn_eligible(layer) for layer in layers)
    assert [layer.return_sequences for layer in layers] == [True, True, False]
    assert model.losses  # the L1/L2 penalties are part of the loss


def test_cudnn_check_detects_an_ineligible_layer():
    import keras

    assert not is_cudnn_eligible(keras.layers.LSTM(4, recurrent_dropout=0.1))
    assert not is_cudnn_eligible(keras.layers.GRU(4, reset_after=False))


def test_window_level_is_removed_and_restored():
    """Shifting a window by a constant shifts its forecast by the same constant (level centring)."""
    model = build_forecaster(lookback=6, horizon=2, units=3, layers=1, dropout=0.0, level_window=3, seed=0)
    x = np.random.default_rng(0).normal(size=(4, 6, 1)).astype("float32")
    shifted = model.predict(x + 5.0, verbose=0) - model.predict(x, verbose=0)
    np.testing.assert_allclose(shifted, 5.0, atol=1e-4)


def trained_digest() -> str:
    """SHA-256 of the quantile forecasts of a tiny model and of a three-network ensemble (its members trained
    side by side, on threads) trained on the wave (run here or in a fresh process)."""
    import hashlib

    source = wave_source()
    x, _ = source.window(source.starts[VALIDATION])
    digest = hashlib.sha256()
    for config in (tiny_config(), tiny_config(members=3, dropout=0.2)):
        model, _ = fit_model(config, source, max_epochs=3, patience=2)
        digest.update(predict_quantiles(model, x).tobytes())
    return digest.hexdigest()


def test_two_runs_on_the_cpu_give_the_same_forecasts():
    """One run in a fresh process (another PYTHONHASHSEED), one in this process after other trainings."""
    import os
    import subprocess
    import sys

    from forecasting.settings import PROJECT_ROOT

    script = "from tests.forecasting.test_model import trained_digest; print(trained_digest())"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=PROJECT_ROOT, env={**os.environ, "PYTHONHASHSEED": "123"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == trained_digest()


@pytest.mark.parametrize("imputed", [False, True])
def test_training_batch_by_batch_gives_the_weights_and_losses_of_keras_fit(imputed):
    """fit_in_batches replaces `fit` on one device: the same compiled step, batches and callbacks, so the same
    network, early stopping and learning-rate schedule, dropout included. With imputed targets (sample
    weights) the two compiled steps round differently in the last bits, so the weights agree to 1e-5."""
    import keras

    from forecasting.model.dataset import WindowDataset
    from forecasting.model.training import fit_in_batches, stopping_windows

    source = wave_source(noise=0.3)
    if imputed:
        observed = np.ones(len(source.target), dtype="float32")
        observed[::5] = 0.0
        source = replace(source, observed=observed)
    config = tiny_config(dropout=0.2, max_val_windows=None)
    histories, trained = [], []
    for batch_by_batch in (False, True):
        keras.utils.set_random_seed(0)
        model = config.build()
        train = WindowDataset(source, TRAIN, config.batch_size, shuffle=True, seed=5)
        callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True),
                     keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1)]
        if batch_by_batch:
            history = fit_in_batches(model, train, stopping_windows(source, config), 12, callbacks)
        else:
            history = model.fit(train, steps_per_epoch=train.batches_per_epoch, shuffle=False, epochs=12,
                                validation_data=stopping_windows(source, config), verbose=0,
                                callbacks=callbacks).history
        histories.append(history)
        trained.append(model.get_weights())
    for key in ("loss", "val_loss"):  # fit divides the loss total by the count in its graph: the last bit may differ
        np.testing.assert_allclose(histories[1][key], histories[0][key], rtol=1e-5)
    for theirs, ours in zip(*trained, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 if imputed else 0)


def compiled_step(function):
    """The tf.function inside a Keras 3.15 train or test function (TensorFlow backend): its traces are counted."""
    cells = dict(zip(function.__code__.co_freevars, (cell.cell_contents for cell in function.__closure__)))
    return cells["one_step_on_data"].__wrapped__


def test_training_traces_its_step_once_where_its_optimizer_was_not_built():
    """A single network's optimizer is built before its first training step: left to the step's first trace,
    creating Adam's moments made TensorFlow trace it twice (0.5-0.7 s of a daily network's first step)."""
    import keras

    from forecasting.model.dataset import WindowDataset
    from forecasting.model.training import fit_in_batches, stopping_windows

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tracing is TensorFlow's")
    source = wave_source(n=86)  # 64 training windows: four batches of 16, one shape
    config = tiny_config(max_val_windows=None)
    model = config.build()
    assert not model.optimizer.built
    fit_in_batches(model, WindowDataset(source, TRAIN, config.batch_size, shuffle=True, seed=5),
                   stopping_windows(source, config), 2, [])
    assert compiled_step(model.train_function).experimental_get_tracing_count() == 1


def test_validation_traces_its_test_step_once_however_many_windows_it_scores():
    """Early stopping scores its validation sample in one batch: batches of 4 x batch_size left a shorter last
    one on almost every run, and TensorFlow traced the test step again for it (0.4-0.6 s a network)."""
    import keras

    from forecasting.model.dataset import WindowDataset
    from forecasting.model.training import MAX_VALIDATION_BATCH, fit_in_batches, stopping_windows

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tracing is TensorFlow's")
    source = wave_source(n=400)  # 100 validation windows: more than 4 x 16, not a multiple of it
    config = tiny_config(max_val_windows=2048)
    validation = stopping_windows(source, config)
    assert validation.num_batches == 1 and len(validation[0][0]) == 100
    huge = stopping_windows(wave_source(n=40_000), tiny_config(max_val_windows=1_000_000))
    assert huge.batch_size == MAX_VALIDATION_BATCH  # a bound a user raised is not one batch of everything
    model = config.build()
    fit_in_batches(model, WindowDataset(source, TRAIN, config.batch_size, shuffle=True, seed=5, max_windows=64),
                   validation, 2, [])
    assert compiled_step(model.test_function).experimental_get_tracing_count() == 1


def test_quantiles_are_ordered():
    source = wave_source()
    model, facts = fit_model(tiny_config(), source, max_epochs=3, patience=2)
    x, _ = source.window(source.starts[VALIDATION])
    out = predict_quantiles(model, x)
    assert (np.diff(out, axis=-1) >= 0).all()
    assert 1 <= facts["best_epoch"] <= facts["epochs_run"] <= 3 and np.isfinite(facts["val_loss"])


def test_calibration_reaches_the_requested_coverage_on_its_windows():
    source = wave_source(n=400, noise=0.3)
    model, _ = fit_model(tiny_config(), source, max_epochs=2, patience=1)
    interval = calibrate(model, source, level=0.8)
    assert len(interval["correction"]) == 3
    assert 0.8 <= interval["val_coverage"] <= 0.9


def test_streamed_batches_are_the_windows():
    from forecasting.model.dataset import WindowDataset

    source = wave_source()
    dataset = WindowDataset(source, TRAIN, batch_size=10, shuffle=True, seed=3)
    assert dataset.num_batches is None  # endless: fit cuts it into epochs of batches_per_epoch
    per_epoch = dataset.batches_per_epoch
    epochs = []
    for epoch in range(2):
        seen = []
        for i in range(epoch * per_epoch, (epoch + 1) * per_epoch):
            x, y = dataset[i]
            assert x.shape[1:] == (8, 1) and y.shape[1:] == (3,)
            seen.append(x[:, 0, 0])
        epochs.append(np.concatenate(seen))
        first_values = np.sort(epochs[-1])
        np.testing.assert_array_equal(first_values, np.sort(source.features[source.starts[TRAIN], 0]))  # each once
    assert not np.array_equal(epochs[0], epochs[1])  # every epoch in its own order


def test_each_batch_is_a_pure_function_of_its_index_and_seed():
    """Reads in any order, repeated, or from a fresh dataset give the same batches: nothing in training's
    input order depends on when Keras prefetches or on any process-wide random state."""
    import random

    from forecasting.model.dataset import WindowDataset

    source = wave_source(n=200)
    dataset = WindowDataset(source, TRAIN, batch_size=16, shuffle=True, seed=0)
    indices = list(range(3 * dataset.batches_per_epoch))
    forward = [dataset[i][0] for i in indices]
    random.seed(1)
    random.shuffle(indices)
    fresh = WindowDataset(source, TRAIN, batch_size=16, shuffle=True, seed=0)
    for i in indices:
        np.testing.assert_array_equal(fresh[i][0], forward[i])


def test_an_epoch_can_be_capped_to_a_seeded_sample_of_windows():
    from forecasting.model.dataset import WindowDataset

    source = wave_source(n=200)
    dataset = WindowDataset(source, TRAIN, batch_size=16, shuffle=True, seed=0, max_windows=40)
    # 40 windows: three batches of one size (14, 14 and 12 topped up with the epoch's first two windows), not
    # 16 + 16 + 8, so TensorFlow traces the training step for one shape
    assert dataset.batches_per_epoch == 3 and dataset.epoch_batch_size == 14
    assert {len(dataset[i][0]) for i in range(30)} == {14}
    epochs = [np.concatenate([dataset[3 * e + i][0][:, 0, 0] for i in range(3)]) for e in range(10)]
    assert all(len(epoch) == 42 and len(np.unique(epoch)) == 40 for epoch in epochs)  # a sample of 40 windows
    assert all(np.array_equal(epoch[-2:], epoch[:2]) for epoch in epochs)  # two of them again to fill the last batch
    assert not np.array_equal(np.sort(epochs[0]), np.sort(epochs[1]))  # each epoch draws its own sample
    assert len(np.unique(np.concatenate(epochs))) > 120  # so over ten epochs training sees most windows
    again = WindowDataset(source, TRAIN, batch_size=16, shuffle=True, seed=0, max_windows=40)
    np.testing.assert_array_equal(np.concatenate([again[i][0][:, 0, 0] for i in range(3, 6)]), epochs[1])
    other = WindowDataset(source, TRAIN, batch_size=16, shuffle=True, seed=1, max_windows=40)
    assert not np.array_equal(np.sort(epochs[0]), np.sort(np.concatenate([other[i][0][:, 0, 0] for i in range(3)])))


def test_a_priority_sample_is_the_same_windows_every_epoch():
    from forecasting.model.dataset import WindowDataset

    source = wave_source(n=200)
    priority = np.zeros(source.count(TRAIN), dtype=bool)
    priority[-10:] = True  # e.g. the windows a warm-started champion has not trained on
    dataset = WindowDataset(source, TRAIN, batch_size=16, shuffle=True, seed=0, max_windows=40, priority=priority)
    first = np.concatenate([dataset[i][0][:, 0, 0] for i in range(3)])
    second = np.concatenate([dataset[i][0][:, 0, 0] for i in range(3, 6)])
    assert np.array_equal(np.unique(first), np.unique(second))  # (each epoch's last batch repeats its first two)
    newest = source.window(source.starts[TRAIN][-10:])[0][:, 0, 0]
    assert np.isin(newest, first).all()


def test_training_ignores_other_threads_drawing_from_python_random():
    """Prefect's background threads draw from Python's process-wide `random` (websocket keep-alive pings,
    service jitter) whenever they like; the weights must not depend on it (they did while Keras shuffled
    batches with that generator)."""
    import random
    import threading

    source = wave_source(n=400)
    quiet, _ = fit_model(tiny_config(), source, max_epochs=3, patience=3)
    stop = threading.Event()

    def draw():
        while not stop.is_set():
            random.random()
            stop.wait(0.0005)

    noise = threading.Thread(target=draw, daemon=True)
    noise.start()
    try:
        noisy, _ = fit_model(tiny_config(), source, max_epochs=3, patience=3)
    finally:
        stop.set()
        noise.join()
    for mine, theirs in zip(noisy.get_weights(), quiet.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_a_warm_start_sample_takes_the_windows_new_to_the_champion_first():
    from forecasting.model.dataset import WindowDataset

    source = wave_source(n=200)
    count = source.count(TRAIN)
    new = np.zeros(count, dtype=bool)
    new[-12:] = True  # the latest windows: targets the champion never trained on
    dataset = WindowDataset(source, TRAIN, batch_size=16, shuffle=True, seed=0, max_windows=30, priority=new)
    chosen = dataset.order
    assert len(chosen) == 30 and len(set(chosen)) == 30
    assert set(np.flatnonzero(new)) <= set(chosen)  # every new window, topped up with 18 older ones
    assert not np.array_equal(np.sort(chosen[:12]), np.flatnonzero(new))  # mixed through the epoch, not first
    again = WindowDataset(source, TRAIN, batch_size=16, shuffle=True, seed=0, max_windows=30, priority=new)
    assert np.array_equal(chosen, again.order)


def test_warm_start_begins_from_the_given_weights():
    source = wave_source()
    champion, _ = fit_model(tiny_config(), source, max_epochs=2, patience=1)
    warm, _ = fit_model(tiny_config(learning_rate=1e-12), source, max_epochs=1, patience=1,
                        initial_weights=champion.get_weights())
    for mine, theirs in zip(warm.get_weights(), champion.get_weights()):
        np.testing.assert_allclose(mine, theirs, atol=1e-6)


def test_quantiles_for_level():
    assert quantiles_for(0.8) == (0.1, 0.5, 0.9)


def scalers():
    return Scalers(SeriesScaler("auto").fit(pd.DataFrame({"series_id": ["a", "a"], "value": [1.0, 3.0]})))


def test_registry_round_trip_with_safe_mode(tmp_path):
    config = tiny_config()
    model = config.build()
    metadata = {"config": config.as_dict(), "interval": {"correction": [0.0, 0.0, 0.0]}}
    save_version(tmp_path, "v1", model, scalers(), metadata)
    save_version(tmp_path, "v2", model, scalers(), metadata, make_champion=False)
    assert read_index(tmp_path) == {"champion": "v1", "versions": ["v1", "v2"]}
    loaded = load_champion(tmp_path)
    x = np.random.default_rng(0).normal(size=(3, 8, 1)).astype("float32")
    np.testing.assert_allclose(loaded.model.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)
    assert loaded.config == config and loaded.metadata["version"] == "v1"
    assert json.loads((tmp_path / "v1" / "scalers.json").read_text())["target"]["log1p"] == {"a": True}
    assert not list(tmp_path.glob(".*"))  # no temporary folder left behind
    with pytest.raises(FileExistsError):
        save_version(tmp_path, "v1", model, scalers(), metadata)


def test_a_process_loads_a_version_once_until_its_model_file_changes(tmp_path):
    config = tiny_config()
    model = config.build()
    save_version(tmp_path, "v1", model, scalers(), {"config": config.as_dict()})
    first = load_version(tmp_path, "v1")
    again = load_version(tmp_path, "v1")
    assert again.model is first.model  # explanations and publication share one loaded network
    first.scalers.extend(pd.DataFrame({"series_id": ["new"] * 2, "value": [5.0, 7.0]}))
    first.metadata["note"] = "changed by its caller"
    fresh = load_version(tmp_path, "v1")  # scalers and metadata are each caller's own
    assert not fresh.scalers.target.knows(pd.Series(["new"])).any() and "note" not in fresh.metadata
    other = tmp_path / "copy"
    save_version(other, "v1", model, scalers(), {"config": config.as_dict()})
    assert load_version(other, "v1").model is not first.model  # same name, another registry
    (tmp_path / "v1" / "model.keras").write_bytes(b"not a model")  # rewritten by other hands: read afresh
    with pytest.raises(ValueError):
        load_version(tmp_path, "v1")


def _stopping_run(callback, model, losses):
    """Feed `callback` the validation losses epoch by epoch as training would, the weights of epoch e set to
    e; returns (epochs run, the first weight after training)."""
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    epochs = 0
    for epoch, loss in enumerate(losses):
        model.set_weights([np.full(w.shape, float(epoch), dtype=w.dtype) for w in model.get_weights()])
        callback.on_epoch_end(epoch, {"val_loss": loss})
        epochs += 1
        if model.stop_training:
            break
    callback.on_train_end()
    return epochs, float(model.get_weights()[0].flat[0])


def test_early_stopping_counts_only_relative_progress_and_restores_the_best_weights_seen():
    import keras

    model = tiny_config().build()
    creeping = [1.0, 0.98, 0.979, 0.978, 0.977, 0.976, 0.975, 0.974]  # 0.1% an epoch after the first step
    assert _stopping_run(stall_stopping(2, 0.005), model, creeping) == (4, 3.0)  # the best seen: epoch 3
    assert _stopping_run(stall_stopping(2, 0.0), model, creeping) == (8, 7.0)  # every decrease is progress
    rng = np.random.default_rng(3)
    for _ in range(20):  # with no threshold it stops and restores as Keras' EarlyStopping does
        losses = list(rng.normal(1.0, 0.05, size=15))
        keras_stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
        assert _stopping_run(stall_stopping(3, 0.0), model, losses) == _stopping_run(keras_stop, model, losses)


def test_a_network_saved_to_keep_loaded_is_the_one_loaded_and_forecasts_as_its_file_does(tmp_path):
    config = tiny_config(members=2)
    model = config.build()
    save_version(tmp_path, "v1", model, scalers(), {"config": config.as_dict()}, keep_loaded=True)
    assert load_version(tmp_path, "v1").model is model  # the run's explanations and publication use it
    read_back = registry._load_network(tmp_path / "v1" / "model.keras")
    x = np.random.default_rng(0).normal(size=(5, config.lookback, 1)).astype("float32")
    np.testing.assert_array_equal(forward(model, x), forward(read_back, x))  # to the bit
    metadata = {"config": config.as_dict(), "training_fingerprint": "same"}
    save_version(tmp_path, "v2", model, scalers(), metadata)
    retried = config.build()  # a retried train task's network, after an earlier attempt wrote the folder
    save_version(tmp_path, "v2", retried, scalers(), metadata, keep_loaded=True)
    assert load_version(tmp_path, "v2").model is not retried  # the version is the file the first attempt wrote


def test_predictions_trace_the_network_once_for_every_batch_size():
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tracing is TensorFlow's")
    model = tiny_config(members=2).build()
    x = np.random.default_rng(0).normal(size=(7, 8, 1)).astype("float32")
    outputs = [forward(model, x[:size]) for size in (4, 7, 1)]
    assert model.predict_function.experimental_get_tracing_count() == 1  # TensorFlow alone traces it twice
    np.testing.assert_allclose(outputs[1], np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs[0], outputs[1][:4], rtol=1e-5, atol=1e-6)


def test_only_a_loadable_champion_of_the_same_frequency_is_used(tmp_path, caplog):
    import logging

    log = logging.getLogger("test")
    config = tiny_config()
    save_version(tmp_path, "v1", config.build(), scalers(), {"config": config.as_dict(), "frequency": "D"})
    assert usable_champion(tmp_path, "D", log).version == "v1"
    with caplog.at_level(logging.WARNING):
        assert usable_champion(tmp_path, "h", log) is None
        (tmp_path / "v1" / "model.keras").write_bytes(b"not a model")
        assert usable_champion(tmp_path, "D", log) is None
    assert "serves D data, this run is h" in caplog.text and "cannot be loaded" in caplog.text


def test_registry_refuses_unsafe_names_and_missing_models(tmp_path):
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="invalid model version"):
            version_dir(tmp_path, bad)
    with pytest.raises(PipelineError, match="no champion"):
        load_champion(tmp_path)
    with pytest.raises(PipelineError, match="missing"):
        load_version(tmp_path, "v9")


def test_unsafe_model_file_is_refused(tmp_path):
    """A .keras file with a Lambda layer (arbitrary code) does not load from the data dir."""
    import keras

    inputs = keras.Input((8, 1))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    (tmp_path / "evil").mkdir()
    model.save(tmp_path / "evil" / "model.keras")
    (tmp_path / "evil" / "scalers.json").write_text(json.dumps(scalers().to_dict()))
    (tmp_path / "evil" / "metadata.json").write_text("{}")
    with pytest.raises(ValueError, match="(?i)lambda|safe"):
        load_version(tmp_path, "evil")


def test_version_names_sort_by_data_date():
    early = new_version_name(pd.Timestamp("2016-01-02", tz="UTC"), "abcdef12-3456")
    late = new_version_name(pd.Timestamp("2016-12-31", tz="UTC"), "00000000-0000")
    assert early == "20160102T000000Z-abcdef12" and early < late


def test_validation_windows_can_be_capped_to_a_fixed_sample_in_order():
    from forecasting.model.dataset import WindowDataset

    source = wave_source(n=400)
    count = source.count(VALIDATION)
    capped = WindowDataset(source, VALIDATION, batch_size=8, shuffle=False, seed=0, max_windows=10)
    assert capped.per_pass == 10 < count
    assert np.all(np.diff(capped.order) > 0)  # distinct windows, in their original order
    assert np.array_equal(capped.order, WindowDataset(source, VALIDATION, 8, shuffle=False, seed=0,
                                                      max_windows=10).order)
    whole = WindowDataset(source, VALIDATION, batch_size=8, shuffle=False, seed=0, max_windows=count + 5)
    assert np.array_equal(whole.order, np.arange(count))  # a cap above the count keeps every window
    model, facts = fit_model(tiny_config(max_val_windows=10), source, max_epochs=1, patience=1)
    assert np.isfinite(facts["val_loss"])


def test_imputed_targets_carry_no_weight_in_training_or_calibration():
    """Two sources that differ only in the targets gap-fill imputed train identical models when those
    targets are marked imputed (they are inputs only), and different ones when they are not."""
    from forecasting.model.training import calibrate

    clean = wave_source(n=160)
    observed = np.ones(len(clean.target), dtype="float32")
    observed[40:60] = 0.0  # a gap in the training period
    observed[150:155] = 0.0  # and one in the validation period
    garbage = clean.target.copy()
    garbage[observed == 0] = 50.0  # what a bad fill might have made up
    masked = [replace(clean, observed=observed), replace(clean, target=garbage, observed=observed)]
    weights = [fit_model(tiny_config(), source, max_epochs=2, patience=2)[0].get_weights() for source in masked]
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    unmasked, _ = fit_model(tiny_config(), replace(clean, target=garbage), max_epochs=2, patience=2)
    assert any(not np.array_equal(a, b) for a, b in zip(weights[0], unmasked.get_weights()))
    model = fit_model(tiny_config(), masked[0], max_epochs=1, patience=1)[0]
    assert calibrate(model, masked[0], 0.8) == calibrate(model, masked[1], 0.8)


def test_seasonal_base_repeats_the_average_season_at_the_current_level():
    from forecasting.model.network import SeasonalBase

    season = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    # Four weeks whose shape is the same but whose level rises by 7 each week; noise that averages out.
    weeks = np.concatenate([season + 7.0 * k + noise for k, noise in enumerate([0.5, -0.5, 0.5, -0.5])])
    base = np.asarray(SeasonalBase(horizon=10, season=7, level_window=7)(weeks[None, :, None].astype("float32")))[0]
    level = weeks[-7:].mean()
    np.testing.assert_allclose(base, level + (np.resize(season, 10) - season.mean()), rtol=1e-6)
    flat = np.asarray(SeasonalBase(horizon=3, season=1, level_window=1)(weeks[None, :, None].astype("float32")))[0]
    np.testing.assert_allclose(flat, [weeks[-1]] * 3)  # no season: the last level, like naive


def test_a_seasonal_base_model_saves_and_loads_with_the_same_forecasts(tmp_path):
    import keras

    model = build_forecaster(lookback=28, horizon=14, base="seasonal", season=7, seed=0)
    x = np.random.default_rng(0).normal(size=(4, 28, 1)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)
    assert "seasonal_base" in [layer.name for layer in model.layers]


def test_with_two_long_seasons_in_the_window_the_base_repeats_the_weekly_profile():
    from forecasting.model.network import SeasonalBase

    # Hourly-like: a day of 4 steps, a week of 7 days whose weekend (the last two days) is lower.
    day = np.array([1.0, 3.0, 2.0, 0.0])
    week = np.concatenate([day + (0.0 if d < 5 else -2.0) for d in range(7)])
    history = np.concatenate([week + 10.0, week + 10.0])  # two weeks at level 10 (+ the week's mean shape)
    base = np.asarray(SeasonalBase(horizon=8, season=4, level_window=4, long_season=28)(
        history[None, :, None].astype("float32")))[0]
    # The window ended on a (low) weekend day; the next two days are weekdays, back at the weekday level.
    np.testing.assert_allclose(base, history[:8], rtol=1e-6)
    # Under two full weeks the base falls back to the daily profile at the last day's level.
    daily = np.asarray(SeasonalBase(horizon=4, season=4, level_window=4, long_season=28)(
        history[None, -20:, None].astype("float32")))[0]
    np.testing.assert_allclose(daily, history[-4:].mean() + day - day.mean(), rtol=1e-6)


def test_the_recurrent_layers_read_only_the_latest_steps_of_a_longer_window():
    import keras

    model = build_forecaster(lookback=24, horizon=3, base="seasonal", season=4, long_season=8,
                             recurrent_lookback=8, seed=0, dropout=0.0)
    assert model.get_layer("lstm_1").input.shape[1] == 8
    x = np.random.default_rng(0).normal(size=(2, 24, 1)).astype("float32")
    older = x.copy()
    older[:, :8] += 5.0  # changes only the steps the recurrent layers do not read
    base = model.get_layer("seasonal_base")
    network = lambda v: np.asarray(model(v)) - np.asarray(base(v))[..., None]  # noqa: E731
    np.testing.assert_allclose(network(older), network(x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(base(older)), np.asarray(base(x)))  # the base reads the whole window
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model)).input_shape == \
        model.input_shape


def test_base_only_forecasts_are_the_seasonal_base_with_the_models_interval_moved_onto_it():
    model = build_forecaster(lookback=14, horizon=7, base="seasonal", season=7, seed=0)
    x = np.random.default_rng(1).normal(size=(3, 14, 1)).astype("float32")
    full = predict_quantiles(model, x, correction=[0.1] * 7)
    base_only = predict_quantiles(model, x, correction=[0.1] * 7, base_only=True)
    np.testing.assert_allclose(base_only[..., 1], np.asarray(model.get_layer("seasonal_base")(x)), rtol=1e-5)
    np.testing.assert_allclose(base_only[..., 2] - base_only[..., 0], full[..., 2] - full[..., 0], rtol=1e-6)
    with pytest.raises(ValueError, match="seasonal base"):
        predict_quantiles(build_forecaster(lookback=14, horizon=7, seed=0), x, base_only=True)


def test_a_retried_save_of_the_same_training_registers_the_version_once(tmp_path):
    config = tiny_config()
    model = config.build()
    metadata = {"config": config.as_dict(), "training_fingerprint": "abc"}
    save_version(tmp_path, "v1", model, scalers(), metadata)
    save_version(tmp_path, "v1", model, scalers(), metadata)  # a train task retried after its save
    assert read_index(tmp_path) == {"champion": "v1", "versions": ["v1"]}
    with pytest.raises(FileExistsError):  # another training under a taken name is still refused
        save_version(tmp_path, "v1", model, scalers(), {**metadata, "training_fingerprint": "other"})


def test_a_full_retrain_is_due_by_the_cadence_or_drift_counted_from_the_last_from_scratch_fit():
    from forecasting.model.version import ModelVersion, full_retrain_reason

    config = tiny_config()
    champion = ModelVersion("v1", None, None, {"config": config.as_dict(),
                                               "full_retrain_as_of": "2016-12-01T00:00:00+00:00"})
    day = pd.Timestamp("2016-12-09", tz="UTC")
    assert full_retrain_reason(None, config, day, 7) == "no champion to start from"
    assert "architecture" in full_retrain_reason(champion, replace(config, units=16), day, 7)
    assert "7 or more days old" in full_retrain_reason(champion, config, day, 7)
    # A from-scratch fit as of the 8th lost to the champion: the question is answered for another week.
    assert full_retrain_reason(champion, config, day, 7, last_attempt="2016-12-08T00:00:00+00:00") is None
    assert "7 or more days old" in full_retrain_reason(champion, config, pd.Timestamp("2016-12-15", tz="UTC"), 7,
                                                       last_attempt="2016-12-08T00:00:00+00:00")
    # Drift found after the last from-scratch fit asks for one; drift found before it was answered by it.
    drift = {"as_of": "2016-12-05T00:00:00+00:00", "reason": "realised MASE 2.0"}
    assert full_retrain_reason(champion, config, pd.Timestamp("2016-12-06", tz="UTC"), 7, drift).startswith(
        "drift found by the run of 2016-12-05")
    assert full_retrain_reason(champion, config, pd.Timestamp("2016-12-07", tz="UTC"), 7, drift,
                               last_attempt="2016-12-06T00:00:00+00:00") is None


def test_the_last_full_retrain_is_the_newest_from_scratch_version_of_the_architecture(tmp_path):
    from stores.registry import last_full_retrain

    source = wave_source()
    model, _ = fit_model(tiny_config(), source, max_epochs=1, patience=1)
    config = tiny_config()
    for version, warm, as_of, cfg in (("v1", False, "2016-12-01", config), ("v2", True, "2016-12-02", config),
                                      ("v3", False, "2016-12-03", config), ("v4", True, "2016-12-04", config),
                                      ("v5", False, "2016-12-05", replace(config, units=16))):
        save_version(tmp_path, version, model, scalers(), {"config": cfg.as_dict(), "warm_start": warm,
                                                         "data_end": as_of}, make_champion=version == "v1")
    assert last_full_retrain(tmp_path, config.architecture()) == "2016-12-03"  # v3 was not promoted; v5 differs
    assert last_full_retrain(tmp_path / "empty", config.architecture()) is None


def test_an_ensemble_averages_networks_trained_from_their_own_seeds_and_loads_safely(tmp_path):
    from forecasting.model.network import ensemble_members

    source = wave_source(noise=0.1)
    config = tiny_config(members=3, base="seasonal", season=4)
    model, facts = fit_model(config, source, max_epochs=2, patience=1)
    members = ensemble_members(model)
    assert [member.name for member in members] == ["member_1", "member_2", "member_3"]
    assert [m["seed"] for m in facts["members"]] == config.member_seeds() == [0, 1000, 2000]
    assert facts["epochs_run"] == sum(m["epochs_run"] for m in facts["members"]) and np.isfinite(facts["val_loss"])
    x, _ = source.window(source.starts[VALIDATION])
    each = np.stack([np.asarray(member(x, training=False)) for member in members])
    assert not np.allclose(each[0], each[1])  # different seeds, different networks
    np.testing.assert_allclose(np.asarray(model(x, training=False)), each.mean(axis=0), rtol=1e-5, atol=1e-6)
    assert len(recurrent_layers(model)) == 3
    base_only = predict_quantiles(model, x, base_only=True)  # every member's base is the same forecast
    np.testing.assert_allclose(base_only[..., 1], np.asarray(members[0].get_layer("seasonal_base")(x)), rtol=1e-5)

    save_version(tmp_path, "v1", model, scalers(), {"config": config.as_dict()})
    loaded = load_version(tmp_path, "v1")
    assert loaded.config == config
    np.testing.assert_allclose(predict_quantiles(loaded.model, x), predict_quantiles(model, x), rtol=1e-5)
    # A warm start of the same architecture takes every member's weights.
    warm, _ = fit_model(replace(config, learning_rate=1e-12), source, max_epochs=1, patience=1,
                        initial_weights=loaded.model.get_weights())
    for mine, theirs in zip(warm.get_weights(), model.get_weights()):
        np.testing.assert_allclose(mine, theirs, atol=1e-6)


def test_each_member_trains_as_the_network_its_seed_builds_alone():
    """On the CPU the members train side by side, each on its own thread; on a device (here the CPU named as
    one) they share one compiled trainer in turn (one traced graph). Either way each ends where a single
    network of its seed, with its dropout and window order, would: the trainer hands over weights, random
    state and a fresh optimizer (learning rate included, which the plateau rule may have halved)."""
    from forecasting.model.network import ensemble_members

    source = wave_source(noise=0.1)
    config = tiny_config(members=3, dropout=0.2, base="seasonal", season=4)
    side_by_side, _ = fit_model(config, source, max_epochs=4, patience=2, lr_patience=1)
    in_turn, _ = fit_model(config, source, max_epochs=4, patience=2, lr_patience=1, devices=["/device:CPU:0"])
    for number, seed in enumerate(config.member_seeds()):
        alone, _ = fit_model(replace(config, members=1, seed=seed), source, max_epochs=4, patience=2, lr_patience=1)
        for ensemble in (side_by_side, in_turn):
            for mine, theirs in zip(ensemble_members(ensemble)[number].get_weights(), alone.get_weights()):
                np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_a_single_member_is_the_network_its_seed_always_built():
    one = tiny_config(members=1).build()
    assert one.name == "lstm_forecaster"
    np.testing.assert_array_equal(one.get_weights()[0], tiny_config().build().get_weights()[0])


def test_the_default_ensemble_is_three_networks_for_a_single_series_and_one_for_a_panel():
    from forecasting.settings import Settings

    def members(settings, series):
        return ModelConfig.from_settings(settings, lookback=14, horizon=7, features=["value_scaled"],
                                         frequency="D", series=series).members

    assert (members(Settings(), 1), members(Settings(), 2), members(Settings(), None)) == (3, 1, 1)
    assert members(Settings(ensemble_members=2), 10) == 2 and members(Settings(ensemble_members=1), 1) == 1
    assert "members" in ModelConfig.from_dict({**tiny_config().as_dict()}).architecture()
    old = {k: v for k, v in tiny_config().as_dict().items() if k != "members"}  # saved before ensembles
    assert ModelConfig.from_dict(old).members == 1


def test_when_one_member_fails_the_others_training_side_by_side_stop_and_the_error_is_raised():
    """Left to train on, the other members would hold the process for minutes after the run failed."""
    import threading
    import time

    from forecasting.model.training import side_by_side_runs

    stop, stopped = threading.Event(), []

    def train(number):
        if number == 2:
            raise PipelineError("member 2 failed")
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:  # a member's batches, until told to stop
            time.sleep(0.01)
        stopped.append((number, stop.is_set()))
        return {"number": number}

    started = time.monotonic()
    with pytest.raises(PipelineError, match="member 2 failed"):
        side_by_side_runs(train, [1, 2, 3], stop)
    assert sorted(stopped) == [(1, True), (3, True)] and time.monotonic() - started < 30
    assert side_by_side_runs(lambda number: {"number": number}, [3, 1, 2], threading.Event()) == [
        {"number": 3}, {"number": 1}, {"number": 2}]

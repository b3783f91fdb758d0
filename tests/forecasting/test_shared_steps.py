"""One compiled training and test step for every network of an architecture (forecasting/model/shared_steps.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from forecasting.model.training import fit_model
from tests.forecasting.test_model import tiny_config, wave_source

keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":
    pytest.skip("shared steps are TensorFlow's", allow_module_level=True)


def batches(config, count, imputed):
    rng = np.random.default_rng(3)
    out = []
    for _ in range(count):
        x = rng.normal(size=(config.batch_size, config.lookback, len(config.features))).astype("float32")
        y = rng.normal(size=(config.batch_size, config.horizon)).astype("float32")
        weights = (rng.random((config.batch_size, config.horizon)) > 0.2).astype("float32") if imputed else None
        out.append((x, y, weights))
    return out


@pytest.mark.parametrize("imputed", [False, True])
def test_shared_steps_train_every_network_as_its_own_compiled_steps_would_and_trace_once(imputed):
    """Bit for bit: the same losses (as Keras' loss tracker holds them), weights and dropout states as
    `train_on_batch` and `test_on_batch`, for two networks of different seeds through one traced graph.
    Dropout, masked targets (imputed points), a weight penalty and a learning rate changed mid-way (what
    ReduceLROnPlateau does) included."""
    from forecasting.model.shared_steps import SharedSteps
    from forecasting.model.training import OwnSteps

    config = tiny_config(dropout=0.2, layers=2, l2=1e-3, base="seasonal", season=4)
    data = batches(config, 6, imputed)
    steps = SharedSteps(config.build())
    for seed in (3, 11):
        own, shared = replace(config, seed=seed).build(), replace(config, seed=seed).build()
        own.optimizer.build(own.trainable_variables)
        keras_steps = OwnSteps(own)
        for index, (x, y, weights) in enumerate(data):
            if index == 3:
                own.optimizer.learning_rate = shared.optimizer.learning_rate = 0.005
            assert steps.train(shared, x, y, weights) == keras_steps.train(own, x, y, weights)
        x, y, weights = data[0]
        assert steps.test(shared, x, y, weights) == keras_steps.test(own, x, y, weights)
        for mine, theirs in zip(shared.variables, own.variables, strict=True):  # seed states included
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert steps.tracing_counts() == (1, 1)


def test_an_ensemble_side_by_side_traces_one_training_and_one_test_step(monkeypatch):
    """Each member's network traced its own steps before (about 1 s a member on two cores)."""
    import forecasting.model.training as training

    made = []

    class Recorded(training.SharedSteps):
        def __init__(self, template):
            super().__init__(template)
            made.append(self)

    monkeypatch.setattr(training, "SharedSteps", Recorded)
    config = tiny_config(members=3, dropout=0.2, base="seasonal", season=4)
    fit_model(config, wave_source(noise=0.1), max_epochs=3, patience=2)
    assert len(made) == 1 and made[0].tracing_counts() == (1, 1)


def test_optimizers_it_does_not_reproduce_keep_their_own_steps():
    from forecasting.model.shared_steps import SharedSteps, supports

    network = tiny_config().build()
    assert supports(network)
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=10, decay_rate=0.9)
    for optimizer in (keras.optimizers.Adam(amsgrad=True), keras.optimizers.Adam(clipnorm=1.0),
                      keras.optimizers.Adam(learning_rate=schedule), keras.optimizers.SGD()):
        other = tiny_config().build()
        other.compile(optimizer=optimizer, loss=other.loss)
        assert not supports(other)
        with pytest.raises(ValueError, match="optimizer"):
            SharedSteps(other)
        with pytest.raises(ValueError, match="optimizer"):
            SharedSteps(network).train(other, *batches(tiny_config(), 1, False)[0])
    with pytest.raises(ValueError, match="architecture"):
        SharedSteps(network).train(tiny_config(units=4).build(), *batches(tiny_config(), 1, False)[0])

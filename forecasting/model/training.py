"""Training, prediction and calibration of a forecaster on a WindowSource (no Prefect, no stores)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from forecasting.columns import TIMESTAMP
from forecasting.errors import PipelineError
from forecasting.model.config import ModelConfig
from forecasting.model.devices import (
    distribution_scope,
    gpu_devices,
    members_side_by_side,
    precision_policy,
    replicas,
    seed_everything,
)
from forecasting.model.shared_steps import SharedSteps, supports
from forecasting.windows import TRAIN, VALIDATION, WindowSource


def fit_model(config: ModelConfig, source: WindowSource, *, max_epochs: int, patience: int,
              lr_patience: int = 2, min_improvement: float = 0.0, initial_weights: list[np.ndarray] | None = None,
              log: Any = None, devices: list[str] | None = None, mixed_precision: bool = False,
              max_windows: int | None = None, priority: np.ndarray | None = None) -> tuple[Any, dict[str, Any]]:
    """Train on the source's training windows, streamed in shuffled batches, with early stopping on its
    validation windows (at most the config's `max_val_windows`, one fixed seeded sample: scoring every
    validation window each epoch cost more than the epoch's training on 1,000 series); returns (model,
    facts). Best validation weights are restored. Training stops after `patience` epochs without progress,
    an epoch that lowers the validation loss by at least `min_improvement` (a fraction) below the last
    progress (see stall_stopping).

    An ensemble (config.members > 1) trains each member from its own seed (weights, dropout and window
    order) with its own early stopping, and returns the model that averages them. On the CPU the members
    train side by side, each on its own thread and network, through one traced training step (see
    members_side_by_side, SharedSteps); elsewhere one after another on one compiled network (MemberTrainer),
    so the training graph is traced once there too. Either way a member ends where a network of its seed
    trained alone would.

    devices: where to train; several are mirrored (data-parallel), None means every visible GPU.
    mixed_precision: float16 compute, for GPUs with tensor cores.
    max_windows, priority: training windows per epoch (default: the config's cap) and a mask of windows
    that go into that sample first (see WindowDataset).
    """
    from forecasting.model.network import ensemble_members  # Keras: imported when training starts

    seed_everything(config.seed)
    devices = gpu_devices() if devices is None else devices
    with precision_policy(mixed_precision), distribution_scope(devices):
        model = config.build()
        if initial_weights is not None:
            model.set_weights(initial_weights)
        members = ensemble_members(model)
        side_by_side = len(members) > 1 and members_side_by_side(devices)
        if len(members) == 1:
            trainers = [None]  # the network trains itself
        elif side_by_side:
            trainers = [MemberTrainer(config) for _ in members]
        else:
            trainers = [MemberTrainer(config)] * len(members)
    seeds = config.member_seeds()
    started = time.perf_counter()
    stop = threading.Event() if side_by_side else None  # once set, the members stop at their next batch
    # Side by side, each member's network would trace its own steps, one after another (tracing holds the
    # interpreter lock); shared steps trace once for all of them (see forecasting/model/shared_steps.py).
    steps = SharedSteps(trainers[0].network) if side_by_side and supports(trainers[0].network) else None

    def train(number: int) -> dict[str, Any]:
        member, seed, trainer = members[number - 1], seeds[number - 1], trainers[number - 1]
        if log is not None and len(members) > 1 and not side_by_side:
            log.info("Training network %d of %d (seed %d)", number, len(members), seed)
        # No process-wide reseeding between members: a member's randomness is its own (initialisers and dropout
        # seeded from its seed, windows in the order its seed draws), and a new TensorFlow global seed makes
        # every compiled function trace again (about 1 s a member on two cores).
        with trainer.training(member) if trainer is not None else nullcontext(member) as network:
            return _fit_member(network, seed, config, source, max_epochs=max_epochs, patience=patience,
                               lr_patience=lr_patience, min_improvement=min_improvement, log=log,
                               max_windows=max_windows, priority=priority, distributed=replicas(devices) > 1,
                               label=f"network {number}: " if side_by_side else "", stop=stop, steps=steps)

    numbers = range(1, len(members) + 1)
    if side_by_side:
        if log is not None:
            log.info("Training %d networks side by side (seeds %s), one thread each",
                     len(members), ", ".join(map(str, seeds)))
        runs = side_by_side_runs(train, numbers, stop)
    else:
        runs = [train(number) for number in numbers]
    seconds = time.perf_counter() - started
    facts = {**(_member_facts(runs[0]) if len(runs) == 1 else _ensemble_facts(model, config, source, runs)),
             "devices": replicas(devices), "mixed_precision": mixed_precision, "train_seconds": round(seconds, 3),
             "train_windows_per_s": round(sum(run["windows"] for run in runs) / max(seconds, 1e-9), 1)}
    return model, facts


def side_by_side_runs(train: Callable[[int], dict[str, Any]], numbers: Iterable[int],
                      stop: threading.Event) -> list[dict[str, Any]]:
    """`train(number)` for every number at once, each on its own thread; their results in order. Where one
    fails, or the caller is interrupted (Ctrl-C), `stop` is set so the others stop at their next batch, and
    the error is raised once they have: left to train on, they would hold the process for minutes after
    the run has failed."""
    numbers = list(numbers)
    with ThreadPoolExecutor(max(len(numbers), 1), thread_name_prefix="ensemble-member") as pool:
        futures = [pool.submit(train, number) for number in numbers]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()  # a failed member's error, before waiting on the others
            return [future.result() for future in futures]
        except BaseException:
            stop.set()
            raise


class MemberTrainer:
    """One compiled network of an ensemble's architecture that trains members: `training(member)` loads the
    member's variables (its weights and its dropout's random state) and a fresh optimizer into the network,
    yields it to be fitted, and stores the trained variables back in the member. On a GPU one trainer
    trains every member in turn; on the CPU each member has its own, all training at once through one
    traced step (SharedSteps).

    Why: Keras traces a model's training step the first time it fits it. Every member fitting itself traced
    the same graph again: about 2.5 s each on the 2-core CPU, a third of a 532-window daily series' whole
    training. Training the members side by side as one model was no cheaper: the graph three times the size
    took four times as long to trace (10.2 s against 2.3 s)."""

    def __init__(self, config: ModelConfig):
        self.network = replace(config, members=1).build()
        self.network.optimizer.build(self.network.trainable_variables)
        self.fresh_optimizer = [variable.numpy() for variable in self.network.optimizer.variables]

    @contextmanager
    def training(self, member: Any) -> Iterator[Any]:
        _copy_variables(member, self.network)
        for variable, value in zip(self.network.optimizer.variables, self.fresh_optimizer, strict=True):
            variable.assign(value)  # step count, moments and the learning rate a plateau may have halved
        yield self.network
        _copy_variables(self.network, member)


def _copy_variables(source: Any, target: Any) -> None:
    """Every weight and random state of `source` into the same-architecture model `target`."""
    theirs, mine = _network_variables(source), _network_variables(target)
    if [v.shape for v in theirs] != [v.shape for v in mine]:
        raise ValueError(f"{source.name} and {target.name} do not share an architecture")
    for value, variable in zip(theirs, mine):
        variable.assign(value)


def _network_variables(model: Any) -> list[Any]:
    """A network's layer variables: weights and dropout's seed states (not metrics or the optimizer's)."""
    return [variable for layer in model.layers for variable in layer.variables]


def _fit_member(member: Any, seed: int, config: ModelConfig, source: WindowSource, *, max_epochs: int,
                patience: int, lr_patience: int, min_improvement: float, log: Any, max_windows: int | None,
                priority: np.ndarray | None, distributed: bool = False, label: str = "",
                stop: threading.Event | None = None, steps: Any = None) -> dict[str, Any]:
    """Train one network (in place), its windows in the order `seed` draws; returns its validation-loss
    history and how many windows it trained on. `label` starts its epoch log lines (which network);
    training ends after the batch during which `stop` is set; `steps`: compiled steps shared with other
    networks (SharedSteps; None: the network's own)."""
    import keras

    from forecasting.model.dataset import WindowDataset  # Keras: imported when training starts

    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        stall_stopping(patience, min_improvement),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=lr_patience, min_lr=1e-5),
    ]
    if log is not None:
        callbacks.append(epoch_logger(log, max_epochs, label))
    if stop is not None:
        callbacks.append(stop_when_set(stop))
    train = WindowDataset(source, TRAIN, config.batch_size, shuffle=True, seed=seed,
                          max_windows=max_windows or config.max_windows_per_epoch, priority=priority)
    if not train.per_pass:
        raise PipelineError("no training windows: every series is shorter than lookback + horizon "
                            f"({config.lookback} + {config.horizon}) before the validation period")
    validation = stopping_windows(source, config)
    if distributed:
        # shuffle=False: the dataset orders each epoch itself, from its seed (see WindowDataset for why).
        history = member.fit(train, steps_per_epoch=train.batches_per_epoch, shuffle=False,
                             validation_data=validation, epochs=max_epochs, verbose=0, callbacks=callbacks).history
    else:
        history = fit_in_batches(member, train, validation, max_epochs, callbacks, steps)
    val_losses = np.asarray(history.get("val_loss", [np.nan]), dtype="float64")
    return {"seed": seed, "val_losses": val_losses, "windows": train.per_pass * len(val_losses),
            "diverged": bool(not np.all(np.isfinite(history.get("loss", [np.nan]))))}


def fit_in_batches(model: Any, train: Any, validation: Any, max_epochs: int, callbacks: list[Any],
                   steps: Any = None) -> dict[str, list[float]]:
    """What `model.fit(train, steps_per_epoch=..., validation_data=validation, epochs=max_epochs)` does on one
    device, batch by batch with `train_on_batch` and `test_on_batch` (or `steps`, a SharedSteps that computes
    the same for every network of the architecture); returns the history (loss and val_loss per epoch).

    Why: `fit` feeds a Python dataset through a tf.data pipeline of worker threads, which cost as much as
    the training step itself on the small windows a daily series gives (2-core CPU, two LSTM(32) layers,
    batch 128: 25 ms a step through `fit`, 12 ms through `train_on_batch`). The same compiled step sees
    the same batches in the same order, so the weights are those `fit` would train. The epoch's losses are
    what `fit` logs (EpochMean). Distributed training keeps `fit`, which splits each batch across the
    replicas.
    """
    import keras

    callbacks = keras.callbacks.CallbackList(callbacks, model=model, epochs=max_epochs,
                                             steps=train.batches_per_epoch)
    steps = steps or OwnSteps(model)
    history: dict[str, list[float]] = {"loss": [], "val_loss": []}
    model.stop_training = False
    # Built here, Adam's moments exist before the training step's first trace; created by it, they made
    # TensorFlow trace the step a second time (first step 1.2-1.5 s -> 0.7 s, daily network, two cores).
    # (An ensemble's MemberTrainer builds them itself.)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    callbacks.on_train_begin()
    logs: dict[str, float] = {}
    for epoch in range(max_epochs):
        callbacks.on_epoch_begin(epoch)
        loss = EpochMean()
        for step in range(train.batches_per_epoch):
            x, y, *weights = train[epoch * train.batches_per_epoch + step]
            callbacks.on_train_batch_begin(step)
            loss.add(*steps.train(model, x, y, weights[0] if weights else None))
            callbacks.on_train_batch_end(step, {"loss": loss.result()})
            if model.stop_training:  # TerminateOnNaN, or a stop asked for (stop_when_set)
                break
        val_loss = EpochMean()
        for index in range(validation.num_batches):
            x, y, *weights = validation[index]
            val_loss.add(*steps.test(model, x, y, weights[0] if weights else None))
        logs = {"loss": loss.result(), "val_loss": val_loss.result()}
        history["loss"].append(logs["loss"])
        history["val_loss"].append(logs["val_loss"])
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_weights)
    callbacks.on_train_end(logs)
    return history


class OwnSteps:
    """A network's own compiled steps, `train_on_batch` and `test_on_batch`, each returning the batch's loss
    total and count from Keras' loss tracker (which both reset for each batch)."""

    def __init__(self, model: Any):
        self.tracker = next(metric for metric in model.metrics if metric.name == "loss")

    def train(self, model: Any, x: np.ndarray, y: np.ndarray,
              weights: np.ndarray | None) -> tuple[np.float32, np.float32]:
        model.train_on_batch(x, y, sample_weight=weights)
        return self._tracked()

    def test(self, model: Any, x: np.ndarray, y: np.ndarray,
             weights: np.ndarray | None) -> tuple[np.float32, np.float32]:
        model.test_on_batch(x, y, sample_weight=weights)
        return self._tracked()

    def _tracked(self) -> tuple[np.float32, np.float32]:
        return np.float32(self.tracker.total.numpy()), np.float32(self.tracker.count.numpy())


class EpochMean:
    """The epoch's loss as `fit` logs it: Keras' loss tracker (a `Mean` of batch losses weighted by batch
    size, in float32) summed over the epoch's batches. `train_on_batch` resets the tracker for each batch;
    its total and count after the batch are added here as the tracker would have added them. (The mean may
    differ from fit's in the last bit: fit divides in its compiled graph.)"""

    def __init__(self):
        self.total, self.count = np.float32(0.0), np.float32(0.0)

    def add(self, total: np.float32, count: np.float32) -> None:
        self.total = np.float32(self.total + total)
        self.count = np.float32(self.count + count)

    def result(self) -> float:
        return float(self.total / self.count) if self.count else float("nan")


# The most validation windows early stopping scores in one batch: the default sample (2,048) fits whole.
MAX_VALIDATION_BATCH = 4096


def stopping_windows(source: WindowSource, config: ModelConfig) -> Any:
    """The validation windows early stopping scores each epoch: at most `max_val_windows`, one fixed seeded
    sample (the same for every member of an ensemble, and for the ensemble's own validation loss), in one
    batch where that bound is set and at most MAX_VALIDATION_BATCH (a larger bound a user sets is scored in
    batches of that size: memory).

    Why one batch: TensorFlow traces the test step once per batch shape, and batches of 512 left a shorter
    last one on almost every run (571 windows: 512 and 59), so each network traced its test step twice,
    0.4-0.6 s each on two cores (three times over for an ensemble). Only the sum's rounding moves: the
    validation loss in the last bit of float32."""
    from forecasting.model.dataset import WindowDataset  # Keras: imported when training starts

    batch_size = min(config.max_val_windows, MAX_VALIDATION_BATCH) if config.max_val_windows else 4 * config.batch_size
    return WindowDataset(source, VALIDATION, batch_size, shuffle=False, seed=config.seed,
                         max_windows=config.max_val_windows)


def _member_facts(run: dict[str, Any]) -> dict[str, Any]:
    """epochs_run, best_epoch, val_loss (of the restored best weights) and diverged, for one network."""
    val_losses = run["val_losses"]
    finite = np.isfinite(val_losses)
    best = int(np.nanargmin(np.where(finite, val_losses, np.inf))) if finite.any() else 0
    return {"epochs_run": len(val_losses), "best_epoch": best + 1,
            "val_loss": float(val_losses[best]) if finite.any() else float("nan"), "diverged": run["diverged"]}


def _ensemble_facts(model: Any, config: ModelConfig, source: WindowSource, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """An ensemble's facts: epochs summed over members (the work done), the best epoch of none (each member
    has its own, listed under `members`), the averaged model's own validation loss on the same validation
    sample its members stopped on, and diverged where any member did."""
    from forecasting.model.network import PinballLoss

    per_member = [{"seed": run["seed"], **_member_facts(run)} for run in runs]
    loss = PinballLoss(config.quantiles)
    validation = stopping_windows(source, config)
    total, count = 0.0, 0.0
    for index in range(validation.num_batches):
        x, y, *weights = validation[index]  # weights (imputed targets: 0) only where the data has imputed points
        losses = np.asarray(loss.call(y, forward(model, x)), dtype="float64")  # [batch, horizon]
        weights = np.asarray(weights[0], dtype="float64") if weights else np.ones_like(losses)
        total, count = total + float(np.sum(losses * weights)), count + float(np.sum(weights))
    return {"epochs_run": sum(m["epochs_run"] for m in per_member), "best_epoch": None,
            "val_loss": total / count if count else float("nan"),
            "diverged": any(m["diverged"] for m in per_member), "members": per_member}


def stall_stopping(patience: int, min_improvement: float) -> Any:
    """A Keras callback: early stopping on the validation loss that stops once `patience` epochs in a row
    made no progress, progress being a loss at least `min_improvement` (a fraction) below the loss of the
    last epoch that made progress, and restores the best weights seen (the lowest loss, progress or not).

    Why a relative threshold: Keras' EarlyStopping counts any decrease as progress (or one by an absolute
    min_delta, meaningless across series scales), so a network whose validation loss creeps down by 0.1%
    an epoch trains on for as long as it creeps. On the development panel, a 0.5% threshold cut the
    training's CPU seconds by 7% (16% on M4 weekly) at the same MASE to the third decimal; 1% with patience
    3 cut 26% but lost 0.006 MASE (benchmarks/results/dev_panel.md).
    With min_improvement 0 it stops as EarlyStopping(patience=patience, restore_best_weights=True) does."""
    import keras

    class StallStopping(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.best, self.best_weights, self.progress, self.wait = np.inf, None, np.inf, 0

        def on_epoch_end(self, epoch, logs=None):
            current = float((logs or {}).get("val_loss", np.nan))
            if self.best_weights is None or current < self.best:
                self.best, self.best_weights = current, self.model.get_weights()
            if current < self.progress * (1.0 - min_improvement):
                self.progress, self.wait = current, 0
                return
            self.wait += 1  # no progress: a higher loss, too small a decrease, or not a number
            if self.wait >= patience and epoch > 0:
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return StallStopping()


def stop_when_set(stop: threading.Event) -> Any:
    """A Keras callback that ends training after the batch during which `stop` is set (Keras' own stop
    flag: the epoch ends there, and the best weights seen are restored as after early stopping)."""
    import keras

    class StopWhenSet(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if stop.is_set():
                self.model.stop_training = True

    return StopWhenSet()


def epoch_logger(log: Any, max_epochs: int, label: str = "") -> Any:
    """A Keras callback that reports progress to the run log, one line per epoch, starting with `label`."""
    import keras

    class EpochLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            log.info("%sepoch %d/%d: loss %.4f, val_loss %.4f", label, epoch + 1, max_epochs,
                     logs.get("loss", np.nan), logs.get("val_loss", np.nan))

    return EpochLogger()


def predict_quantiles(model: Any, x: np.ndarray, correction: list[float] | np.ndarray | None = None,
                      batch_size: int = 4096, base_only: bool = False) -> np.ndarray:
    """[n, horizon, 3] scaled (lower, median, upper): sorted, then widened by the calibration correction.

    base_only: the median is the model's seasonal base alone (the forecast its network corrects), the
    interval the model's own (calibrated) one moved onto it; for series where the correction did not pay.
    """
    chunks = [forward(model, x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    raw = np.concatenate(chunks).astype("float64") if chunks else np.zeros((0, *model.output_shape[1:]))
    out = np.sort(raw, axis=-1)  # quantile crossing cannot survive
    if correction is not None:
        c = np.asarray(correction, dtype="float64")[None, :]
        out[..., 0] -= c
        out[..., 2] += c
        out[..., 0] = np.minimum(out[..., 0], out[..., 1])
        out[..., 2] = np.maximum(out[..., 2], out[..., 1])
    if base_only:
        out = out - out[..., 1:2] + seasonal_base_forecast(model, x, batch_size)[..., None]
    return out


def forward(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's output on one batch of windows, as numpy, through its compiled predict function.

    Why not `model(x)`: called eagerly, a recurrent layer runs its time loop op by op from Python, 0.4 s for
    any batch of a three-network ensemble on two cores, and a run calls the model half a dozen times after
    training (calibration, promotion, explanations, the forecast). The compiled function is traced once
    for any batch size (see _trace_for_any_batch_size) and takes milliseconds per call. Not `model.predict`,
    whose dataset machinery re-traces for each new input size."""
    _trace_for_any_batch_size(model, x)
    return np.asarray(model.predict_on_batch(x))


def _trace_for_any_batch_size(model: Any, x: np.ndarray) -> None:
    """On TensorFlow, trace a model's predict function once for windows of x's shape in batches of any size,
    before its first call.

    Why: left to itself, TensorFlow traces the function for the first batch size it sees and again, relaxed
    to any size, for the second (about 0.6 s each for a three-network ensemble on two cores), and a run's
    calls come in several sizes (the stopping sample's batches, the holdout, the explanations, one window a
    series to forecast). Traced once with the batch dimension unknown, the same graph serves every size.
    Other backends trace (or not) their own way."""
    import keras

    if keras.backend.backend() != "tensorflow" or getattr(model, "predict_function", None) is not None:
        return
    import tensorflow as tf

    model.make_predict_function()
    # The argument's structure is predict_on_batch's: a list of one batch, the batch a tuple of the inputs.
    model.predict_function.get_concrete_function([(tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype)),)])


def seasonal_base_forecast(model: Any, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """[n, horizon] scaled: the model's seasonal base alone (the forecast its network corrects)."""
    import keras

    from forecasting.model.network import seasonal_base_of  # Keras, like the model it reads

    layer = seasonal_base_of(model)
    if layer is None:
        raise ValueError("base_only needs a model built with the seasonal base")
    chunks = [keras.ops.convert_to_numpy(layer(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    return np.concatenate(chunks).astype("float64") if chunks else np.zeros((0, model.output_shape[1]))


def calibrate(model: Any, source: WindowSource, level: float) -> dict[str, Any]:
    """Conformalised quantile regression on the validation windows: per-step interval correction (scaled).

    Score E = max(lower - y, y - upper); the correction is E's `level` quantile (with the finite-sample
    adjustment), so widening each side by it covers `level` of held-out targets. Negative means narrower.
    """
    scores, bands, targets = [], [], []
    for x, y, weights in source.weighted_chunks(VALIDATION):
        predicted = predict_quantiles(model, x)
        score = np.maximum(predicted[..., 0] - y, y - predicted[..., 2])  # [n, horizon]
        scores.append(score if weights is None else np.where(weights > 0, score, np.nan))  # imputed: no say
        bands.append(predicted[..., [0, 2]])
        targets.append(y)
    if not scores:
        return {"level": level, "correction": [0.0] * source.horizon, "val_coverage": float("nan")}
    scores, bands, y = np.concatenate(scores), np.concatenate(bands), np.concatenate(targets)
    n = np.maximum(np.sum(np.isfinite(scores), axis=0), 1)  # observed targets per step
    correction = np.array([np.nanquantile(scores[:, step], min(1.0, np.ceil((n[step] + 1) * level) / n[step]))
                           if np.isfinite(scores[:, step]).any() else 0.0 for step in range(scores.shape[1])])
    inside = (y >= bands[..., 0] - correction) & (y <= bands[..., 1] + correction)
    covered = np.mean(inside[np.isfinite(scores)])
    return {"level": level, "correction": correction.astype(float).tolist(), "val_coverage": float(covered)}


def unseen_windows(series: pd.DataFrame, starts: np.ndarray, config: ModelConfig, cutoff: str) -> np.ndarray:
    """Which windows at `starts` have targets past `cutoff` (a champion's training cutoff): new to it."""
    stamps = series[TIMESTAMP].dt.tz_convert(None).to_numpy()  # datetime64, UTC
    ends = stamps[starts + config.lookback + config.horizon - 1]
    return ends > np.datetime64(pd.Timestamp(cutoff).tz_convert(None))

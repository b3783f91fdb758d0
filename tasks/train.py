"""Stage 5, training: fit a challenger on this run's windows, calibrate it, and let it earn promotion.

- Warm start: when the champion has the same architecture and its last full retrain is less than
  `full_retrain_days` old, the challenger starts from the champion's weights and trains at most
  `warm_epochs`; otherwise it trains from scratch (a full retrain).
- Early stopping on validation loss (best weights restored), learning-rate halving on plateaus, and a
  stop on NaN loss.
- Calibration: the quantile head's interval is conformalised on the validation windows (CQR): per step,
  the widening (or narrowing) that makes `interval_level` of validation targets fall inside.
- Promotion: challenger, champion and seasonal naive are scored (MASE) on the latest holdout windows; the
  challenger becomes champion only if it beats both. Every version is registered either way, with its
  scores and the decision.
Runs on the GPU when one is visible (Keras then uses the cuDNN kernel), on the CPU otherwise, and logs which.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task

from tasks import storage
from forecasting.columns import SERIES_ID, TIMESTAMP
from forecasting.errors import PipelineError
from forecasting.features import level_window
from forecasting.frequency import defaults_for
from forecasting.scaling import Scalers
from forecasting.settings import Settings
from forecasting.smoothing import CHANNELS as SMOOTHING_CHANNELS
from tasks.windows import TRAIN, VALIDATION, WindowSource


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a model's shape and training; saved with each version."""

    lookback: int
    horizon: int
    features: tuple[str, ...]
    quantiles: tuple[float, ...]
    cell: str = "lstm"
    units: int = 32
    layers: int = 2
    dropout: float = 0.2
    l1: float = 0.0
    l2: float = 0.0
    level_window: int = 7
    learning_rate: float = 1e-3
    batch_size: int = 128
    seed: int = 42
    max_windows_per_epoch: int | None = None
    max_val_windows: int | None = None
    # Versions saved before the seasonal base existed have neither key: they added the level back.
    base: str = "level"
    season: int = 1
    # Versions saved before these existed read the whole window with the network and had one season.
    long_season: int = 0
    recurrent_lookback: int | None = None

    ARCHITECTURE = ("lookback", "horizon", "features", "quantiles", "cell", "units", "layers", "level_window",
                    "base", "season", "long_season", "recurrent_lookback")

    @classmethod
    def from_settings(cls, settings: Settings, *, lookback: int, horizon: int, features: list[str],
                      frequency: str) -> "ModelConfig":
        defaults = defaults_for(frequency)
        recurrent = min(lookback, settings.recurrent_lookback or defaults.recurrent_lookback or lookback)
        return cls(lookback=lookback, horizon=horizon, features=tuple(features),
                   quantiles=quantiles_for(settings.interval_level), cell=settings.cell, units=settings.units,
                   layers=settings.layers, dropout=settings.dropout, l1=settings.l1, l2=settings.l2,
                   level_window=level_window(frequency, lookback), learning_rate=settings.learning_rate,
                   batch_size=settings.batch_size, seed=settings.seed,
                   max_windows_per_epoch=settings.max_windows_per_epoch, max_val_windows=settings.max_val_windows,
                   base=settings.model_base, season=defaults.season, long_season=defaults.long_season,
                   recurrent_lookback=recurrent)

    def architecture(self) -> dict[str, Any]:
        return {name: _plain(getattr(self, name)) for name in self.ARCHITECTURE}

    def as_dict(self) -> dict[str, Any]:
        return {name: _plain(value) for name, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "ModelConfig":
        known = {k: v for k, v in payload.items() if k in cls.__dataclass_fields__}
        known["features"], known["quantiles"] = tuple(known["features"]), tuple(known["quantiles"])
        return cls(**known)

    def build(self) -> Any:
        from tasks.model import build_forecaster

        return build_forecaster(lookback=self.lookback, horizon=self.horizon, n_features=len(self.features),
                                quantiles=self.quantiles, cell=self.cell, units=self.units, layers=self.layers,
                                dropout=self.dropout, l1=self.l1, l2=self.l2, learning_rate=self.learning_rate,
                                level_window=self.level_window, seed=self.seed, base=self.base,
                                season=self.season, long_season=self.long_season,
                                recurrent_lookback=self.recurrent_lookback,
                                smoothing_channels=self.smoothing_channels())

    def smoothing_channels(self) -> list[int] | None:
        """Positions of the smoothing statistics among the input channels; None where the features lack them
        (versions saved before they existed)."""
        if not set(SMOOTHING_CHANNELS) <= set(self.features):
            return None
        return [self.features.index(name) for name in SMOOTHING_CHANNELS]


def quantiles_for(level: float) -> tuple[float, float, float]:
    """The (lower, median, upper) quantiles of a central interval with coverage `level`."""
    tail = round((1.0 - level) / 2.0, 6)
    return (tail, 0.5, round(1.0 - tail, 6))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def describe_device() -> str:
    """Which accelerator Keras will train on, in words, for the log and the model's metadata."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return f"GPU x{len(gpus)} (TensorFlow, cuDNN kernel)" if gpus else "CPU (TensorFlow)"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"GPU {torch.cuda.get_device_name(0)} (PyTorch, cuDNN kernel)"
        return "CPU (PyTorch)"
    if backend == "jax":
        import jax

        return f"{'/'.join(sorted({d.platform for d in jax.devices()})).upper()} (JAX)"
    return f"{backend} backend"


def seed_everything(seed: int) -> None:
    """Same seed, same data, same CPU: same weights and forecasts (TensorFlow op determinism on too)."""
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def gpu_devices() -> list[str]:
    """Names of the GPUs the TensorFlow backend sees (none under other backends or on a CPU machine)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return []
    import tensorflow as tf

    return [device.name for device in tf.config.list_logical_devices("GPU")]


def distribution_scope(devices: list[str]) -> Any:
    """`tf.distribute.MirroredStrategy` over `devices` when there are several (TensorFlow backend), else a
    no-op: with one device Keras places the model itself."""
    import keras

    if len(devices) < 2 or keras.backend.backend() != "tensorflow":
        return contextlib.nullcontext()
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(devices).scope()


@contextlib.contextmanager
def precision_policy(mixed: bool) -> Any:
    """Float16 compute with float32 weights for the duration of a build (the output layers stay float32)."""
    import keras

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def fit_model(config: ModelConfig, source: WindowSource, *, max_epochs: int, patience: int,
              lr_patience: int = 2, initial_weights: list[np.ndarray] | None = None, log: Any = None,
              devices: list[str] | None = None, mixed_precision: bool = False,
              max_windows: int | None = None, priority: np.ndarray | None = None) -> tuple[Any, dict[str, Any]]:
    """Train on the source's training windows, streamed in shuffled batches, with early stopping on its
    validation windows (at most the config's `max_val_windows`, one fixed seeded sample: scoring every
    validation window each epoch cost more than the epoch's training on 1,000 series); returns (model,
    facts). Best validation weights are restored.

    devices: where to train; several are mirrored (data-parallel), None means every visible GPU.
    mixed_precision: float16 compute, for GPUs with tensor cores.
    max_windows, priority: training windows per epoch (default: the config's cap) and a mask of windows
    that go into that sample first (see WindowDataset).
    """
    import keras

    from tasks.window_dataset import WindowDataset

    seed_everything(config.seed)
    devices = gpu_devices() if devices is None else devices
    with precision_policy(mixed_precision), distribution_scope(devices):
        model = config.build()
        if initial_weights is not None:
            model.set_weights(initial_weights)
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=lr_patience, min_lr=1e-5),
    ]
    if log is not None:
        callbacks.append(epoch_logger(log, max_epochs))
    started = time.perf_counter()
    train = WindowDataset(source, TRAIN, config.batch_size, shuffle=True, seed=config.seed,
                          max_windows=max_windows or config.max_windows_per_epoch, priority=priority)
    if not train.per_pass:
        raise PipelineError("no training windows: every series is shorter than lookback + horizon "
                            f"({config.lookback} + {config.horizon}) before the validation period")
    # shuffle=False: the dataset orders each epoch itself, from its seed (see WindowDataset for why).
    history = model.fit(train, steps_per_epoch=train.batches_per_epoch, shuffle=False,
                        validation_data=WindowDataset(source, VALIDATION, 4 * config.batch_size, shuffle=False,
                                                      seed=config.seed, max_windows=config.max_val_windows),
                        epochs=max_epochs, verbose=0, callbacks=callbacks)
    seconds = time.perf_counter() - started
    val_losses = np.asarray(history.history.get("val_loss", [np.nan]), dtype="float64")
    finite = np.isfinite(val_losses)
    best = int(np.nanargmin(np.where(finite, val_losses, np.inf))) if finite.any() else 0
    facts = {"epochs_run": len(val_losses), "best_epoch": best + 1,
             "val_loss": float(val_losses[best]) if finite.any() else float("nan"),
             "diverged": bool(not np.all(np.isfinite(history.history.get("loss", [np.nan])))),
             "devices": len(devices) or 1, "mixed_precision": mixed_precision, "train_seconds": round(seconds, 3),
             "train_windows_per_s": round(train.per_pass * len(val_losses) / max(seconds, 1e-9), 1)}
    return model, facts


def epoch_logger(log: Any, max_epochs: int) -> Any:
    """A Keras callback that reports progress to the run log, one line per epoch."""
    import keras

    class EpochLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            log.info("epoch %d/%d: loss %.4f, val_loss %.4f", epoch + 1, max_epochs, logs.get("loss", np.nan),
                     logs.get("val_loss", np.nan))

    return EpochLogger()


def predict_quantiles(model: Any, x: np.ndarray, correction: list[float] | np.ndarray | None = None,
                      batch_size: int = 4096, base_only: bool = False) -> np.ndarray:
    """[n, horizon, 3] scaled (lower, median, upper): sorted, then widened by the calibration correction.

    base_only: the median is the model's seasonal base alone (the forecast its network corrects), the
    interval the model's own (calibrated) one moved onto it; for series where the correction did not pay.
    """
    import keras

    # Direct calls in fixed-size chunks: `model.predict` re-traces a graph for every new input size.
    chunks = [keras.ops.convert_to_numpy(model(x[i:i + batch_size], training=False))
              for i in range(0, len(x), batch_size)]
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


def seasonal_base_forecast(model: Any, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """[n, horizon] scaled: the model's seasonal base alone (the forecast its network corrects)."""
    import keras

    from tasks.model import seasonal_base_of

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


def code_version() -> str:
    try:
        return package_metadata.version("lstm-forecast")
    except package_metadata.PackageNotFoundError:
        return "unknown"


def new_version_name(as_of: pd.Timestamp, run_id: str | None) -> str:
    """`<as-of, compact UTC>-<8 hex of the run id>`: sortable by data date, unique per run."""
    suffix = (run_id or uuid.uuid4().hex).replace("-", "")[:8]
    return f"{as_of.tz_convert('UTC'):%Y%m%dT%H%M%SZ}-{suffix}"


# Settings that change what training produces besides the model config (which is hashed whole).
_TRAINING_SETTINGS = ("max_epochs", "patience", "lr_patience", "full_retrain_days", "warm_epochs",
                      "warm_windows_per_epoch", "holdout_windows", "interval_level", "mixed_precision")
REUSE_LOOKBACK_VERSIONS = 50


def training_fingerprint(folder: Any, config: ModelConfig, settings: Settings) -> str:
    """SHA-256 of what a training run consumes: the windows' bytes, the model config, the training settings.

    Two runs with the same fingerprint would train the same model (training is deterministic on a CPU),
    so a rerun of an as-of (a retry, a backfill, a restart after a crash) reuses the model instead of
    training a new one on top of it: reruns then publish identical forecasts.
    """
    import hashlib
    import json

    digest = hashlib.sha256()
    for name in ("series.parquet", "index.parquet", "scalers.json"):
        digest.update(storage.content_hash(folder / name).encode())
    payload = {"config": config.as_dict(), **{name: getattr(settings, name) for name in _TRAINING_SETTINGS},
               "code_version": code_version()}
    digest.update(json.dumps(payload, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def find_trained(models_dir: Any, fingerprint: str) -> dict[str, Any] | None:
    """Metadata of the newest registered version trained from exactly this input (see training_fingerprint)."""
    from tasks.registry import METADATA_FILE, read_index, version_dir

    for version in reversed(read_index(models_dir)["versions"][-REUSE_LOOKBACK_VERSIONS:]):
        metadata = storage.read_json(version_dir(models_dir, version) / METADATA_FILE, default={})
        if metadata.get("training_fingerprint") == fingerprint:
            return metadata
    return None


def reused_result(models_dir: Any, metadata: dict[str, Any], started: float, log: Any) -> dict[str, Any]:
    """The train task's summary for a version trained earlier on the same input."""
    from tasks.registry import read_index, version_dir

    version = metadata["version"]
    champion = read_index(models_dir)["champion"]
    log.info("Model %s was already trained on exactly this data and configuration (a rerun of this as-of); "
             "reusing it instead of training again. Champion: %s", version, champion or "none")
    return {"model_version": version, "model_path": str(version_dir(models_dir, version)),
            "device": metadata.get("device"), "promoted": bool(metadata.get("promoted")),
            "champion_version": champion, "warm_start": bool(metadata.get("warm_start")),
            "decision": metadata.get("decision", ""), "holdout": metadata["holdout"],
            "interval_val_coverage": metadata["interval"]["val_coverage"], "reused": True,
            **{k: metadata.get(k) for k in ("epochs_run", "best_epoch", "val_loss", "train_seconds")},
            "duration_s": round(time.perf_counter() - started, 3)}


def untrained_result(settings: Settings, windows: dict[str, Any], started: float, log: Any) -> dict[str, Any]:
    """The train task's summary when the windows stage found too little history to train on: the champion
    (if any, of this frequency) keeps publishing."""
    from tasks.registry import usable_champion

    champion = usable_champion(settings.data_dir / "models", windows["frequency"], log)
    decision = f"not trained: {windows['untrainable']}"
    log.warning("%s; %s", decision, f"champion {champion.version} keeps publishing" if champion else
                "no champion yet: seasonal naive publishes every series")
    return {"model_version": None, "model_path": None, "device": None, "promoted": False,
            "champion_version": champion.version if champion else None, "warm_start": False, "decision": decision,
            "holdout": None, "interval_val_coverage": None, "reused": False, "epochs_run": 0, "best_epoch": None,
            "val_loss": None, "train_seconds": 0.0, "duration_s": round(time.perf_counter() - started, 3)}


def unseen_windows(series: pd.DataFrame, starts: np.ndarray, config: ModelConfig, cutoff: str) -> np.ndarray:
    """Which windows at `starts` have targets past `cutoff` (a champion's training cutoff): new to it."""
    stamps = series[TIMESTAMP].dt.tz_convert(None).to_numpy()  # datetime64, UTC
    ends = stamps[starts + config.lookback + config.horizon - 1]
    return ends > np.datetime64(pd.Timestamp(cutoff).tz_convert(None))


@task(name="train", tags=["gpu"])
def train_model(settings: Settings, validated: dict[str, Any], windows: dict[str, Any]) -> dict[str, Any]:
    """Prefect task: train a challenger, score it against the champion and seasonal naive, register it."""
    import keras
    from prefect.runtime import flow_run

    from tasks.lifecycle import challenge
    from tasks.registry import save_version, usable_champion

    log = get_run_logger()
    started = time.perf_counter()
    if windows.get("untrainable"):
        return untrained_result(settings, windows, started, log)
    folder = storage.as_path(windows["folder"])
    as_of = pd.Timestamp(validated["as_of"])
    config = ModelConfig.from_settings(settings, lookback=windows["lookback"], horizon=windows["horizon"],
                                       features=windows["features"], frequency=windows["frequency"])
    fingerprint = training_fingerprint(folder, config, settings)
    earlier = find_trained(settings.data_dir / "models", fingerprint)
    if earlier is not None:  # a rerun of the same as-of on the same data: the same model, not a new one
        return reused_result(settings.data_dir / "models", earlier, started, log)
    device = describe_device()
    log.info("Training on %s (Keras %s, backend %s)", device, keras.__version__, keras.backend.backend())
    champion = usable_champion(settings.data_dir / "models", windows["frequency"], log)
    warm = champion is not None and champion.config.architecture() == config.architecture() and \
        (as_of - pd.Timestamp(champion.metadata["full_retrain_as_of"])).days < settings.full_retrain_days
    devices = gpu_devices()
    if devices:  # GPUs want bigger batches; with several, each gets its own share
        config = replace(config, batch_size=settings.gpu_batch_size * len(devices))
    source = WindowSource.from_folder(folder, config.lookback, config.horizon, list(config.features))
    series = storage.read_parquet(folder / "series.parquet")
    unseen = unseen_windows(series, source.starts[TRAIN], config, champion.metadata["cutoff"]) \
        if warm and champion.metadata.get("cutoff") else None
    log.info("%s: %d training and %d validation windows%s", "Warm start from champion " + champion.version
             if warm else "Full retrain", source.count(TRAIN), source.count(VALIDATION),
             f"; per epoch {min(settings.warm_windows_per_epoch, source.count(TRAIN))}, the {int(unseen.sum())} "
             "the champion has not trained on first" if unseen is not None else "")
    model, facts = fit_model(config, source, max_epochs=settings.warm_epochs if warm else settings.max_epochs,
                             patience=settings.patience, lr_patience=settings.lr_patience,
                             initial_weights=champion.model.get_weights() if warm else None, log=log,
                             devices=devices, mixed_precision=settings.mixed_precision and bool(devices),
                             max_windows=settings.warm_windows_per_epoch if warm else None, priority=unseen)
    interval = calibrate(model, source, settings.interval_level)
    scalers = Scalers.from_dict(storage.read_json(folder / "scalers.json"))
    index = storage.read_parquet(folder / "index.parquet")
    verdict = challenge(model, interval, scalers, champion, series, index, config, windows["frequency"],
                        settings.holdout_windows, diverged=facts["diverged"])
    version = new_version_name(as_of, flow_run.id)
    metadata = {
        **facts, "config": config.as_dict(), "frequency": windows["frequency"], "interval": interval,
        "train_windows": windows["train_windows"], "val_windows": windows["val_windows"],
        "cutoff": windows["cutoff"], "data_start": str(series["timestamp"].min().isoformat()),
        "data_end": validated["as_of"], "series": int(series[SERIES_ID].nunique()),
        "warm_start_from": champion.version if warm else None,
        "full_retrain_as_of": champion.metadata["full_retrain_as_of"] if warm else validated["as_of"],
        "holdout": verdict.as_dict(), "device": device, "keras_version": keras.__version__,
        "backend": keras.backend.backend(), "code_version": code_version(),
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training_fingerprint": fingerprint, "promoted": verdict.promote, "decision": verdict.reason,
        "fallback_series": verdict.fallback_series, "base_series": verdict.base_series,
        "warm_start": warm,
    }
    path = save_version(settings.data_dir / "models", version, model, scalers, metadata,
                        make_champion=verdict.promote)
    (log.info if verdict.promote else log.warning)("Model %s %s: %s", version,
                                                   "promoted to champion" if verdict.promote else "not promoted",
                                                   verdict.reason)
    return {"model_version": version, "model_path": str(path), "device": device, "promoted": verdict.promote,
            "champion_version": version if verdict.promote else (champion.version if champion else None),
            "warm_start": warm, "decision": verdict.reason, "holdout": verdict.as_dict(),
            "interval_val_coverage": interval["val_coverage"], "reused": False,
            **{k: facts[k] for k in ("epochs_run", "best_epoch", "val_loss", "train_seconds")},
            "duration_s": round(time.perf_counter() - started, 3)}

"""Stage 5, training: fit the LSTM on this run's windows, with early stopping, and register the model.

Runs on the GPU when one is visible (Keras then uses the cuDNN LSTM kernel), on the CPU otherwise, and
logs which. The prediction interval comes from the model's own errors on the validation windows: for each
horizon step, the residual quantiles that bracket `interval_level` of them (split-conformal style), stored
in the model's metadata and applied at publication.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task

from tasks import storage
from tasks.scaling import SeriesScaler
from tasks.settings import Settings
from tasks.windows import SCALED, SPLIT, START, TRAIN, VALIDATION, materialize


def describe_device() -> str:
    """Which accelerator Keras will train on, in words, for the log and the model's metadata."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return f"GPU x{len(gpus)} (TensorFlow, cuDNN LSTM kernel)" if gpus else "CPU (TensorFlow)"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"GPU {torch.cuda.get_device_name(0)} (PyTorch, cuDNN LSTM kernel)"
        return "CPU (PyTorch)"
    if backend == "jax":
        import jax

        kinds = sorted({device.platform for device in jax.devices()})
        return f"{'/'.join(kinds).upper()} (JAX)"
    return f"{backend} backend"


def load_windows(folder: Path, lookback: int, horizon: int) -> dict[str, np.ndarray]:
    """Training and validation arrays from a windows folder: x [n, lookback, 1], y [n, horizon]."""
    scaled = storage.read_parquet(folder / "series.parquet", columns=[SCALED])[SCALED].to_numpy("float32")
    index = storage.read_parquet(folder / "index.parquet")
    arrays = {}
    for split in (TRAIN, VALIDATION):
        starts = index.loc[index[SPLIT] == split, START].to_numpy()
        arrays[f"{split}_x"], arrays[f"{split}_y"] = materialize(scaled, starts, lookback, horizon)
    return arrays


def fit_model(arrays: dict[str, np.ndarray], *, lookback: int, horizon: int, units: int, layers: int,
              dropout: float, learning_rate: float, batch_size: int, max_epochs: int, patience: int, seed: int,
              log=None) -> tuple[Any, dict[str, Any]]:
    """Train with early stopping on validation loss (best weights restored); returns (model, facts)."""
    import keras

    from tasks.model import build_lstm_model

    keras.utils.set_random_seed(seed)
    model = build_lstm_model(lookback=lookback, horizon=horizon, units=units, layers=layers, dropout=dropout,
                             learning_rate=learning_rate, seed=seed)
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)]
    if log is not None:
        callbacks.append(epoch_logger(log, max_epochs))
    started = time.perf_counter()
    history = model.fit(arrays["train_x"], arrays["train_y"], validation_data=(arrays["val_x"], arrays["val_y"]),
                        epochs=max_epochs, batch_size=batch_size, shuffle=True, verbose=0, callbacks=callbacks)
    seconds = time.perf_counter() - started
    val_losses = history.history["val_loss"]
    best = int(np.argmin(val_losses))
    facts = {"epochs_run": len(val_losses), "best_epoch": best + 1, "val_loss": float(val_losses[best]),
             "val_mae": float(history.history["val_mae"][best]), "train_loss": float(history.history["loss"][best]),
             "train_seconds": round(seconds, 3),
             "train_windows_per_s": round(len(arrays["train_x"]) * len(val_losses) / max(seconds, 1e-9), 1)}
    return model, facts


def residual_quantiles(model: Any, x: np.ndarray, y: np.ndarray, level: float, batch_size: int) -> dict[str, list]:
    """Per-step residual quantiles on held-out windows that bracket `level` of the errors."""
    predictions = model.predict(x, batch_size=batch_size, verbose=0)  # [n, horizon]
    residuals = y - predictions
    tail = (1.0 - level) / 2.0
    lower, upper = np.quantile(residuals, [tail, 1.0 - tail], axis=0)
    return {"level": level, "lower": lower.astype(float).tolist(), "upper": upper.astype(float).tolist()}


def epoch_logger(log: Any, max_epochs: int) -> Any:
    """A Keras callback that reports progress to the run log, one line per epoch."""
    import keras

    class EpochLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            log.info("epoch %d/%d: loss %.4f, val_loss %.4f", epoch + 1, max_epochs, logs.get("loss", np.nan),
                     logs.get("val_loss", np.nan))

    return EpochLogger()


def code_version() -> str:
    try:
        return package_metadata.version("lstm-forecast")
    except package_metadata.PackageNotFoundError:
        return "unknown"


def new_version_name(as_of: pd.Timestamp, run_id: str | None) -> str:
    """`<as-of, compact UTC>-<8 hex of the run id>`: sortable by data date, unique per run."""
    suffix = (run_id or uuid.uuid4().hex).replace("-", "")[:8]
    return f"{as_of.tz_convert('UTC'):%Y%m%dT%H%M%SZ}-{suffix}"


@task(name="train", tags=["gpu"])
def train_model(settings: Settings, validated: dict[str, Any], windows: dict[str, Any]) -> dict[str, Any]:
    """Prefect task: fit on the run's windows and register a new model version (champion)."""
    import keras
    from prefect.runtime import flow_run

    from tasks.registry import save_version

    log = get_run_logger()
    started = time.perf_counter()
    device = describe_device()
    log.info("Training on %s (Keras %s, backend %s)", device, keras.__version__, keras.backend.backend())
    folder = Path(windows["folder"])
    lookback, horizon = windows["lookback"], windows["horizon"]
    arrays = load_windows(folder, lookback, horizon)
    model, facts = fit_model(arrays, lookback=lookback, horizon=horizon, units=settings.units,
                             layers=settings.layers, dropout=settings.dropout, learning_rate=settings.learning_rate,
                             batch_size=settings.batch_size, max_epochs=settings.max_epochs,
                             patience=settings.patience, seed=settings.seed, log=log)
    interval = residual_quantiles(model, arrays["val_x"], arrays["val_y"], settings.interval_level,
                                  settings.batch_size)
    as_of = pd.Timestamp(validated["as_of"])
    version = new_version_name(as_of, flow_run.id)
    metadata = {
        **facts, "lookback": lookback, "horizon": horizon, "frequency": windows["frequency"], "n_features": 1,
        "units": settings.units, "layers": settings.layers, "dropout": settings.dropout,
        "learning_rate": settings.learning_rate, "batch_size": settings.batch_size, "seed": settings.seed,
        "train_windows": windows["train_windows"], "val_windows": windows["val_windows"],
        "cutoff": windows["cutoff"], "data_end": validated["as_of"], "interval": interval, "device": device,
        "keras_version": keras.__version__, "backend": keras.backend.backend(), "code_version": code_version(),
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    scaler = SeriesScaler.from_dict(storage.read_json(folder / "scaler.json"))
    path = save_version(settings.data_dir / "models", version, model, scaler, metadata)
    log.info("Model %s: %d epochs (best %d), val_loss %.4f, %.0f windows/s; saved to %s", version,
             facts["epochs_run"], facts["best_epoch"], facts["val_loss"], facts["train_windows_per_s"], path)
    return {"model_version": version, "model_path": str(path), "device": device,
            **{k: facts[k] for k in ("epochs_run", "best_epoch", "val_loss", "val_mae", "train_seconds")},
            "duration_s": round(time.perf_counter() - started, 3)}

"""Stage 5, training: fit a challenger on this run's windows, calibrate it, and let it earn promotion.

- Warm start: when the champion has the same architecture, the last full retrain (the newest from-scratch
  fit, promoted or not) is less than `full_retrain_days` old and no run has found drift since
  (tasks/accuracy.py), the challenger starts from the champion's weights and trains at most `warm_epochs`;
  otherwise it trains from scratch (a full retrain, its reason recorded in the version's metadata as
  `full_retrain_reason`).
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

import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

import pandas as pd
from prefect import get_run_logger, task

from forecasting.columns import SERIES_ID
from forecasting.model.config import ModelConfig
from forecasting.model.devices import describe_device, gpu_devices, replicas
from forecasting.model.training import calibrate, fit_model, unseen_windows
from forecasting.model.version import code_version, full_retrain_reason, new_version_name
from forecasting.promotion import challenge
from forecasting.results import Trained, Validated, Windowed
from forecasting.settings import Settings
from forecasting.windows import TRAIN, VALIDATION
from stores import files
from stores.accuracy import read_drift
from stores.registry import (find_trained, last_full_retrain, read_index, save_version, training_fingerprint,
                             usable_champion, version_dir)
from stores.windows import read_training_windows
from tasks.retry import retrying


def reused_result(models_dir: Any, metadata: dict[str, Any], started: float, log: Any) -> Trained:
    """The train task's summary for a version trained earlier on the same input."""
    champion = read_index(models_dir)["champion"]
    log.info("Model %s was already trained on exactly this data and configuration (a rerun of this as-of); "
             "reusing it instead of training again. Champion: %s", metadata["version"], champion or "none")
    return Trained.from_reuse(metadata, str(version_dir(models_dir, metadata["version"])), champion,
                          round(time.perf_counter() - started, 3))


def untrained_result(settings: Settings, windows: Windowed, started: float, log: Any) -> Trained:
    """The train task's summary when the windows stage found too little history to train on: the champion
    (if any, of this frequency) keeps publishing."""
    champion = usable_champion(settings.data_dir / "models", windows.frequency, log)
    decision = f"not trained: {windows.untrainable}"
    log.warning("%s; %s", decision, f"champion {champion.version} keeps publishing" if champion else
                "no champion yet: seasonal naive publishes every series")
    return Trained.nothing_trained(decision, champion.version if champion else None,
                                   round(time.perf_counter() - started, 3))


@task(name="train", tags=["gpu"], **retrying())
def train_model(settings: Settings, validated: Validated, windows: Windowed) -> Trained:
    """Prefect task: train a challenger, score it against the champion and seasonal naive, register it."""
    import keras
    from prefect.runtime import flow_run

    log = get_run_logger()
    started = time.perf_counter()
    if windows.untrainable:
        return untrained_result(settings, windows, started, log)
    folder = files.as_path(windows.folder)
    as_of = pd.Timestamp(validated.as_of)
    config = ModelConfig.from_settings(settings, lookback=windows.lookback, horizon=windows.horizon,
                                       features=windows.features, frequency=windows.frequency,
                                       series=windows.series)
    fingerprint = training_fingerprint(folder, config, settings)
    earlier = find_trained(settings.data_dir / "models", fingerprint)
    if earlier is not None:  # a rerun of the same as-of on the same data: the same model, not a new one
        return reused_result(settings.data_dir / "models", earlier, started, log)
    device = describe_device()
    log.info("Training on %s (Keras %s, backend %s)", device, keras.__version__, keras.backend.backend())
    champion = usable_champion(settings.data_dir / "models", windows.frequency, log)
    retrain_reason = full_retrain_reason(champion, config, as_of, settings.full_retrain_days,
                                         read_drift(settings.data_dir),
                                         last_full_retrain(settings.data_dir / "models", config.architecture()))
    warm = retrain_reason is None
    devices = gpu_devices()
    if devices:  # GPUs want bigger batches; with several mirrored, each gets its own share
        config = replace(config, batch_size=settings.gpu_batch_size * replicas(devices))
    data = read_training_windows(folder, config.lookback, config.horizon, list(config.features))
    source, series = data.source, data.series
    unseen = unseen_windows(series, source.starts[TRAIN], config, champion.metadata["cutoff"]) \
        if warm and champion.metadata.get("cutoff") else None
    log.info("%s: %d training and %d validation windows%s", "Warm start from champion " + champion.version
             if warm else f"Full retrain ({retrain_reason})", source.count(TRAIN), source.count(VALIDATION),
             f"; per epoch {min(settings.warm_windows_per_epoch, source.count(TRAIN))}, the {int(unseen.sum())} "
             "the champion has not trained on first" if unseen is not None else "")
    if config.members > 1:
        log.info("An ensemble of %d networks (seeds %s), their forecasts averaged%s",
                 config.members, ", ".join(map(str, config.member_seeds())),
                 "" if settings.ensemble_members else ": the default for a run on a single series")
    model, facts = fit_model(config, source, max_epochs=settings.warm_epochs if warm else settings.max_epochs,
                             patience=settings.patience, lr_patience=settings.lr_patience,
                             min_improvement=settings.min_improvement,
                             initial_weights=champion.model.get_weights() if warm else None, log=log,
                             devices=devices, mixed_precision=settings.mixed_precision and bool(devices),
                             max_windows=settings.warm_windows_per_epoch if warm else None, priority=unseen)
    interval = calibrate(model, source, settings.interval_level)
    scalers = data.scalers
    verdict = challenge(model, interval, scalers, champion, series, data.index, config, windows.frequency,
                        settings.holdout_windows, diverged=facts["diverged"])
    version = new_version_name(as_of, flow_run.id)
    metadata = {
        **facts, "config": config.as_dict(), "frequency": windows.frequency, "interval": interval,
        "train_windows": windows.train_windows, "val_windows": windows.val_windows,
        "cutoff": windows.cutoff, "data_start": str(series["timestamp"].min().isoformat()),
        "data_end": validated.as_of, "series": int(series[SERIES_ID].nunique()),
        "warm_start_from": champion.version if warm else None,
        "full_retrain_as_of": champion.metadata["full_retrain_as_of"] if warm else validated.as_of,
        "full_retrain_reason": retrain_reason,
        # What realised accuracy is held to (tasks/accuracy.py): the holdout MASE of the lineage's full retrain.
        "reference_holdout_mase": champion.metadata.get("reference_holdout_mase",
                                                        champion.metadata["holdout"]["challenger_mase"])
        if warm else verdict.challenger_mase,
        "holdout": verdict.as_dict(), "device": device, "keras_version": keras.__version__,
        "backend": keras.backend.backend(), "code_version": code_version(),
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "training_fingerprint": fingerprint, "promoted": verdict.promote, "decision": verdict.reason,
        "fallback_series": verdict.fallback_series, "base_series": verdict.base_series,
        "clear_base_series": verdict.clear_base_series,
        "warm_start": warm,
    }
    path = save_version(settings.data_dir / "models", version, model, scalers, metadata,
                        make_champion=verdict.promote, keep_loaded=True)
    (log.info if verdict.promote else log.warning)("Model %s %s: %s", version,
                                                   "promoted to champion" if verdict.promote else "not promoted",
                                                   verdict.reason)
    if verdict.base_series:
        clear = verdict.clear_base_series
        log.info("%d series publish the model's seasonal base alone: %d where seasonal naive beat the model on "
                 "their holdout, %d where the base beat it clearly%s", len(verdict.base_series),
                 len(verdict.base_series) - len(clear), len(clear),
                 f" ({', '.join(clear[:10])}{', ...' if len(clear) > 10 else ''})" if clear else "")
    return Trained(model_version=version, model_path=str(path), device=device, promoted=verdict.promote,
                   champion_version=version if verdict.promote else (champion.version if champion else None),
                   warm_start=warm, decision=verdict.reason, holdout=verdict.as_dict(),
                   interval_val_coverage=interval["val_coverage"], reused=False,
                   **{k: facts[k] for k in ("epochs_run", "best_epoch", "val_loss", "train_seconds")},
                   duration_s=round(time.perf_counter() - started, 3))

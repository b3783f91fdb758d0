"""A model version as the pipeline uses it: the network, its scalers and its metadata, as one value."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from importlib import metadata as package_metadata
from typing import Any

import pandas as pd

from forecasting.model.config import ModelConfig
from forecasting.scaling import Scalers


@dataclass
class ModelVersion:
    version: str
    model: Any  # keras.Model
    scalers: Scalers
    metadata: dict[str, Any]

    @property
    def config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.metadata["config"])


def full_retrain_reason(champion: ModelVersion | None, config: ModelConfig, as_of: pd.Timestamp,
                        full_retrain_days: int, drift: dict[str, Any] | None = None,
                        last_attempt: str | None = None) -> str | None:
    """Why a challenger of `config` trained as of `as_of` starts from scratch rather than from the champion's
    weights (None: it warm-starts). A full retrain comes with no champion, a changed architecture, every
    `full_retrain_days` (so warm starts cannot drift forever from a from-scratch fit), and after drift found
    by a run later than the last full retrain (the realised-accuracy stage's mark).

    last_attempt: the as-of of the newest from-scratch fit of this architecture, promoted or not. The
    cadence and the drift mark count from it, not only from the champion's own full retrain: a from-scratch
    fit that lost to the warm-started champion has answered the question, and asking it again every day
    until one wins made each of those days a full retrain (21 of 30 runs of a bundled-sample backfill).
    """
    if champion is None:
        return "no champion to start from"
    if champion.config.architecture() != config.architecture():
        return "the champion's architecture differs from this run's"
    last_full = pd.Timestamp(champion.metadata["full_retrain_as_of"])
    if last_attempt is not None and pd.Timestamp(last_attempt) > last_full:
        last_full = pd.Timestamp(last_attempt)
    if (as_of - last_full).days >= full_retrain_days:
        return f"the last full retrain (as of {last_full.date()}) is {full_retrain_days} or more days old"
    if drift and pd.Timestamp(drift["as_of"]) > last_full:
        return f"drift found by the run of {pd.Timestamp(drift['as_of']).date()}: {drift['reason']}"
    return None


def code_version() -> str:
    """The installed lstm-forecast version, saved with each model and part of its training fingerprint."""
    try:
        return package_metadata.version("lstm-forecast")
    except package_metadata.PackageNotFoundError:
        return "unknown"


def new_version_name(as_of: pd.Timestamp, run_id: str | None) -> str:
    """`<as-of, compact UTC>-<8 hex of the run id>`: sortable by data date, unique per run."""
    suffix = (run_id or uuid.uuid4().hex).replace("-", "")[:8]
    return f"{as_of.tz_convert('UTC'):%Y%m%dT%H%M%SZ}-{suffix}"

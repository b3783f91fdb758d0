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

    def warm_starts(self, config: ModelConfig, as_of: pd.Timestamp, full_retrain_days: int) -> bool:
        """Whether a challenger of `config` trained as of `as_of` starts from this version's weights: the
        same architecture, and this version's last full retrain less than `full_retrain_days` old (so
        warm starts cannot drift forever from a from-scratch fit)."""
        return self.config.architecture() == config.architecture() and \
            (as_of - pd.Timestamp(self.metadata["full_retrain_as_of"])).days < full_retrain_days


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

"""A model version as the pipeline uses it: the network, its scalers and its metadata, as one value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

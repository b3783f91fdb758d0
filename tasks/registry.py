"""The model registry: one folder per version under `<data-dir>/models/`, plus an index.

    models/<version>/model.keras      Keras 3 native format (no pickle, loaded with safe_mode=True)
    models/<version>/scaler.json      per-series scaling statistics fitted on the training slice
    models/<version>/metadata.json    sizes, frequency, data range, metrics, interval residuals, code version
    models/index.json                 {"champion": ..., "versions": [...]}

A version folder is written under a temporary name and renamed when complete, so a reader sees a whole
version or none. Version names are generated here and checked against a strict pattern before they ever
touch a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks import storage
from tasks.errors import PipelineError
from tasks.scaling import SeriesScaler

VERSION_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,99}$")
MODEL_FILE, SCALER_FILE, METADATA_FILE, INDEX_FILE = "model.keras", "scaler.json", "metadata.json", "index.json"


@dataclass
class ModelVersion:
    version: str
    model: Any  # keras.Model
    scaler: SeriesScaler
    metadata: dict[str, Any]


def version_dir(models_dir: Path, version: str) -> Path:
    if not VERSION_PATTERN.match(version) or ".." in version:
        raise ValueError(f"invalid model version name {version!r}")
    return models_dir / version


def save_version(models_dir: Path, version: str, model: Any, scaler: SeriesScaler, metadata: dict[str, Any],
                 *, make_champion: bool = True) -> Path:
    """Write a complete version folder atomically, then record it in the index."""
    target = version_dir(models_dir, version)
    with storage.atomic_dir(target) as tmp:
        model.save(tmp / MODEL_FILE)
        storage.write_json(scaler.to_dict(), tmp / SCALER_FILE)
        storage.write_json({**metadata, "version": version}, tmp / METADATA_FILE)
    index = read_index(models_dir)
    index["versions"] = [*index["versions"], version]
    if make_champion:
        index["champion"] = version
    storage.write_json(index, models_dir / INDEX_FILE)
    return target


def read_index(models_dir: Path) -> dict[str, Any]:
    return storage.read_json(models_dir / INDEX_FILE, default={"champion": None, "versions": []})


def load_version(models_dir: Path, version: str) -> ModelVersion:
    """Load a version; Keras safe_mode refuses any serialized code (e.g. Lambda layers)."""
    import keras

    folder = version_dir(models_dir, version)
    if not (folder / MODEL_FILE).is_file():
        raise PipelineError(f"model version {version!r} is missing from {models_dir}")
    model = keras.saving.load_model(folder / MODEL_FILE, safe_mode=True, compile=False)
    scaler = SeriesScaler.from_dict(storage.read_json(folder / SCALER_FILE))
    return ModelVersion(version, model, scaler, storage.read_json(folder / METADATA_FILE))


def load_champion(models_dir: Path) -> ModelVersion:
    champion = read_index(models_dir)["champion"]
    if not champion:
        raise PipelineError(f"no champion model in {models_dir}; the train stage has not completed yet")
    return load_version(models_dir, champion)

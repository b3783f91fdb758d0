"""The model registry: one folder per version under `<data-dir>/models/`, plus an index.

    models/<version>/model.keras      Keras 3 native format (no pickle, loaded with safe_mode=True)
    models/<version>/scalers.json     per-series scaling statistics fitted on the training slice (JSON, no pickle)
    models/<version>/metadata.json    config, frequency, data range, metrics, interval calibration, holdout
                                      scores and promotion decision, device, code version
    models/<version>/explanations.json  channel and lookback importance on its validation windows
                                      (forecasting/explain.py), added by the explain task
    models/index.json                 {"champion": ..., "versions": [...]}: the champion publishes

A version folder is written under a temporary name and renamed when complete, so a reader sees a whole
version or none. Version names are generated here and checked against a strict pattern before they ever
touch a path.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from forecasting.errors import PipelineError
from forecasting.model.config import ModelConfig
from forecasting.model.version import ModelVersion, code_version
from forecasting.scaling import Scalers
from forecasting.settings import Settings
from stores import files

VERSION_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,99}$")
MODEL_FILE, SCALERS_FILE, METADATA_FILE, INDEX_FILE = "model.keras", "scalers.json", "metadata.json", "index.json"
EXPLANATIONS_FILE = "explanations.json"

# The networks of the versions this process has loaded, newest last. A run loads the same version two or
# three times (explanations, publication, the champion in training): each load rebuilt the network, and
# its first predictions traced it again (about 1.5 s a load on two cores, a tenth of a small series' whole
# run). A version folder is never rewritten in place by the pipeline; the key carries the model file's
# size and modification time, so a file changed by other hands is loaded (or refused) afresh. Two: a
# run's challenger and the champion it did not replace. The train task hands over the network it has just
# trained and saved (save_version's keep_loaded), so a run loads none it trained itself.
LOADED_VERSIONS = 2
_loaded: OrderedDict[tuple[str, str, tuple[int, int]], Any] = OrderedDict()  # key -> keras.Model


def version_dir(models_dir: Path, version: str) -> Path:
    if not VERSION_PATTERN.match(version) or ".." in version:
        raise ValueError(f"invalid model version name {version!r}")
    return models_dir / version


def save_version(models_dir: Path, version: str, model: Any, scalers: Scalers, metadata: dict[str, Any],
                 *, make_champion: bool = True, keep_loaded: bool = False) -> Path:
    """Write a complete version folder atomically, then record it in the index (once).

    A retry of the same training (same version name and training fingerprint) after the folder was written
    but before the index was finds the folder complete and only registers it.

    keep_loaded: the caller is done changing `model` (a trained network), so this process's loads of the
    version return it instead of reading the file back: the network a load would build, with its weights
    to the bit, whose predict function the caller's own predictions have traced already (the run's
    explanations and publication would otherwise load and trace it again, about 1.5 s on two cores)."""
    target = version_dir(models_dir, version)
    fingerprint = metadata.get("training_fingerprint")
    written = files.read_json(target / METADATA_FILE, default={}) if fingerprint and target.exists() else {}
    if not fingerprint or written.get("training_fingerprint") != fingerprint:
        with files.atomic_dir(target) as tmp:
            model.save(tmp / MODEL_FILE)
            files.write_json(scalers.to_dict(), tmp / SCALERS_FILE)
            files.write_json({**metadata, "version": version}, tmp / METADATA_FILE)
        if keep_loaded:  # not where an earlier attempt wrote the folder: its file is what the version holds
            _remember(_loaded_key(models_dir, version), model)
    index = read_index(models_dir)
    if version not in index["versions"]:
        index["versions"] = [*index["versions"], version]
    if make_champion:
        index["champion"] = version
    files.write_json(index, models_dir / INDEX_FILE)
    return target


def read_metadata(models_dir: Path, version: str) -> dict[str, Any]:
    """A version's metadata.json without loading its model ({} when the version has none)."""
    return files.read_json(version_dir(models_dir, version) / METADATA_FILE, default={})


def read_explanations(models_dir: Path, version: str) -> dict[str, Any] | None:
    """A version's explanations (None: not measured yet, or explanations are off)."""
    return files.read_json(version_dir(models_dir, version) / EXPLANATIONS_FILE, default=None)


def save_explanations(models_dir: Path, version: str, explanations: dict[str, Any]) -> Path:
    """Write (atomically) a registered version's explanations into its folder."""
    path = version_dir(models_dir, version) / EXPLANATIONS_FILE
    files.write_json(explanations, path)
    return path


def read_index(models_dir: Path) -> dict[str, Any]:
    return files.read_json(models_dir / INDEX_FILE, default={"champion": None, "versions": []})


def load_version(models_dir: Path, version: str) -> ModelVersion:
    """Load a version; Keras safe_mode refuses any serialized code (e.g. Lambda layers). The network is
    loaded once per process (LOADED_VERSIONS; callers only predict with it, training copies its weights);
    scalers and metadata are read afresh each time, because callers extend and keep them as their own."""
    folder = version_dir(models_dir, version)
    if not (folder / MODEL_FILE).is_file():
        raise PipelineError(f"model version {version!r} is missing from {models_dir}")
    key = _loaded_key(models_dir, version)
    if key in _loaded:
        _loaded.move_to_end(key)
    else:
        _remember(key, _load_network(folder / MODEL_FILE))
    scalers = Scalers.from_dict(files.read_json(folder / SCALERS_FILE))
    return ModelVersion(version, _loaded[key], scalers, files.read_json(folder / METADATA_FILE))


def _loaded_key(models_dir: Path, version: str) -> tuple[str, str, tuple[int, int]]:
    return str(models_dir), version, files.file_signature(version_dir(models_dir, version) / MODEL_FILE)


def _remember(key: tuple[str, str, tuple[int, int]], network: Any) -> None:
    """Keep `network` as the loaded network of `key`'s version (the newest), forgetting the oldest past
    LOADED_VERSIONS."""
    _loaded[key] = network
    _loaded.move_to_end(key)
    while len(_loaded) > LOADED_VERSIONS:
        _loaded.popitem(last=False)


def _load_network(path: Path) -> Any:
    import keras

    import forecasting.model.network  # noqa: F401 - registers the custom layers and loss the saved model refers to

    with files.local_file(path) as local:  # Keras opens local files only
        return keras.saving.load_model(local, safe_mode=True, compile=False)


def load_champion(models_dir: Path) -> ModelVersion:
    champion = load_champion_or_none(models_dir)
    if champion is None:
        raise PipelineError(f"no champion model in {models_dir}; no model has been promoted yet")
    return champion


def load_champion_or_none(models_dir: Path) -> ModelVersion | None:
    champion = read_index(models_dir)["champion"]
    return load_version(models_dir, champion) if champion else None


def usable_champion(models_dir: Path, frequency: str, log: Any) -> ModelVersion | None:
    """The champion if it loads and serves this frequency; otherwise None, with the reason logged."""
    try:
        champion = load_champion_or_none(models_dir)
        if champion is not None:
            champion.config  # noqa: B018 - a version from an older format has no config: unusable
    except Exception as exc:  # noqa: BLE001 - an unreadable champion must not stop the run
        log.warning("The champion in %s cannot be loaded (%s); going on without it", models_dir, exc)
        return None
    if champion is not None and champion.metadata.get("frequency") != frequency:
        log.warning("Champion %s serves %s data, this run is %s; it is not used", champion.version,
                    champion.metadata.get("frequency"), frequency)
        return None
    return champion


TUNED_FILE = "tuned.json"  # the tune flow's winner, beside the versions


def save_tuned(models_dir: Path, payload: dict[str, Any]) -> None:
    files.write_json(payload, models_dir / TUNED_FILE)


def read_tuned(models_dir: Path) -> dict[str, Any] | None:
    return files.read_json(models_dir / TUNED_FILE, default=None)


# Settings that change what training produces besides the model config (which is hashed whole).
_TRAINING_SETTINGS = ("max_epochs", "patience", "min_improvement", "lr_patience", "full_retrain_days",
                      "warm_epochs", "warm_windows_per_epoch", "holdout_windows", "interval_level", "mixed_precision")


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
        digest.update(files.content_hash(folder / name).encode())
    payload = {"config": config.as_dict(), **{name: getattr(settings, name) for name in _TRAINING_SETTINGS},
               "code_version": code_version()}
    digest.update(json.dumps(payload, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def recent_metadata(models_dir: Any) -> Iterator[dict[str, Any]]:
    """Metadata of the last REUSE_LOOKBACK_VERSIONS registered versions, newest first."""
    for version in reversed(read_index(models_dir)["versions"][-REUSE_LOOKBACK_VERSIONS:]):
        yield read_metadata(models_dir, version)


def last_full_retrain(models_dir: Any, architecture: dict[str, Any]) -> str | None:
    """The as-of of the newest registered from-scratch fit of this architecture, promoted or not (None: none
    among the recent versions)."""
    return next((metadata["data_end"] for metadata in recent_metadata(models_dir)
                 if metadata.get("warm_start") is False
                 and ModelConfig.from_dict(metadata["config"]).architecture() == architecture), None)


def find_trained(models_dir: Any, fingerprint: str) -> dict[str, Any] | None:
    """Metadata of the newest registered version trained from exactly this input (see training_fingerprint)."""
    return next((metadata for metadata in recent_metadata(models_dir)
                 if metadata.get("training_fingerprint") == fingerprint), None)

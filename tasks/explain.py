"""Stage 6, explanations (the Prefect task): what the version this run trained leans on, measured on its
validation windows (forecasting/explain.py), stored beside it as `models/<version>/explanations.json` and
shown as the `feature-importance` table artifact. A rerun that reused the version reads them back."""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from forecasting.explain import explain
from forecasting.results import Explained, Trained, Windowed
from forecasting.settings import Settings
from forecasting.summaries import importance_rows
from stores.registry import EXPLANATIONS_FILE, load_version, read_explanations, save_explanations, version_dir
from stores.windows import read_training_windows
from tasks.retry import retrying


@task(name="explain", **retrying())
def explain_model(settings: Settings, windows: Windowed, trained: Trained) -> Explained:
    """Prefect task: channel and lookback importance of this run's version (measured once per version)."""
    log = get_run_logger()
    started = time.perf_counter()
    version, models_dir = trained.model_version, settings.data_dir / "models"

    def result(explanation: dict | None, reused: bool, note: str = "") -> Explained:
        path = str(version_dir(models_dir, version) / EXPLANATIONS_FILE) if explanation is not None else None
        return Explained(model_version=version, path=path, explanation=explanation, reused=reused, note=note,
                         duration_s=round(time.perf_counter() - started, 3))

    if version is None:
        return result(None, False, "nothing was trained this run")
    if not settings.explain_windows:
        return result(None, False, "explanations are off (explain_windows = 0)")
    stored = read_explanations(models_dir, version)
    if stored is not None:  # a retry, or a rerun that reused the version: measured already
        log.info("Explanations of %s: measured by an earlier run, read back", version)
        publish_artifact(stored)
        return result(stored, True)
    model = load_version(models_dir, version)
    config = model.config
    data = read_training_windows(windows.folder, config.lookback, config.horizon, list(config.features))
    measured = explain(model.model, model.metadata["interval"]["correction"], data.scalers, data.series, data.index,
                       list(config.features), config.lookback, config.horizon, config.quantiles, windows.frequency,
                       version=version, windows=settings.explain_windows, repeats=settings.explain_repeats,
                       seed=config.seed)
    if measured is None:
        return result(None, False, "no validation window has an observed target on a series that varies")
    log.info("Explanations of %s on %d validation windows (%.1f s); MASE increase when shuffled: %s", version,
             measured.windows, measured.seconds, ", ".join(f"{c.name} {c.mase:+.3f}" for c in measured.channels))
    explanation = measured.as_dict()
    save_explanations(models_dir, version, explanation)
    publish_artifact(explanation)
    return result(explanation, False)


def publish_artifact(explanation: dict) -> None:
    create_table_artifact(table=importance_rows(explanation), key="feature-importance",
                          description=f"What model {explanation['version']} leans on: the loss increase when each "
                          f"input group is shuffled or each lookback block hidden, on {explanation['windows']} "
                          "validation windows (docs/explanations.md)")

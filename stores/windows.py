"""A run's windows in the store: `<data-dir>/windows/run_date=.../` with `series.parquet` (every series'
features once), `index.parquet` (one row per window: start position and split), `scalers.json` and
`meta.json`; and the earlier run's windows an incremental run builds on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from forecasting.columns import IMPUTED, SERIES_ID, TIMESTAMP, VALUE
from forecasting.scaling import Scalers
from forecasting.windows import SCALED, WindowPlan, WindowSource, covariate_columns
from stores import files
from stores.snapshots import STATE_FILE

SERIES_FILE, INDEX_FILE, SCALERS_FILE, META_FILE = "series.parquet", "index.parquet", "scalers.json", "meta.json"


def windows_dir(data_dir: Path, run_date: date) -> Path:
    return files.partition_dir(data_dir / "windows", run_date)


def window_settings(settings: Any, lookback: int, horizon: int) -> dict[str, Any]:
    """The settings a run's windows depend on (lookback and horizon as resolved for the frequency): an
    earlier run's windows are a usable base only if these are unchanged."""
    return {"lookback": lookback, "horizon": horizon, "val_fraction": settings.val_fraction,
            "target_transform": settings.target_transform}


@dataclass
class WindowBase:
    """An earlier run's windows this run builds on, read once."""

    folder: Path
    meta: dict[str, Any]
    scalers: Scalers
    rebuilt: set[str]  # series gap-fill rebuilt in this run: their windows are rebuilt too

    def series(self) -> pd.DataFrame:
        return files.read_parquet(self.folder / SERIES_FILE)


def find_windows_base(settings: Any, clean_path: str, freq: str, lookback: int, horizon: int,
                      clean: pd.DataFrame) -> WindowBase | None:
    """The windows of the run an incremental gap-fill built on (its state names it), when this run can
    window incrementally on them: same as-of, window settings, frequency and covariates. Else None."""
    state = files.read_json(files.as_path(clean_path).parent / STATE_FILE, default={})
    folder = windows_dir(settings.data_dir, pd.Timestamp(state["base_run_date"]).date())
    meta = files.read_json(folder / META_FILE, default=None)
    if not meta or meta.get("as_of") != state.get("base_as_of") or \
            meta.get("settings") != window_settings(settings, lookback, horizon) or \
            meta.get("frequency") != freq or not all((folder / n).exists() for n in (SERIES_FILE, SCALERS_FILE)):
        return None
    scalers = Scalers.from_dict(files.read_json(folder / SCALERS_FILE))
    if sorted(scalers.covariates) != sorted(covariate_columns(clean)):
        return None
    return WindowBase(folder=folder, meta=meta, scalers=scalers, rebuilt=set(state.get("rebuilt_series", [])))


def write_windows(folder: Path, plan: WindowPlan, meta: dict[str, Any]) -> None:
    """Write a window plan and its meta; meta.json last, so a folder with it is complete."""
    covariates = list(plan.scalers.covariates)  # raw too: another model's scalers may need them
    files.write_parquet(plan.series[[SERIES_ID, TIMESTAMP, VALUE, IMPUTED, *covariates, *plan.features]],
                        folder / SERIES_FILE)
    files.write_parquet(plan.index, folder / INDEX_FILE)
    files.write_json(plan.scalers.to_dict(), folder / SCALERS_FILE)
    files.write_json(meta, folder / META_FILE)


@dataclass
class TrainingWindows:
    """What training reads from a windows folder."""

    source: WindowSource  # the model's inputs, window by window
    series: pd.DataFrame  # the featured series, unscaled values included (holdout scoring)
    index: pd.DataFrame  # one row per window: start and split
    scalers: Scalers


def read_window_source(folder: Any, lookback: int, horizon: int, features: list[str]) -> WindowSource:
    """The WindowSource of a windows folder (only the columns training reads)."""
    folder = files.as_path(folder)
    series = files.read_parquet(folder / SERIES_FILE, columns=list(dict.fromkeys([SCALED, IMPUTED, *features])))
    return WindowSource.from_frames(series, files.read_parquet(folder / INDEX_FILE), features, lookback, horizon)


def read_training_windows(folder: Any, lookback: int, horizon: int, features: list[str]) -> TrainingWindows:
    folder = files.as_path(folder)
    return TrainingWindows(source=read_window_source(folder, lookback, horizon, features),
                           series=files.read_parquet(folder / SERIES_FILE),
                           index=files.read_parquet(folder / INDEX_FILE),
                           scalers=Scalers.from_dict(files.read_json(folder / SCALERS_FILE)))

"""Stage 4, windowing (the Prefect task): plan this run's windows (forecasting/windows.py), incrementally on
an earlier run's where it can, and write them under `<data-dir>/windows/run_date=.../`: `series.parquet`
(every series' features once), `index.parquet` (one row per window: start position and split),
`scalers.json` and `meta.json`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from prefect import get_run_logger, task

from forecasting.columns import IMPUTED, SERIES_ID, TIMESTAMP, VALUE
from forecasting.results import Filled, Validated, Windowed
from forecasting.scaling import Scalers
from forecasting.settings import Settings
from forecasting.windows import (SCALED, SPLIT, TRAIN, VALIDATION, WindowSource, covariate_columns, longest_length,
                                 plan_increment, plan_windows, resolve_sizes)
from stores import files
from stores.snapshots import STATE_FILE
from tasks.retry import retrying


def window_settings(settings: Settings, lookback: int, horizon: int) -> dict[str, Any]:
    return {"lookback": lookback, "horizon": horizon, "val_fraction": settings.val_fraction,
            "target_transform": settings.target_transform}


@dataclass
class WindowBase:
    """An earlier run's windows this run builds on, read once."""

    folder: Any
    meta: dict[str, Any]
    scalers: Scalers
    rebuilt: set[str]  # series gap-fill rebuilt in this run: their windows are rebuilt too


def windows_base(settings: Settings, filled: Filled, freq: str, lookback: int, horizon: int,
                 clean: pd.DataFrame) -> WindowBase | None:
    """The base run's windows when this run can window incrementally on them, else None."""
    if filled.mode != "incremental":
        return None
    state = files.read_json(files.as_path(filled.clean_path).parent / STATE_FILE, default={})
    folder = files.partition_dir(settings.data_dir / "windows", pd.Timestamp(state["base_run_date"]).date())
    meta = files.read_json(folder / "meta.json", default=None)
    if not meta or meta.get("as_of") != state.get("base_as_of") or \
            meta.get("settings") != window_settings(settings, lookback, horizon) or \
            meta.get("frequency") != freq or not all((folder / n).exists() for n in ("series.parquet", "scalers.json")):
        return None
    scalers = Scalers.from_dict(files.read_json(folder / "scalers.json"))
    if sorted(scalers.covariates) != sorted(covariate_columns(clean)):
        return None
    return WindowBase(folder=folder, meta=meta, scalers=scalers, rebuilt=set(state.get("rebuilt_series", [])))


def untrainable(reason: str, lookback: int, horizon: int, freq: str, validated: Validated,
                clean: pd.DataFrame, started: float, log: Any) -> Windowed:
    """The windows summary of a run with too little history to train: no model is trained and every series is
    published by the champion where it has the history, else by seasonal naive (a run never fails for this)."""
    log.warning("%s: no model is trained this run; each series is forecast by the champion where it can, else "
                "by seasonal naive. Lower --lookback/--horizon or supply more history to train one", reason)
    return Windowed(lookback=lookback, horizon=horizon, frequency=freq, cutoff=None, features=[], train_windows=0,
                    val_windows=0, series=int(clean[SERIES_ID].nunique()), short_series=[], mode="full",
                    rows_processed=0, as_of=validated.as_of, folder=None, untrainable=reason,
                    duration_s=round(time.perf_counter() - started, 3))


@task(name="windows", **retrying())
def build_windows(settings: Settings, validated: Validated, filled: Filled) -> Windowed:
    """Prefect task: plan windows for this run and write them under `<data-dir>/windows/run_date=.../`."""
    log = get_run_logger()
    started = time.perf_counter()
    run_date = pd.Timestamp(validated.run_date).date()
    freq = validated.frequency
    clean = files.read_parquet(filled.clean_path)
    longest = longest_length(clean)
    lookback, horizon = resolve_sizes(freq, settings.lookback, settings.horizon, longest)
    if longest is not None and longest < lookback:  # nothing to window; publication falls back per series
        return untrainable(f"every series is shorter than the lookback of {lookback} periods (longest has "
                           f"{longest})", lookback, horizon, freq, validated, clean, started, log)
    base = windows_base(settings, filled, freq, lookback, horizon, clean)
    if base is not None:
        plan, processed = plan_increment(clean, files.read_parquet(base.folder / "series.parquet"), base.scalers,
                                         base.rebuilt, freq, lookback, horizon, settings.val_fraction)
        scalers_as_of = base.meta["scalers_fitted_as_of"]
        log.info("Incremental windows on %s: features for %d new row(s); scalers of the cycle fitted as of %s",
                 base.folder.name, processed, scalers_as_of)
    else:
        plan = plan_windows(clean, freq, lookback, horizon, settings.val_fraction, settings.target_transform)
        processed, scalers_as_of = len(plan.series), validated.as_of
    if plan.short_series:
        log.warning("%d series are shorter than the lookback of %d and will be forecast by seasonal naive: %s",
                    len(plan.short_series), lookback, ", ".join(map(repr, plan.short_series[:10])))
    folder = files.partition_dir(settings.data_dir / "windows", run_date)
    covariates = list(plan.scalers.covariates)  # raw too: another model's scalers may need them
    files.write_parquet(plan.series[[SERIES_ID, TIMESTAMP, VALUE, IMPUTED, *covariates, *plan.features]],
                        folder / "series.parquet")
    files.write_parquet(plan.index, folder / "index.parquet")
    files.write_json(plan.scalers.to_dict(), folder / "scalers.json")
    n_train = int((plan.index[SPLIT] == TRAIN).sum())
    n_val = int((plan.index[SPLIT] == VALIDATION).sum())
    meta = {"lookback": lookback, "horizon": horizon, "frequency": freq, "cutoff": plan.cutoff.isoformat(),
            "features": plan.features, "train_windows": n_train, "val_windows": n_val,
            "series": int(plan.series[SERIES_ID].nunique()), "short_series": plan.short_series,
            "mode": "incremental" if base is not None else "full", "rows_processed": processed,
            "scalers_fitted_as_of": scalers_as_of, "settings": window_settings(settings, lookback, horizon),
            "as_of": validated.as_of}
    files.write_json(meta, folder / "meta.json")
    if n_train == 0 or n_val == 0:
        return untrainable(f"not enough history to train: {n_train} training and {n_val} validation windows "
                           f"with lookback {lookback} and horizon {horizon} (cutoff {plan.cutoff.isoformat()})",
                           lookback, horizon, freq, validated, clean, started, log)
    log.info("Windows: %d train + %d validation (lookback %d, horizon %d, %d features, cutoff %s) over %d series",
             n_train, n_val, lookback, horizon, len(plan.features), plan.cutoff.isoformat(), meta["series"])
    return Windowed(**meta, folder=str(folder), duration_s=round(time.perf_counter() - started, 3))


def read_window_source(folder: Any, lookback: int, horizon: int, features: list[str]) -> WindowSource:
    """The WindowSource of a windows folder this stage wrote (only the columns training reads)."""
    series = files.read_parquet(folder / "series.parquet", columns=list(dict.fromkeys([SCALED, IMPUTED, *features])))
    return WindowSource.from_frames(series, files.read_parquet(folder / "index.parquet"), features, lookback, horizon)

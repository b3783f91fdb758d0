"""Stage 4, windowing (the Prefect task): plan this run's windows (forecasting/windows.py), incrementally on
an earlier run's where it can, and write them to the store (stores/windows.py)."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
from prefect import get_run_logger, task

from forecasting.columns import SERIES_ID
from forecasting.results import Filled, Validated, Windowed
from forecasting.settings import Settings
from forecasting.windows import SPLIT, TRAIN, VALIDATION, longest_length, plan_increment, plan_windows, resolve_sizes
from stores import files
from stores.windows import find_windows_base, window_settings, windows_dir, write_windows
from tasks.retry import retrying


def untrainable(reason: str, lookback: int, horizon: int, freq: str, validated: Validated,
                clean: pd.DataFrame, started: float, log: Any) -> Windowed:
    """The windows summary of a run with too little history to train: no model is trained and every series is
    published by the champion where it has the history, else by seasonal naive (a run never fails for this)."""
    log.warning("%s: no model is trained this run; each series is forecast by the champion where it can, else "
                "by seasonal naive. Lower --lookback/--horizon or supply more history to train one", reason)
    return Windowed.without_training(reason, lookback=lookback, horizon=horizon, frequency=freq,
                                     series=int(clean[SERIES_ID].nunique()), as_of=validated.as_of,
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
    base = find_windows_base(settings, filled.clean_path, freq, lookback, horizon, clean) \
        if filled.mode == "incremental" else None
    if base is not None:
        plan, processed = plan_increment(clean, base.series(), base.scalers,
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
    folder = windows_dir(settings.data_dir, run_date)
    n_train = int((plan.index[SPLIT] == TRAIN).sum())
    n_val = int((plan.index[SPLIT] == VALIDATION).sum())
    meta = {"lookback": lookback, "horizon": horizon, "frequency": freq, "cutoff": plan.cutoff.isoformat(),
            "features": plan.features, "train_windows": n_train, "val_windows": n_val,
            "series": int(plan.series[SERIES_ID].nunique()), "short_series": plan.short_series,
            "mode": "incremental" if base is not None else "full", "rows_processed": processed,
            "scalers_fitted_as_of": scalers_as_of, "settings": window_settings(settings, lookback, horizon),
            "as_of": validated.as_of}
    write_windows(folder, plan, meta)
    if n_train == 0 or n_val == 0:
        return untrainable(f"not enough history to train: {n_train} training and {n_val} validation windows "
                           f"with lookback {lookback} and horizon {horizon} (cutoff {plan.cutoff.isoformat()})",
                           lookback, horizon, freq, validated, clean, started, log)
    log.info("Windows: %d train + %d validation (lookback %d, horizon %d, %d features, cutoff %s) over %d series",
             n_train, n_val, lookback, horizon, len(plan.features), plan.cutoff.isoformat(), meta["series"])
    return Windowed(**meta, folder=str(folder), duration_s=round(time.perf_counter() - started, 3))

"""Hyper-parameter search by rolling-origin cross-validation, and applying its winner to daily runs.

Every combination of the grid (lookback, layers, units, dropout) is scored with the same backtest the
`backtest` command runs (mean MASE over the origins). The winner is stored as
`<data-dir>/models/tuned.json` (stores/registry.py); daily runs then use it for every one of those four
settings that the user has not set explicitly (CLI option, flow parameter, environment variable or
config file).
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from forecasting.backtest import backtest
from forecasting.settings import Settings

TUNED_FIELDS = ("lookback", "layers", "units", "dropout")


def default_grid(default_lookback: int) -> dict[str, list[Any]]:
    """A small grid sized for a weekly CPU job: 2 x 2 x 2 x 2 = 16 candidates."""
    return {"lookback": [default_lookback, 2 * default_lookback], "layers": [1, 2], "units": [32, 64],
            "dropout": [0.1, 0.2]}


def search(valid: pd.DataFrame, freq: str, settings: Settings, grid: dict[str, list[Any]], origins: int,
           log: Any = None) -> pd.DataFrame:
    """Backtest every grid combination; one row per candidate with its mean MASE, sMAPE, coverage, seconds."""
    names = list(grid)
    rows = []
    candidates = list(itertools.product(*(grid[name] for name in names)))
    for number, values in enumerate(candidates, start=1):
        candidate = dict(zip(names, values))
        started = time.perf_counter()
        summary = backtest(valid, freq, settings.model_copy(update=candidate), origins=origins).summary()
        rows.append({**candidate, "mase": summary["mase"], "smape": summary["smape"],
                     "coverage": summary["coverage"], "seconds": round(time.perf_counter() - started, 1)})
        if log:
            log.info("candidate %d/%d %s: MASE %.4f", number, len(candidates), candidate, summary["mase"])
    return pd.DataFrame(rows).sort_values(["mase", "seconds"], kind="stable").reset_index(drop=True)


def winner(results: pd.DataFrame, data_end: str) -> dict[str, Any]:
    """The search's best candidate as the payload stored for daily runs (`results` sorted best first)."""
    # Column by column: a whole row would upcast the integer settings to float.
    return {"config": {name: _plain(results[name].iloc[0]) for name in TUNED_FIELDS if name in results},
            "mase": float(results["mase"].iloc[0]), "data_end": data_end, "candidates": len(results),
            "tuned_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def apply_tuned(settings: Settings, tuned: dict[str, Any] | None) -> Settings:
    """`settings` with a stored tuning winner (`winner`'s payload, or None) applied to the fields the user did
    not set."""
    if not tuned:
        return settings
    update = {name: value for name, value in tuned["config"].items()
              if name in TUNED_FIELDS and name not in settings.model_fields_set}
    return Settings.model_validate({**settings.model_dump(), **update}) if update else settings


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value

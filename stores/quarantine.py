"""Quarantine: rows, series and files set aside with the reason, never dropped silently.

Records are written per run date and stage under `<data-dir>/quarantine/run_date=YYYY-MM-DD/<stage>.parquet`
(rejected files, which belong to no run date, under `<data-dir>/quarantine/ingest/<sha256-prefix>.parquet`)
with the columns below, so a person (or a later fix-up job) can see exactly what was held back and why.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from forecasting.quarantine import QUARANTINE_COLUMNS
from stores import files


def quarantine_path(data_dir: Path, run_date: date, stage: str) -> Path:
    """Where one stage's records for one run date go; a rerun of the same date replaces them."""
    return files.partition_dir(data_dir / "quarantine", run_date) / f"{stage}.parquet"


def write_quarantine(records: pd.DataFrame, target: Path) -> Path | None:
    """Write (replace) a quarantine file; an empty set removes a stale one from an earlier run."""
    if records.empty:
        target.unlink(missing_ok=True)
        return None
    files.write_parquet(records[QUARANTINE_COLUMNS], target)
    return target



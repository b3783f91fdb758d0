"""Quarantine: rows, series and files set aside with the reason, never dropped silently.

Records are written per run date and stage under `<data-dir>/quarantine/run_date=YYYY-MM-DD/<stage>.parquet`
(rejected files, which belong to no run date, under `<data-dir>/quarantine/ingest/<sha256-prefix>.parquet`)
with the columns below, so a person (or a later fix-up job) can see exactly what was held back and why.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from forecasting.columns import REASON, SERIES_ID, SOURCE_FILE, SOURCE_ROW, STAGE, TIMESTAMP, VALUE
from stores import files

QUARANTINE_COLUMNS = [STAGE, REASON, SERIES_ID, TIMESTAMP, VALUE, SOURCE_FILE, SOURCE_ROW]


def quarantine_records(rows: pd.DataFrame | None, *, stage: str, reason: str | pd.Series,
                       source_file: str | None = None) -> pd.DataFrame:
    """Quarantine records for `rows` (None: one record for a whole file) with a reason per row or shared."""
    if rows is None:
        rows = pd.DataFrame({SOURCE_FILE: [source_file]})
    records = pd.DataFrame(index=rows.index)
    records[STAGE] = stage
    records[REASON] = reason
    for column in (SERIES_ID, TIMESTAMP, VALUE, SOURCE_FILE, SOURCE_ROW):
        records[column] = rows[column] if column in rows else None
    records = records.reset_index(drop=True)
    if not isinstance(records[TIMESTAMP].dtype, pd.DatetimeTZDtype):
        records[TIMESTAMP] = pd.to_datetime(records[TIMESTAMP], utc=True)
    return records.astype(_DTYPES)


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


_DTYPES = {STAGE: "string", REASON: "string", SERIES_ID: "string", TIMESTAMP: "datetime64[us, UTC]",
           VALUE: "float64", SOURCE_FILE: "string", SOURCE_ROW: "Int64"}

"""Quarantine records: rows, series and files set aside with the stage and the reason, never dropped
silently (stores/quarantine.py writes them per run date and stage)."""

from __future__ import annotations

import pandas as pd

from forecasting.columns import REASON, SERIES_ID, SOURCE_FILE, SOURCE_ROW, STAGE, TIMESTAMP, VALUE


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


_DTYPES = {STAGE: "string", REASON: "string", SERIES_ID: "string", TIMESTAMP: "datetime64[us, UTC]",
           VALUE: "float64", SOURCE_FILE: "string", SOURCE_ROW: "Int64"}

"""Where realised accuracy lives: `<data-dir>/accuracy/run_date=YYYY-MM-DD/accuracy.parquet` (one partition
per scored publication, its run date) and the SQL table `forecast_accuracy` beside `forecasts`; plus the
drift mark a run leaves for the next one (`<data-dir>/accuracy/drift.json`).

A publication's rows are replaced as a unit when anything about them changed (new points, restated
actuals): SQL delete+insert in one transaction first, then the Parquet file renamed into place. Each run
rescores the publications it can and compares with Parquet, so a run killed between the two writes is
made whole by the next one, and a rerun that changes nothing writes nothing.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from forecasting.accuracy import (ABS_ERROR, ACCURACY_COLUMNS, COVERED, NAIVE_SCALED_ERROR, SCALED_ERROR, Y,
                                  merge_scores)
from forecasting.columns import (MODEL_VERSION, ORIGIN, RUN_DATE, SERIES_ID, STEP, TIMESTAMP, YHAT, YHAT_LOWER,
                                 YHAT_UPPER)
from stores import files
from stores.forecasts import sql_records

TABLE_NAME, PARQUET_NAME, DRIFT_FILE = "forecast_accuracy", "accuracy.parquet", "drift.json"

_metadata = sa.MetaData()
accuracy_table = sa.Table(
    TABLE_NAME, _metadata,
    sa.Column(SERIES_ID, sa.String(1024), nullable=False),
    sa.Column(RUN_DATE, sa.Date, nullable=False),
    sa.Column(ORIGIN, sa.DateTime(timezone=True), nullable=False),
    sa.Column(STEP, sa.Integer, nullable=False),
    sa.Column(TIMESTAMP, sa.DateTime(timezone=True), nullable=False),
    *[sa.Column(name, sa.Float, nullable=True) for name in (Y, YHAT, YHAT_LOWER, YHAT_UPPER, ABS_ERROR,
                                                            SCALED_ERROR, NAIVE_SCALED_ERROR)],
    sa.Column(COVERED, sa.Boolean, nullable=False),
    sa.Column(MODEL_VERSION, sa.String(128), nullable=False),
    sa.UniqueConstraint(RUN_DATE, SERIES_ID, STEP, name="forecast_accuracy_run_date_series_step"),
)

STORED = [c for c in ACCURACY_COLUMNS if c != RUN_DATE]  # the partition's run date is its folder name


def accuracy_path(data_dir: Path, run_date: date) -> Path:
    return files.partition_dir(data_dir / "accuracy", run_date) / PARQUET_NAME


def read_partition(data_dir: Path, run_date: date) -> pd.DataFrame:
    path = accuracy_path(data_dir, run_date)
    if not path.exists():
        return pd.DataFrame(columns=list(ACCURACY_COLUMNS))
    return files.read_parquet(path).assign(**{RUN_DATE: run_date.isoformat()})[list(ACCURACY_COLUMNS)]


def read_accuracy(data_dir: Path, run_dates: list[str] | None = None) -> pd.DataFrame:
    """Accuracy rows of the given publication run dates (ISO; default: every scored one)."""
    if run_dates is None:
        run_dates = scored_run_dates(data_dir)
    parts = [part for day in run_dates if len(part := read_partition(data_dir, date.fromisoformat(day)))]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(ACCURACY_COLUMNS))


def scored_run_dates(data_dir: Path) -> list[str]:
    """Publication run dates (ISO, oldest first) with stored accuracy."""
    return [day.isoformat() for day in sorted(files.run_dates(files.as_path(data_dir) / "accuracy"))
            if accuracy_path(data_dir, day).exists()]


def save_scores(data_dir: Path, database_url: str, fresh: pd.DataFrame) -> dict[str, int]:
    """Merge freshly scored rows into each publication's stored accuracy; rewrite (SQL, then Parquet) only
    the publications where something changed. Returns counts: new, restated, publications_updated."""
    counts = {"new": 0, "restated": 0, "publications_updated": 0}
    if fresh.empty:
        return counts
    engine = None
    try:
        for run_date, rows in fresh.groupby(fresh[RUN_DATE].astype(str), sort=True):
            day = date.fromisoformat(run_date)
            earlier = read_partition(data_dir, day)
            merged, new, restated = merge_scores(earlier, rows.assign(**{RUN_DATE: run_date}))
            if new == 0 and restated == 0 and _same(earlier, merged):
                continue
            if engine is None:
                engine = sa.create_engine(database_url)
                _metadata.create_all(engine, checkfirst=True)
            records = sql_records(merged[STORED], day)
            with engine.begin() as connection:
                connection.execute(sa.delete(accuracy_table).where(accuracy_table.c[RUN_DATE] == day))
                connection.execute(sa.insert(accuracy_table), records)
            files.write_parquet(merged[STORED].astype({STEP: "int32", COVERED: bool}), accuracy_path(data_dir, day))
            counts["new"] += new
            counts["restated"] += restated
            counts["publications_updated"] += 1
    finally:
        if engine is not None:
            engine.dispose()
    return counts


def _same(earlier: pd.DataFrame, merged: pd.DataFrame) -> bool:
    """Whether a publication's stored rows already equal what this run scored (values to 1e-9)."""
    if len(earlier) != len(merged):
        return False
    numbers = [Y, YHAT, YHAT_LOWER, YHAT_UPPER, SCALED_ERROR, NAIVE_SCALED_ERROR]
    a, b = earlier.reset_index(drop=True), merged.reset_index(drop=True)
    return bool(np.allclose(a[numbers].to_numpy("float64"), b[numbers].to_numpy("float64"), rtol=1e-9, atol=0.0,
                            equal_nan=True) and (a[COVERED].to_numpy(bool) == b[COVERED].to_numpy(bool)).all())


def read_sql_accuracy(database_url: str) -> pd.DataFrame:
    engine = sa.create_engine(database_url)
    try:
        _metadata.create_all(engine, checkfirst=True)
        with engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(sa.select(accuracy_table)).mappings().all())
    finally:
        engine.dispose()
    return frame


def drift_path(data_dir: Path) -> Path:
    return files.as_path(data_dir) / "accuracy" / DRIFT_FILE


def read_drift(data_dir: Path) -> dict[str, Any] | None:
    """The latest drift a run found ({"as_of", "champion", "reason", ...}); None when none ever was."""
    return files.read_json(drift_path(data_dir), default=None)


def save_drift(data_dir: Path, payload: dict[str, Any]) -> None:
    files.write_json(payload, drift_path(data_dir))

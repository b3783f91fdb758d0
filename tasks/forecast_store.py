"""Where published forecasts live: a Parquet dataset and a SQL table that always agree.

- Parquet: `<data-dir>/forecasts/run_date=YYYY-MM-DD/forecasts.parquet` (Hive partition on the run date,
  which readers see as a `run_date` column).
- SQL: table `forecasts` (any SQLAlchemy URL; SQLite by default) with the same columns plus `run_date`.

A run date's forecasts are replaced as a unit, never appended: the new Parquet file is staged under a
hidden name, the SQL delete+insert commits in one transaction, and only then is the file renamed into
place. If the database write fails, the staged file is discarded and both stores still hold the previous
publication. All SQL goes through SQLAlchemy Core with bound parameters.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from tasks import storage
from tasks.columns import (FORECAST_COLUMNS, MODEL_VERSION, ORIGIN, RUN_DATE, RUN_ID, SERIES_ID, STEP, TIMESTAMP,
                           YHAT, YHAT_LOWER, YHAT_UPPER)

TABLE_NAME = "forecasts"
PARQUET_NAME = "forecasts.parquet"

_metadata = sa.MetaData()
forecasts_table = sa.Table(
    TABLE_NAME, _metadata,
    sa.Column(SERIES_ID, sa.String(1024), nullable=False),
    sa.Column(ORIGIN, sa.DateTime(timezone=True), nullable=False),
    sa.Column(TIMESTAMP, sa.DateTime(timezone=True), nullable=False),
    sa.Column(STEP, sa.Integer, nullable=False),
    sa.Column(YHAT, sa.Float, nullable=False),
    sa.Column(YHAT_LOWER, sa.Float, nullable=False),
    sa.Column(YHAT_UPPER, sa.Float, nullable=False),
    sa.Column(MODEL_VERSION, sa.String(128), nullable=False),
    sa.Column(RUN_ID, sa.String(64), nullable=False),
    sa.Column(RUN_DATE, sa.Date, nullable=False),
    sa.UniqueConstraint(RUN_DATE, SERIES_ID, STEP, name="forecasts_run_date_series_step"),
)

PARQUET_SCHEMA = pa.schema([
    (SERIES_ID, pa.string()), (ORIGIN, pa.timestamp("us", tz="UTC")), (TIMESTAMP, pa.timestamp("us", tz="UTC")),
    (STEP, pa.int32()), (YHAT, pa.float64()), (YHAT_LOWER, pa.float64()), (YHAT_UPPER, pa.float64()),
    (MODEL_VERSION, pa.string()), (RUN_ID, pa.string()),
])


def parquet_path(data_dir: Path, run_date: date) -> Path:
    return storage.partition_dir(data_dir / "forecasts", run_date) / PARQUET_NAME


def publish_forecasts_atomically(forecasts: pd.DataFrame, run_date: date, data_dir: Path, database_url: str) -> int:
    """Replace the run date's forecasts in both stores; returns the rows written."""
    forecasts = forecasts[list(FORECAST_COLUMNS)].sort_values([SERIES_ID, STEP]).reset_index(drop=True)
    table = pa.Table.from_pandas(forecasts, schema=PARQUET_SCHEMA, preserve_index=False)
    with storage.atomic_path(parquet_path(data_dir, run_date)) as staged:
        pq.write_table(table, staged)
        replace_sql_rows(forecasts, run_date, database_url)
    return table.num_rows


def replace_sql_rows(forecasts: pd.DataFrame, run_date: date, database_url: str) -> None:
    """Delete the run date's rows and insert the new ones in a single transaction."""
    engine = sa.create_engine(database_url)
    try:
        _metadata.create_all(engine, checkfirst=True)
        records = [
            {**row, ORIGIN: row[ORIGIN].to_pydatetime(), TIMESTAMP: row[TIMESTAMP].to_pydatetime(),
             STEP: int(row[STEP]), RUN_DATE: run_date}
            for row in forecasts.to_dict("records")
        ]
        with engine.begin() as connection:
            connection.execute(sa.delete(forecasts_table).where(forecasts_table.c[RUN_DATE] == run_date))
            if records:
                connection.execute(sa.insert(forecasts_table), records)
    finally:
        engine.dispose()


def read_sql_forecasts(database_url: str, run_date: date | None = None) -> pd.DataFrame:
    """The forecasts table (optionally one run date) as a DataFrame with UTC timestamps."""
    engine = sa.create_engine(database_url)
    try:
        query = sa.select(forecasts_table)
        if run_date is not None:
            query = query.where(forecasts_table.c[RUN_DATE] == run_date)
        with engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(query).mappings().all())
    finally:
        engine.dispose()
    for column in (ORIGIN, TIMESTAMP):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def read_parquet_forecasts(data_dir: Path) -> pd.DataFrame:
    """Every published run date as one frame (with the `run_date` partition column)."""
    import pyarrow.dataset as ds

    root = storage.as_path(data_dir) / "forecasts"
    if not root.exists():
        return pd.DataFrame(columns=[*FORECAST_COLUMNS, RUN_DATE])
    if storage.is_local(root):
        return ds.dataset(root, format="parquet", partitioning="hive").to_table().to_pandas()
    return ds.dataset(root.path, format="parquet", partitioning="hive", filesystem=root.fs).to_table().to_pandas()


def published_run_dates(data_dir: Path, database_url: str) -> set[str]:
    """Run dates (ISO) whose forecasts are in both stores."""
    frame = read_parquet_forecasts(data_dir)
    in_parquet = set(frame[RUN_DATE].astype(str)) if RUN_DATE in frame and not frame.empty else set()
    if not in_parquet:  # nothing published yet (the data dir, and a SQLite file in it, may not exist)
        return set()
    engine = sa.create_engine(database_url)
    try:
        _metadata.create_all(engine, checkfirst=True)
        with engine.connect() as connection:
            in_sql = {str(d) for (d,) in connection.execute(sa.select(forecasts_table.c[RUN_DATE]).distinct())}
    finally:
        engine.dispose()
    return in_sql & in_parquet


def reconcile(data_dir: Path, database_url: str) -> list[str]:
    """Make the Parquet dataset agree with SQL, the commit point, for every run date; returns the run
    dates whose Parquet partition was rewritten.

    Publication commits SQL first and then renames the staged Parquet file into place. A process killed
    between the two leaves SQL with the new rows and Parquet with the old; the next publication calls this
    first and rewrites such partitions from SQL. (Parquet partitions with no SQL rows at all are left
    alone: that is a database that was replaced, not a half-finished publication.)
    """
    import pyarrow.dataset as ds

    engine = sa.create_engine(database_url)
    try:
        _metadata.create_all(engine, checkfirst=True)
        query = sa.select(forecasts_table.c[RUN_DATE], forecasts_table.c[RUN_ID], sa.func.count()).group_by(
            forecasts_table.c[RUN_DATE], forecasts_table.c[RUN_ID])
        with engine.connect() as connection:
            in_sql = {(str(d), r, int(n)) for d, r, n in connection.execute(query).all()}
    finally:
        engine.dispose()
    root = storage.as_path(data_dir) / "forecasts"
    in_parquet: set[tuple[str, str, int]] = set()
    if root.exists():
        options = {} if storage.is_local(root) else {"filesystem": root.fs}
        dataset = ds.dataset(root if storage.is_local(root) else root.path, format="parquet",
                             partitioning="hive", **options)
        frame = dataset.to_table(columns=[RUN_DATE, RUN_ID]).to_pandas() if dataset.files else pd.DataFrame()
        if not frame.empty:
            counts = frame.astype({RUN_DATE: str}).groupby([RUN_DATE, RUN_ID]).size()
            in_parquet = {(d, r, int(n)) for (d, r), n in counts.items()}
    rewritten = []
    for run_date in sorted({d for d, _, _ in in_sql}):
        if {x for x in in_sql if x[0] == run_date} == {x for x in in_parquet if x[0] == run_date}:
            continue
        day = date.fromisoformat(run_date)
        rows = read_sql_forecasts(database_url, day)[list(FORECAST_COLUMNS)].sort_values([SERIES_ID, STEP])
        table = pa.Table.from_pandas(rows.reset_index(drop=True), schema=PARQUET_SCHEMA, preserve_index=False)
        with storage.atomic_path(parquet_path(data_dir, day)) as staged:
            pq.write_table(table, staged)
        rewritten.append(run_date)
    return rewritten


def redacted_url(database_url: str) -> str:
    """The URL with any password masked, for logs."""
    return sa.engine.make_url(database_url).render_as_string(hide_password=True)

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

import contextlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from forecasting.columns import (FORECAST_COLUMNS, MODEL_VERSION, ORIGIN, RUN_DATE, RUN_ID, SERIES_ID, STEP, TIMESTAMP,
                                 YHAT, YHAT_LOWER, YHAT_UPPER)
from forecasting.settings import Settings
from stores import files

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
    return files.partition_dir(data_dir / "forecasts", run_date) / PARQUET_NAME


@contextlib.contextmanager
def staged_partition(forecasts: pd.DataFrame, run_date: date, data_dir: Path) -> Iterator[pd.DataFrame]:
    """Write the run date's Parquet file under a hidden name and yield the rows as written (contract
    columns, sorted); the file replaces the partition only if the block succeeds."""
    forecasts = forecasts[list(FORECAST_COLUMNS)].sort_values([SERIES_ID, STEP]).reset_index(drop=True)
    table = pa.Table.from_pandas(forecasts, schema=PARQUET_SCHEMA, preserve_index=False)
    with files.atomic_path(parquet_path(data_dir, run_date)) as staged:
        pq.write_table(table, staged)
        yield forecasts


def pending_marker(data_dir: Path, run_date: date) -> Path:
    """Marks a publication between its SQL commit and its Parquet rename (see `reconcile`)."""
    return files.as_path(data_dir) / "forecasts" / ".pending" / f"{run_date.isoformat()}.json"


def publish_forecasts_atomically(forecasts: pd.DataFrame, run_date: date, data_dir: Path, database_url: str) -> int:
    """Replace the run date's forecasts in both stores; returns the rows written."""
    marker = pending_marker(data_dir, run_date)
    with staged_partition(forecasts, run_date, data_dir) as written:
        files.write_json({"run_date": run_date.isoformat(), "rows": len(written)}, marker)
        replace_sql_rows(written, run_date, database_url)
    marker.unlink(missing_ok=True)  # both stores agree: nothing for reconcile to check
    return len(written)


def sql_records(forecasts: pd.DataFrame, run_date: date) -> list[dict[str, Any]]:
    """One dict of plain Python values per row, converted column by column (a per-row `to_dict` and
    per-value conversions cost more than the database insert itself)."""
    columns: dict[str, list[Any]] = {}
    for name in forecasts.columns:
        column = forecasts[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            columns[name] = list(column.dt.to_pydatetime())
        elif pd.api.types.is_integer_dtype(column.dtype):
            columns[name] = column.astype("int64").tolist()
        elif pd.api.types.is_float_dtype(column.dtype):
            columns[name] = column.astype("float64").tolist()
        else:
            columns[name] = column.astype(object).where(column.notna(), None).tolist()
    columns[RUN_DATE] = [run_date] * len(forecasts)
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*columns.values())]


def replace_sql_rows(forecasts: pd.DataFrame, run_date: date, database_url: str) -> None:
    """Delete the run date's rows and insert the new ones in a single transaction."""
    engine = sa.create_engine(database_url)
    try:
        _metadata.create_all(engine, checkfirst=True)
        records = sql_records(forecasts, run_date)
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


def forecast_dataset(data_dir: Path) -> Any:
    """The published Parquet files as one hive-partitioned pyarrow dataset; None while there are none."""
    import pyarrow.dataset as ds

    root = files.as_path(data_dir) / "forecasts"
    if not root.exists():
        return None
    where, filesystem = files.arrow_location(root)
    dataset = ds.dataset(where, format="parquet", partitioning="hive", filesystem=filesystem)
    return dataset if dataset.files else None


def read_parquet_forecasts(data_dir: Path) -> pd.DataFrame:
    """Every published run date as one frame (with the `run_date` partition column)."""
    dataset = forecast_dataset(data_dir)
    if dataset is None:
        return pd.DataFrame(columns=[*FORECAST_COLUMNS, RUN_DATE])
    return dataset.to_table().to_pandas()


def read_publications(data_dir: Path, since: date, before: date) -> pd.DataFrame:
    """The published forecasts of run dates from `since` up to (not including) `before`, with `run_date` as
    an ISO string; one partition read per run date, so the cost follows the window, not the history."""
    days = [day for day in sorted(files.run_dates(files.as_path(data_dir) / "forecasts")) if since <= day < before]
    parts = [files.read_parquet(path).assign(**{RUN_DATE: day.isoformat()})
             for day in days if (path := parquet_path(data_dir, day)).exists()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*FORECAST_COLUMNS, RUN_DATE])


def published_run_dates(data_dir: Path, database_url: str) -> set[str]:
    """Run dates (ISO) whose forecasts are in both stores."""
    in_parquet = set(read_parquet_forecasts(data_dir)[RUN_DATE].astype(str))
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
    """Make the Parquet dataset agree with SQL, the commit point, for every publication that may have
    been interrupted; returns the run dates whose Parquet partition was rewritten.

    Publication marks its run date as pending, commits SQL, renames the staged Parquet file into place
    and removes the mark. A process killed between the commit and the rename leaves SQL with the new rows,
    Parquet with the old, and the mark; the next publication calls this first and, for each marked run
    date only (so its cost does not grow with the history of publications), rewrites the partition from
    SQL if the two disagree. A mark left by a failed commit finds the stores agreeing and is just removed.
    """
    folder = files.as_path(data_dir) / "forecasts" / ".pending"
    marks = sorted(folder.iterdir(), key=lambda path: path.name) if folder.exists() else []
    rewritten = []
    for mark in marks:
        run_date = mark.name.removesuffix(".json")
        day = date.fromisoformat(run_date)
        in_sql = read_sql_forecasts(database_url, day)
        partition = parquet_path(data_dir, day)
        in_parquet = files.read_parquet(partition, columns=[RUN_ID]) if partition.exists() else pd.DataFrame()
        if len(in_sql) and _runs(in_sql) != _runs(in_parquet):
            with staged_partition(in_sql, day, data_dir):
                pass  # SQL already holds these rows: only the Parquet file is replaced
            rewritten.append(run_date)
        mark.unlink(missing_ok=True)
    return rewritten


def _runs(frame: pd.DataFrame) -> dict[str, int]:
    """Rows per run id: two stores holding the same publication agree on it."""
    return frame[RUN_ID].astype(str).value_counts().to_dict() if len(frame) else {}


def redacted_url(database_url: str) -> str:
    """The URL with any password masked, for logs."""
    return sa.engine.make_url(database_url).render_as_string(hide_password=True)


def resolve_database_url(settings: Settings) -> str:
    """The forecasts database URL: the value of the Prefect Secret block `database_secret` when set (read at
    the moment of use, never stored in settings, parameters or logs), else `database_url`."""
    if settings.database_secret:
        from prefect.blocks.system import Secret

        try:
            return Secret.load(settings.database_secret).get()
        except ValueError as exc:
            raise ValueError(f"database_secret {settings.database_secret!r}: no such Prefect Secret block "
                             f"({exc}); create it with Secret(value=URL).save(name)") from None
    return settings.database_url

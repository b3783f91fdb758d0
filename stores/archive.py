"""The raw archive and the series store: new input files archived unchanged, parsed (forecasting/parsing.py)
and added to the store, which later stages read.

Layout under the data dir:
- `raw/<hh>/<sha256>.<ext>`: every raw file ever seen, byte for byte, named by content hash;
- `raw/manifest.json`: one entry per content hash (original name, size, status, rows, reason), so a file is
  never ingested twice, whatever it is called;
- `series/<sha256>.parquet`: the parsed rows of each accepted file, with lineage columns.

The store keeps every parsed row, including rows whose timestamp or value did not parse: validation
decides what is usable and quarantines the rest with a reason, so nothing is dropped silently here.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from forecasting.columns import INGEST_SEQ, REQUIRED, SERIES_ID, SOURCE_FILE, SOURCE_ROW, TIMESTAMP
from forecasting.errors import PipelineError, RawFileError
from forecasting.parsing import PARQUET_SUFFIXES, SUFFIXES, describe_rejection, read_raw_file
from forecasting.quarantine import quarantine_records
from stores import files
from stores.quarantine import write_quarantine




MAX_NAMED_FILES = 10  # files a "no usable input" error names one by one


def discover_files(input_path: Path) -> tuple[list[Path], list[Path]]:
    """(CSV/Parquet files, other files) at `input_path` (a file, or a folder searched recursively, hidden and
    `_` files aside), each sorted by path: the listing order of the file system never matters."""
    input_path = files.as_path(input_path)
    if not input_path.exists():
        raise PipelineError(f"input path '{input_path}' does not exist; pass --input with a CSV/Parquet file or folder")
    if input_path.is_file():
        if input_path.suffix.lower() not in SUFFIXES:
            raise PipelineError(f"input file '{input_path}' is not .csv or .parquet")
        return [input_path], []
    visible = sorted(p for p in input_path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
    readable = [p for p in visible if p.suffix.lower() in SUFFIXES]
    return readable, [p for p in visible if p.suffix.lower() not in SUFFIXES]


def no_usable_input(input_path: Path, manifest: dict[str, dict[str, Any]], ignored: list[str]) -> str | None:
    """Why nothing from the input can be used, naming each file and its problem; None when a file was ingested.

    Lists every rejected file in the manifest (this run's and earlier ones': none of them made it into the
    store) and the files skipped for their type, at most `MAX_NAMED_FILES` of them.
    """
    if any(entry.get("status") == "ingested" for entry in manifest.values()):
        return None
    problems = [describe_rejection(entry["original_name"], entry.get("reason", "was rejected"))
                for entry in sorted(manifest.values(), key=lambda entry: entry["seq"])]
    problems += [f"{name} is neither CSV nor Parquet" for name in ignored]
    if not problems:
        return f"no usable input: {input_path} holds no CSV or Parquet file"
    more = len(problems) - MAX_NAMED_FILES
    named = "; ".join(problems[:MAX_NAMED_FILES]) + (f"; and {more} more file(s)" if more > 0 else "")
    return f"no usable input: {named}"


@dataclass
class IngestSummary:
    files_seen: int = 0
    files_new: int = 0
    files_already_ingested: int = 0
    files_rejected: list[dict[str, str]] = field(default_factory=list)
    files_ignored: list[str] = field(default_factory=list)  # neither CSV nor Parquet: not read, not archived
    unusable: str | None = None  # why the store holds no usable file at all (see no_usable_input), else None
    rows_new: int = 0
    notes: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ingest(input_path: Path, data_dir: Path, log=None) -> IngestSummary:
    """Archive and parse every file under `input_path` not yet in the manifest."""
    data_dir = files.as_path(data_dir)
    started = time.perf_counter()
    summary = IngestSummary()
    manifest_path = data_dir / "raw" / "manifest.json"
    manifest = read_manifest(data_dir)
    readable, ignored = discover_files(input_path)
    for path in ignored:
        summary.files_ignored.append(path.name)
        if log:
            log.warning("Ignored file '%s': it is neither CSV nor Parquet (%s); give it a .csv or .parquet "
                        "name if it is one", path.name, path.suffix or "no extension")
    for path in readable:
        summary.files_seen += 1
        digest = files.content_hash(path)
        if digest in manifest:
            summary.files_already_ingested += 1
            continue
        suffix = ".parquet" if path.suffix.lower() in PARQUET_SUFFIXES else ".csv"
        files.copy_file(path, data_dir / "raw" / digest[:2] / f"{digest}{suffix}")
        entry: dict[str, Any] = {
            "original_name": path.name, "size": path.stat().st_size, "seq": len(manifest),
            "ingested_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        try:
            rows, notes = read_raw_file(path)
        except RawFileError as exc:
            entry.update(status="rejected", reason=exc.reason, rows=0)
            summary.files_rejected.append({"file": path.name, "sha256": digest, "reason": exc.reason})
            write_quarantine(quarantine_records(None, stage="ingest", reason=str(exc), source_file=digest),
                             data_dir / "quarantine" / "ingest" / f"{digest[:16]}.parquet")
            if log:
                log.warning("Rejected %s", exc)
        else:
            rows[SOURCE_FILE] = digest
            files.write_parquet(rows, data_dir / "series" / f"{digest}.parquet")
            newest = rows[TIMESTAMP].max()
            # The newest timestamp lets an incremental validation skip files with nothing new for it.
            entry.update(status="ingested", rows=len(rows), max_timestamp=newest.isoformat() if pd.notna(newest) else None)
            summary.files_new += 1
            summary.rows_new += len(rows)
            summary.notes.extend(notes)
            for note in notes:
                if log:
                    log.warning(note)
        manifest[digest] = entry
        # Written after each file so a crash or retry never ingests a file twice nor forgets one.
        files.write_json(manifest, manifest_path)
    summary.unusable = no_usable_input(input_path, manifest, summary.files_ignored)
    summary.duration_s = round(time.perf_counter() - started, 3)
    return summary


def read_manifest(data_dir: Path) -> dict[str, dict[str, Any]]:
    """The store's manifest: one entry per content hash (see the module docstring)."""
    return files.read_json(files.as_path(data_dir) / "raw" / "manifest.json", default={})


def read_series_store(data_dir: Path, wanted: Callable[[dict[str, Any]], bool] | None = None,
                      series: list[str] | None = None,
                      manifest: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """Stored rows of accepted files, with INGEST_SEQ giving the files' arrival order. `wanted` picks
    manifest entries to read (default: all); `series` keeps only those series' rows (filtered as Parquet
    is read); `manifest` saves reading it again when the caller has it."""
    manifest = read_manifest(data_dir) if manifest is None else manifest
    parts = []
    for digest, entry in sorted(manifest.items(), key=lambda item: item[1]["seq"]):
        if entry.get("status") != "ingested" or (wanted is not None and not wanted(entry)):
            continue
        filters = [(SERIES_ID, "in", list(series))] if series is not None else None
        part = files.read_parquet(data_dir / "series" / f"{digest}.parquet", filters=filters)
        part[INGEST_SEQ] = entry["seq"]
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=[*REQUIRED, SOURCE_FILE, SOURCE_ROW, INGEST_SEQ])
    return pd.concat(parts, ignore_index=True)


def store_newest(manifest: dict[str, dict[str, Any]]) -> pd.Timestamp | None:
    """The newest timestamp in the store, from the manifest; None when an entry does not record it."""
    stamps = [entry.get("max_timestamp", "unknown") for entry in manifest.values() if entry.get("status") == "ingested"]
    if not stamps or "unknown" in stamps:
        return None
    known = [pd.Timestamp(stamp) for stamp in stamps if stamp]
    return max(known) if known else None


def has_news(entry: dict[str, Any], base: Any) -> bool:
    """Whether a manifest entry may hold rows new since `base` (a later file, or rows after its as-of)."""
    if int(entry["seq"]) > base.max_seq:
        return True
    newest = entry.get("max_timestamp", "unknown")
    return newest == "unknown" or (newest is not None and pd.Timestamp(newest) > base.as_of)


def store_position(manifest: dict[str, dict[str, Any]]) -> int:
    """The highest ingest sequence number in the manifest (-1 for an empty store)."""
    return max((int(entry["seq"]) for entry in manifest.values()), default=-1)

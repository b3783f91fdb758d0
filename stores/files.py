"""Atomic file I/O, the base of the storage seam: Parquet/JSON writes, content hashes and partition paths.

Paths are local paths or fsspec URLs (`memory://`, `file://`, `s3://bucket/prefix` with s3fs installed,
...), as `upath.UPath` objects: a local path is a `pathlib.Path`, so local code stays plain pathlib.

Readers never see a half-written file. Locally, every write goes to a hidden temporary name in the target
folder (pyarrow datasets skip names starting with "." or "_") and is renamed into place, which POSIX makes
atomic. On an fsspec filesystem the file is written locally first and uploaded in one `put_file`: object
stores make an object visible only once its upload is complete. (A folder uploads file by file there;
the model registry only points at a version once it is whole, see stores/registry.py.)
No path here is ever built from a series id or any other value that comes from the data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from forecasting.errors import PipelineError
from forecasting.paths import as_path, is_local  # noqa: F401 - the seam's callers use files.as_path

HASH_CHUNK = 1 << 20


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def content_hash(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with as_path(path).open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def partition_dir(root: Path, run_date: date) -> Path:
    """`<root>/run_date=YYYY-MM-DD`: the Hive-style partition every per-run store uses."""
    return root / f"run_date={run_date.isoformat()}"


def run_dates(root: Path) -> list[date]:
    """Run dates with a partition under `root`, newest first."""
    root = as_path(root)
    if not root.exists():
        return []
    found = []
    for child in root.iterdir():
        name = child.name
        if name.startswith("run_date="):
            try:
                found.append(date.fromisoformat(name.split("=", 1)[1]))
            except ValueError:
                continue
    return sorted(found, reverse=True)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a hidden temporary path beside `target`; rename it onto `target` only if the block succeeds.

    For an fsspec `target` the temporary file is local and is uploaded in one piece after the block.
    """
    target = as_path(target)
    if not is_local(target):
        with tempfile.TemporaryDirectory(prefix="lstm-forecast-upload-") as scratch:
            staged = Path(scratch) / target.name
            yield staged
            target.parent.mkdir(parents=True, exist_ok=True)
            target.fs.put_file(str(staged), target.path)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; published files should be readable as usual
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(frame: pd.DataFrame, target: Path) -> int:
    """Write `frame` to `target` atomically; returns the row count written."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, use_dictionary=dictionary_columns(table.schema))
    return table.num_rows


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth dictionary encoding: ids, timestamps, flags (few distinct values). Measured values
    rarely repeat: dictionary-encoding them doubled the write time of the window store and made the
    files larger."""
    def repeats(kind: pa.DataType) -> bool:
        return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind)
                or pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_boolean(kind))

    return [field.name for field in schema if repeats(field.type)]


def arrow_location(path: Path | str) -> tuple[Any, Any]:
    """(path, filesystem) the way pyarrow takes them: a local path and None, or a URL's path and its fsspec
    filesystem."""
    path = as_path(path)
    return (path, None) if is_local(path) else (path.path, path.fs)


def read_parquet(path: Path | str, columns: list[str] | None = None, filters: Any = None) -> pd.DataFrame:
    where, filesystem = arrow_location(path)
    return pq.read_table(where, columns=columns, filters=filters, filesystem=filesystem).to_pandas()


def write_json(payload: Any, target: Path) -> None:
    """Write JSON atomically (sorted keys, so reruns produce identical bytes)."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str), encoding="utf-8")


def read_json(path: Path, default: Any = None) -> Any:
    path = as_path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def copy_file(source: Path, target: Path) -> None:
    """Copy bytes unchanged, atomically (used to archive raw files)."""
    with atomic_path(target) as tmp, as_path(source).open("rb") as reader, open(tmp, "wb") as writer:
        shutil.copyfileobj(reader, writer, HASH_CHUNK)


def remove_tree(path: Path | str) -> None:
    """Delete a folder and everything under it, if it exists."""
    path = as_path(path)
    if is_local(path):
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.fs.rm(path.path, recursive=True)


def file_signature(path: Path | str) -> tuple[int, int]:
    """(size, modification time in ns) of a file: what changes when it is rewritten in place."""
    info = as_path(path).stat()
    return int(info.st_size), int(getattr(info, "st_mtime_ns", 0) or getattr(info, "st_mtime", 0) * 1e9)


@contextlib.contextmanager
def local_file(path: Path | str) -> Iterator[Path]:
    """`path` as a file on the local disk, for libraries that only open local files (Keras models)."""
    path = as_path(path)
    if is_local(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="lstm-forecast-download-") as scratch:
        local = Path(scratch) / path.name
        path.fs.get_file(path.path, str(local))
        yield local


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a hidden temporary folder beside `target`; it becomes `target` only if the block succeeds.

    For an fsspec `target` the folder is built locally and its files uploaded after the block.
    """
    target = as_path(target)
    if not is_local(target):
        with tempfile.TemporaryDirectory(prefix="lstm-forecast-upload-") as scratch:
            yield Path(scratch)
            if target.exists():
                raise FileExistsError(f"{target} already exists; refusing to overwrite it")
            for file in sorted(p for p in Path(scratch).rglob("*") if p.is_file()):
                destination = target / file.relative_to(scratch).as_posix()
                destination.parent.mkdir(parents=True, exist_ok=True)
                target.fs.put_file(str(file), destination.path)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        if target.exists():
            raise FileExistsError(f"{target} already exists; refusing to overwrite it")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


STAGING_DIR_NAMES = (".chunks",)  # stores/snapshots.chunk_staging


def sweep_staged(root: Path) -> list[Path]:
    """Delete what a killed process left staged under `root`: hidden `.<name>.<random>.tmp` files and
    folders of atomic writes, and fan-out staging folders. Readers never saw them (hidden names); this
    only reclaims the space. Call it only while holding the run lock. Returns what was removed."""
    removed = []
    for folder, dirs, files in os.walk(root):
        for name in [*files, *dirs]:
            if name.startswith(".") and (name.endswith(".tmp") or name in STAGING_DIR_NAMES):
                path = Path(folder) / name
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
        dirs[:] = [d for d in dirs if not (d.startswith(".") and (d.endswith(".tmp") or d in STAGING_DIR_NAMES))]
    return removed


@contextlib.contextmanager
def exclusive_run(data_dir: Path) -> Iterator[None]:
    """Hold `<data-dir>/.run.lock` for the duration of a run; a second run on the same data dir is refused.

    Two runs interleaving writes in one data dir could publish a mix of both, so the second one stops
    at once with a message naming the holder. The OS drops the lock if the holding process dies.
    Object stores have no such locks: for a data dir given as a URL the lock file lives in this machine's
    temporary folder, keyed by the URL, so it keeps out runs on this machine only.
    """
    import fcntl

    data_dir = as_path(data_dir)
    if is_local(data_dir):
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / ".run.lock"
    else:
        locks = Path(tempfile.gettempdir()) / "lstm-forecast-locks"
        locks.mkdir(exist_ok=True)
        path = locks / f"{hashlib.sha256(str(data_dir).encode()).hexdigest()[:24]}.lock"
    handle = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise PipelineError(f"data dir '{data_dir}' is in use by another run ({holder}); wait for it to "
                                "finish or use another --data-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
        handle.flush()
        if is_local(data_dir):
            sweep_staged(data_dir)  # only this run writes here now: anything staged is a dead run's
        yield
    finally:
        handle.close()

"""The pipeline's only file I/O seam: atomic Parquet/JSON writes, content hashes and partition paths.

Readers never see a half-written file: every write goes to a hidden temporary name in the target folder
(pyarrow datasets skip names starting with "." or "_") and is renamed into place, which POSIX makes atomic.
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

HASH_CHUNK = 1 << 20


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def content_hash(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def partition_dir(root: Path, run_date: date) -> Path:
    """`<root>/run_date=YYYY-MM-DD`: the Hive-style partition every per-run store uses."""
    return root / f"run_date={run_date.isoformat()}"


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a hidden temporary path beside `target`; rename it onto `target` only if the block succeeds."""
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
        pq.write_table(table, tmp)
    return table.num_rows


def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    return pq.read_table(path, columns=columns).to_pandas()


def write_json(payload: Any, target: Path) -> None:
    """Write JSON atomically (sorted keys, so reruns produce identical bytes)."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str), encoding="utf-8")


def read_json(path: Path, default: Any = None) -> Any:
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def copy_file(source: Path, target: Path) -> None:
    """Copy bytes unchanged, atomically (used to archive raw files)."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a hidden temporary folder beside `target`; it becomes `target` only if the block succeeds."""
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


@contextlib.contextmanager
def exclusive_run(data_dir: Path) -> Iterator[None]:
    """Hold `<data-dir>/.run.lock` for the duration of a run; a second run on the same data dir is refused.

    Two runs interleaving writes in one data dir could publish a mix of both, so the second one stops
    at once with a message naming the holder. The OS drops the lock if the holding process dies.
    """
    import fcntl

    from tasks.errors import PipelineError

    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ".run.lock"
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
        yield
    finally:
        handle.close()

"""Path values from settings and arguments: a local path or an fsspec URL. Only builds path objects; reading
and writing them is the storage seam's job (stores/files.py)."""

from __future__ import annotations

import os
from pathlib import Path

from upath import UPath


def as_path(value: str | os.PathLike) -> Path:
    """A local path (a `pathlib.Path`, `~` expanded) or, for a URL like `memory://store`, an fsspec path."""
    if isinstance(value, UPath):
        return value
    text = os.fspath(value) if not isinstance(value, str) else value
    return UPath(text) if "://" in text else UPath(os.path.expanduser(text))


def is_local(path: Path) -> bool:
    """True for paths on this machine's file system (plain or `UPath` local paths, not `file://` URLs)."""
    return isinstance(path, Path)

"""Durable file operations: what "the data is on disk" means in rtbank.

A file is durable after: write to a temporary name in the target directory → fsync the file → rename to
its final name → fsync the directory. Only then may a service answer success (DICOM status, HTTP 2xx,
work marked done).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_SAFE_PART = re.compile(r"[^A-Za-z0-9._-]+")


def fsync_path(path: Path) -> None:
    """fsync a file or directory by path (any descriptor of the inode flushes it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dirs(dirs: set[Path] | list[Path]) -> None:
    for directory in sorted(set(dirs)):
        fsync_path(directory)


def durable_rename(src: Path, dst: Path, *, sync_file: bool = True) -> None:
    """Move ``src`` to ``dst`` (same file system) so that the move survives a crash."""
    if sync_file:
        fsync_path(src)
    os.rename(src, dst)
    fsync_path(dst.parent)


def write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
    fsync_path(path.parent)


def free_bytes(path: Path) -> int:
    """Bytes available to unprivileged writers on the file system holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def safe_name(value: str, fallback: str = "_", limit: int = 64) -> str:
    """A file-name component built from an untrusted value: no separators, no dot-only names.

    Used where a readable name helps a person (exports); storage keys never use untrusted values at all.
    """
    cleaned = _SAFE_PART.sub("_", value.strip()).strip("._")[:limit]
    return cleaned or fallback

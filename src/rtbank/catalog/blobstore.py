"""Where DICOM files live: a small put/get/exists/delete interface keyed by rtbank-made keys.

Keys never come from network values: they are ``YYYY/MM/DD/HH/<sha256>.dcm`` (time of storage, hash of
the file), so a batch of ingested files touches one or two directories and one directory fsync each.
The local implementation is the default; an S3-compatible store can implement the same protocol.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol

from django.conf import settings

from rtbank.fileio import fsync_dirs, fsync_path


class BlobStore(Protocol):
    def put_file(self, src: Path, key: str) -> None:
        """Store the file at ``src`` under ``key`` (``src`` stays in place); durable after :meth:`sync`."""
        ...

    def sync(self) -> None:
        """Make every put since the last sync durable."""
        ...

    def open(self, key: str) -> BinaryIO: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def local_path(self, key: str) -> Path | None:
        """A local file path for ``key`` when the store has one (for pydicom and mmap), else ``None``."""
        ...


def make_key(sha256: str, when: dt.datetime) -> str:
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise ValueError("blob keys are made from a hex SHA-256")
    return f"{when:%Y/%m/%d/%H}/{sha256}.dcm"


class LocalBlobStore:
    """Files under a root directory; hard links from the spool when on the same file system."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirty: set[Path] = set()

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError("blob key escapes the store")
        return path

    def put_file(self, src: Path, key: str) -> None:
        dst = self.path(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            return  # content-addressed: same key, same bytes
        try:
            os.link(src, dst)
        except FileExistsError:
            return
        except OSError:
            # Different file system: copy to a temporary name, fsync, rename.
            tmp = dst.with_name(f".{dst.name}.tmp")
            shutil.copyfile(src, tmp)
            fsync_path(tmp)
            os.replace(tmp, dst)
        self._dirty.add(dst.parent)

    def sync(self) -> None:
        fsync_dirs(self._dirty)
        self._dirty.clear()

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            pass

    def local_path(self, key: str) -> Path | None:
        return self.path(key)


def blob_store() -> LocalBlobStore:
    return LocalBlobStore(Path(settings.BLOB_DIR))

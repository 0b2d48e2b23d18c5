"""The spool: the transit area between the ways in (receiver, import, upload) and the workers.

Layout under ``RTBANK_HOME/spool`` (one file system, so renames are atomic):

``incoming/``  temporary files being written (never read by workers);
``ready/``     complete, fsynced items ``<source>.<seq>.dcm`` plus one ``<source>.json`` per source
               (an association or an import run) saying who sent them;
``queued/``    items a worker has registered as work rows (``kind="ingest"``, key = file name).

An item reaches ``ready/`` only by: write in ``incoming/`` → fsync → rename → fsync of ``ready/``. That is
the receiver's durable record: after it, success may be answered. File names are made here, never from
network values.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from rtbank.fileio import fsync_path, write_durably

ITEM_NAME = re.compile(r"^[a-z][0-9a-f]+\.[0-9]{6,}\.dcm$")
_counter = itertools.count()
_lock = threading.Lock()


@dataclass(frozen=True)
class SpoolDirs:
    root: Path

    @property
    def incoming(self) -> Path:
        return self.root / "incoming"

    @property
    def ready(self) -> Path:
        return self.root / "ready"

    @property
    def queued(self) -> Path:
        return self.root / "queued"

    def create(self) -> SpoolDirs:
        for directory in (self.incoming, self.ready, self.queued):
            directory.mkdir(parents=True, exist_ok=True)
        return self


def spool_dirs() -> SpoolDirs:
    return SpoolDirs(Path(settings.SPOOL_DIR)).create()


def new_source_id(prefix: str) -> str:
    """A unique id for an association or import run: ``a``/``i``/``u`` + time, pid and a counter in hex."""
    with _lock:
        n = next(_counter)
    return f"{prefix}{time.time_ns():x}{os.getpid():x}{n:x}"


def item_name(source_id: str, seq: int) -> str:
    return f"{source_id}.{seq:06d}.dcm"


def write_source(dirs: SpoolDirs, source_id: str, info: dict[str, Any]) -> None:
    """Durably record who sent the items of ``source_id`` (before the first item is answered)."""
    write_durably(dirs.ready / f"{source_id}.json", json.dumps(info, sort_keys=True).encode())


def read_source(dirs: SpoolDirs, source_id: str) -> dict[str, Any]:
    try:
        return json.loads((dirs.ready / f"{source_id}.json").read_text())
    except (OSError, ValueError):
        return {}


def publish(tmp: Path, dirs: SpoolDirs, name: str) -> Path:
    """Make a fully written temporary file a spool item: fsync → rename into ready/ → fsync ready/."""
    fsync_path(tmp)
    dst = dirs.ready / name
    os.rename(tmp, dst)
    fsync_path(dirs.ready)
    return dst


def source_of(item: str) -> str:
    return item.split(".", 1)[0]

"""An event writer for latency-critical threads (the DICOM receive path): log calls enqueue, one thread
writes rows to the database in batches, so no association thread ever waits on SQL."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from django.db import DatabaseError, close_old_connections

logger = logging.getLogger("rtbank.events")


class BackgroundWriter:
    def __init__(self, flush_s: float = 0.5) -> None:
        self._queue: queue.Queue[Callable[[], object] | None] = queue.Queue()
        self._flush_s = flush_s
        self._thread = threading.Thread(target=self._run, name="event-writer", daemon=True)

    def start(self) -> BackgroundWriter:
        self._thread.start()
        return self

    def submit(self, write: Callable[[], object]) -> None:
        """Queue a callable that writes rows (e.g. ``lambda: log_event(...)``)."""
        self._queue.put(write)

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            close_old_connections()
            try:
                item()
            except DatabaseError as exc:
                logger.error("could not write a log row: %s", exc)
            except Exception:  # noqa: BLE001 - logging must never take the receiver down
                logger.exception("log writer failed")

"""The worker loop: run pollers (spool, scheduler), claim rows by kind, run handlers, heartbeat."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from rtbank.work import services
from rtbank.work.models import WorkerHeartbeat
from rtbank.work.registry import KINDS, POLLERS, Batch, LeaseLost, PermanentError, WorkKind

logger = logging.getLogger("rtbank.worker")
HEARTBEAT_S = 5.0
STOP_GRACE_S = 10.0  # s a stopping worker may spend finishing its batch before it abandons it


class Abandoned(BaseException):
    """Raised in the main thread when a stop request outlasts the grace period (or is repeated)."""


class Worker:
    def __init__(self, kinds: list[str] | None = None, poll_s: float = 0.5) -> None:
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.kinds = [KINDS[k] for k in kinds] if kinds else sorted(KINDS.values(), key=lambda k: k.order)
        self.poll_s = poll_s
        self.stop = threading.Event()
        self.processed = 0
        self._last_poll: dict[str, float] = {}
        self._last_beat = 0.0
        self._started = timezone.now()
        self._grace: threading.Timer | None = None

    def install_signal_handlers(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM/SIGINT: finish the current batch and stop. A batch still running ``grace_s`` later (a long
        calculation), or a second signal, is abandoned: its transaction rolls back, its rows are handed back
        to the queue, and the process exits — nothing half-done is ever committed, so this is always safe."""

        def on_signal(*_: object) -> None:
            if self.stop.is_set():
                raise Abandoned
            self.stop.set()
            self._grace = threading.Timer(grace_s, os.kill, (os.getpid(), signal.SIGTERM))
            self._grace.daemon = True
            self._grace.start()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)

    def run(self, *, until_idle: bool = False) -> int:
        """Loop until stopped (or, with ``until_idle``, until no work is left). Returns rows processed."""
        logger.info("worker %s started: %s", self.id, ", ".join(k.name for k in self.kinds))
        threading.Thread(target=self._renew_leases, name="lease-renewal", daemon=True).start()
        try:
            self._loop(until_idle)
        except Abandoned:
            logger.warning(
                "worker %s: stop requested again or grace period over; current batch abandoned", self.id
            )
        self.stop.set()  # also ends the lease-renewal thread of a worker that ran until idle
        if self._grace is not None:
            self._grace.cancel()  # stopped in time: no second signal
        logger.info("worker %s stopped after %d rows", self.id, self.processed)
        return self.processed

    def _loop(self, until_idle: bool) -> None:
        while not self.stop.is_set():
            if not connection.in_atomic_block:
                # Drops a broken or outdated connection. Not inside a caller's transaction (a test, a
                # command running the worker until idle): closing would end that transaction.
                close_old_connections()
            try:
                self._run_pollers(draining=until_idle)
                did_work = self.step()
                self._heartbeat()
            except DatabaseError as exc:
                # A locked or restarting database is transient: wait and go on, never die.
                logger.warning("database error in worker loop: %s", exc)
                did_work = False
                self.stop.wait(min(5.0, self.poll_s * 4))
            if not did_work:
                if until_idle and not self._pending_now():
                    break
                self.stop.wait(self.poll_s)

    def step(self) -> bool:
        """Claim and run one batch of the first kind that has work."""
        for kind in self.kinds:
            items = services.claim([kind.name], self.id, kind.batch_size, kind.lease_s)
            if items:
                self._run_batch(kind, items)
                return True
        return False

    def _run_batch(self, kind: WorkKind, items: list) -> None:
        batch = Batch(worker_id=self.id)
        try:
            if kind.prepare:
                kind.prepare(items, batch)
            self._run_in_transaction(kind, items, batch)
        except (DatabaseError, Abandoned):
            # The batch is rolled back as a whole; hand the rows back instead of keeping (and renewing)
            # their leases, so this or another worker retries them at once.
            services.release(items, self.id)
            raise
        for hook in batch.after_commit:
            try:
                hook()
            except OSError as exc:
                logger.warning("after-commit clean-up failed (will be retried by the janitor): %s", exc)
        self.processed += len(items)

    def _run_in_transaction(self, kind: WorkKind, items: list, batch: Batch) -> None:
        with transaction.atomic():
            for item in items:
                try:
                    with transaction.atomic():
                        result = kind.handler(item, batch)
                        if not services.complete(item, self.id, result=result):
                            raise LeaseLost(item.pk)
                except LeaseLost:
                    logger.warning("%s %s: lease lost to another worker; rolled back", kind.name, item.key)
                except PermanentError as exc:
                    services.fail(item, self.id, str(exc), retry=False)
                except DatabaseError:
                    raise  # the whole batch is retried after the lease; nothing half-done is committed
                except Exception as exc:  # noqa: BLE001 - one bad row must never stop the worker
                    logger.exception("%s %s failed", kind.name, item.key)
                    services.fail(item, self.id, f"{type(exc).__name__}: {exc}", backoff=kind.backoff)
            for hook in batch.before_commit:
                hook()

    def _renew_leases(self) -> None:
        interval = max(0.5, settings.WORK_LEASE_S / 3)
        while not self.stop.wait(interval):
            try:
                services.renew_leases(self.id)
            except DatabaseError as exc:
                logger.warning("could not renew leases: %s", exc)
            finally:
                close_old_connections()

    def _run_pollers(self, draining: bool = False) -> None:
        now = time.monotonic()
        for poller in POLLERS.values():
            if draining and not poller.when_draining:
                continue
            if now - self._last_poll.get(poller.name, -1e9) >= poller.every_s:
                self._last_poll[poller.name] = now
                try:
                    poller.func(self.id)
                except DatabaseError:
                    raise
                except Exception:  # noqa: BLE001
                    logger.exception("poller %s failed", poller.name)

    def _pending_now(self) -> bool:
        from django.db.models import Q

        from rtbank.work.models import WorkItem, WorkState

        now = timezone.now()
        due = Q(state=WorkState.PENDING) & (Q(not_before__isnull=True) | Q(not_before__lte=now))
        running = Q(state=WorkState.IN_PROGRESS)
        return WorkItem.objects.filter(kind__in=[k.name for k in self.kinds]).filter(due | running).exists()

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat < HEARTBEAT_S:
            return
        self._last_beat = now
        WorkerHeartbeat.objects.update_or_create(
            worker_id=self.id,
            defaults={
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started_at": self._started,
                "last_seen": timezone.now(),
                "processed": self.processed,
            },
        )


def run_until_idle(kinds: list[str] | None = None) -> int:
    """Process everything that is due, then return (tests, `rtbank import --wait`)."""
    worker = Worker(kinds, poll_s=0.05)
    return worker.run(until_idle=True)

"""Creating, claiming and finishing work rows.

The database is the source of truth for work. Claims use ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL,
so N workers never take the same row; on SQLite every write transaction is ``IMMEDIATE`` (one writer at a
time, see :mod:`rtbank.config`), which gives the same guarantee.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from rtbank.work.models import WorkItem, WorkState

BACKOFF_BASE_S = 5.0
BACKOFF_CAP_S = 3600.0


def enqueue(
    kind: str,
    key: str,
    payload: dict[str, Any] | None = None,
    *,
    priority: int = 0,
    rearm: bool = True,
    max_attempts: int | None = None,
) -> WorkItem:
    """Create the work row ``(kind, key)``, or re-arm it when it already exists.

    Re-arming a finished row makes it pending again (new input, e.g. a late object of the patient); a row
    that is running gets ``rerun`` so it runs once more when the current run ends.
    """
    fields = {
        "payload": payload or {},
        "priority": priority,
        "max_attempts": max_attempts or settings.WORK_MAX_ATTEMPTS,
    }
    with transaction.atomic():
        item, created = WorkItem.objects.get_or_create(kind=kind, key=key, defaults=fields)
        if created or not rearm:
            return item
        if item.state == WorkState.IN_PROGRESS:
            WorkItem.objects.filter(pk=item.pk).update(rerun=True, payload=fields["payload"] or item.payload)
        else:
            WorkItem.objects.filter(pk=item.pk).update(
                state=WorkState.PENDING,
                attempts=0,
                not_before=None,
                last_error="",
                payload=fields["payload"] or item.payload,
            )
        item.refresh_from_db()
        return item


def enqueue_many(kind: str, rows: Iterable[tuple[str, dict[str, Any]]], *, priority: int = 0) -> int:
    """Create many rows at once; rows whose key exists are left alone. Returns the number offered."""
    items = [
        WorkItem(
            kind=kind, key=key, payload=payload, priority=priority, max_attempts=settings.WORK_MAX_ATTEMPTS
        )
        for key, payload in rows
    ]
    if items:
        WorkItem.objects.bulk_create(items, ignore_conflicts=True, batch_size=500)
    return len(items)


def claim(kinds: list[str], worker_id: str, limit: int, lease_s: int | None = None) -> list[WorkItem]:
    """Claim up to ``limit`` runnable rows of ``kinds`` (pending and due, or with an expired lease)."""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=lease_s or settings.WORK_LEASE_S)
    runnable = Q(state=WorkState.PENDING) & (Q(not_before__isnull=True) | Q(not_before__lte=now))
    expired = Q(state=WorkState.IN_PROGRESS, lease_until__lt=now)
    with transaction.atomic():
        qs = WorkItem.objects.filter(Q(kind__in=kinds) & (runnable | expired)).order_by("-priority", "id")
        if connection.vendor == "postgresql":
            qs = qs.select_for_update(skip_locked=True)
        items = list(qs[:limit])
        if not items:
            return []
        ids = [item.pk for item in items]
        WorkItem.objects.filter(pk__in=ids).update(
            state=WorkState.IN_PROGRESS, claimed_by=worker_id, lease_until=lease
        )
        claimed = []
        for item in items:
            item.attempts += 1
            if item.attempts > item.max_attempts:
                # It was claimed that often without finishing: it kills its worker. Park it.
                _finish_failed(item, item.last_error or "lease expired repeatedly (worker killed?)")
                continue
            WorkItem.objects.filter(pk=item.pk).update(attempts=item.attempts)
            item.state, item.claimed_by, item.lease_until = WorkState.IN_PROGRESS, worker_id, lease
            claimed.append(item)
        return claimed


def renew_leases(worker_id: str, lease_s: int | None = None) -> int:
    """Extend the leases of the rows ``worker_id`` is running, so long batches are not taken away.

    Rows already updated inside the worker's open batch transaction are locked by it; on PostgreSQL they
    are skipped (SKIP LOCKED) rather than waited for. SQLite has one writer: while a batch runs nobody can
    claim, so there is nothing to renew there.
    """
    if connection.vendor != "postgresql":
        return 0
    until = timezone.now() + dt.timedelta(seconds=lease_s or settings.WORK_LEASE_S)
    table = WorkItem._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET lease_until = %s WHERE id IN ("  # noqa: S608 - table name from the model
            f"SELECT id FROM {table} WHERE claimed_by = %s AND state = %s FOR UPDATE SKIP LOCKED)",
            [until, worker_id, WorkState.IN_PROGRESS],
        )
        return cursor.rowcount


def complete(item: WorkItem, worker_id: str, *, result: dict[str, Any] | None = None) -> bool:
    """Mark ``item`` done (or pending again when ``rerun`` was requested). False if the lease was lost."""
    now = timezone.now()
    owned = WorkItem.objects.filter(pk=item.pk, claimed_by=worker_id, state=WorkState.IN_PROGRESS)
    payload = {**item.payload, **(result or {})}
    updated = owned.filter(rerun=True).update(
        state=WorkState.PENDING, rerun=False, claimed_by="", lease_until=None, attempts=0, payload=payload
    )
    if updated:
        return True
    return bool(
        owned.update(
            state=WorkState.DONE, claimed_by="", lease_until=None, done_at=now, last_error="", payload=payload
        )
    )


def fail(
    item: WorkItem,
    worker_id: str,
    error: str,
    *,
    retry: bool = True,
    backoff: tuple[float, float] | None = None,
) -> WorkItem:
    """Record a failure: back off and retry, or park the row as failed at the cap (or when not retryable).

    ``backoff`` is ``(base_s, cap_s)``: attempt n waits about ``min(cap, base · 2^(n-1))`` seconds (±20 %).
    """
    item.last_error = error[:4000]
    if not retry or item.attempts >= item.max_attempts:
        _finish_failed(item, item.last_error)
        return item
    base_s, cap_s = backoff or (BACKOFF_BASE_S, BACKOFF_CAP_S)
    delay = min(cap_s, base_s * 2 ** (item.attempts - 1)) * random.uniform(0.8, 1.2)
    WorkItem.objects.filter(pk=item.pk, claimed_by=worker_id).update(
        state=WorkState.PENDING,
        claimed_by="",
        lease_until=None,
        last_error=item.last_error,
        not_before=timezone.now() + dt.timedelta(seconds=delay),
    )
    item.state = WorkState.PENDING
    return item


def _finish_failed(item: WorkItem, error: str) -> None:
    WorkItem.objects.filter(pk=item.pk).update(
        state=WorkState.FAILED, claimed_by="", lease_until=None, last_error=error, attempts=item.attempts
    )
    item.state = WorkState.FAILED


def release(items: list[WorkItem], worker_id: str, delay_s: float = 1.0) -> int:
    """Give rows back after a batch failed as a whole (e.g. a database deadlock): pending again, soon."""
    return WorkItem.objects.filter(
        pk__in=[i.pk for i in items], claimed_by=worker_id, state=WorkState.IN_PROGRESS
    ).update(
        state=WorkState.PENDING,
        claimed_by="",
        lease_until=None,
        not_before=timezone.now() + dt.timedelta(seconds=delay_s * random.uniform(0.5, 1.5)),
    )


def resubmit(item_id: int) -> bool:
    """A person's "try again" on a failed row."""
    return bool(
        WorkItem.objects.filter(pk=item_id, state=WorkState.FAILED).update(
            state=WorkState.PENDING, attempts=0, not_before=None
        )
    )


def counts() -> dict[str, Any]:
    """Pending / in-progress / failed counts, in total and per kind (the ``work`` part of ``stats``)."""
    rows = (
        WorkItem.objects.exclude(state=WorkState.DONE)
        .values("kind", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    total = {"pending": 0, "in_progress": 0, "failed": 0}
    by_kind: dict[str, dict[str, int]] = {}
    for row in rows:
        total[row["state"]] += row["n"]
        by_kind.setdefault(row["kind"], {"pending": 0, "in_progress": 0, "failed": 0})[row["state"]] += row[
            "n"
        ]
    return {**total, "by_kind": by_kind}


def run_once_per_period(job: str, period: str, payload: dict[str, Any] | None = None) -> bool:
    """Create the row for scheduled ``job`` in ``period`` unless it exists: N workers, one run."""
    try:
        with transaction.atomic():
            WorkItem.objects.create(
                kind="job",
                key=f"{job}:{period}",
                payload={"job": job, **(payload or {})},
                max_attempts=settings.WORK_MAX_ATTEMPTS,
            )
        return True
    except IntegrityError:
        return False

"""`GET /healthz`: database, spool, free disk, worker heartbeat and the age of the oldest pending work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from rtbank.fileio import free_bytes
from rtbank.work.models import WorkerHeartbeat, WorkItem, WorkState

HEARTBEAT_STALE_S = 60


def health() -> dict[str, Any]:
    report: dict[str, Any] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        report["database"] = {"ok": True, "vendor": connection.vendor}
    except DatabaseError as exc:
        report["database"] = {"ok": False, "error": str(exc).splitlines()[0]}
        report["ok"] = False
        return report
    spool = Path(settings.SPOOL_DIR)
    try:
        free = free_bytes(spool if spool.exists() else Path(settings.HOME))
        reserve = settings.SPOOL_RESERVE_MB * 1024 * 1024
        waiting = sum(1 for _ in (spool / "ready").glob("*.dcm")) if (spool / "ready").exists() else 0
        report["spool"] = {
            "ok": free > reserve,
            "free_bytes": free,
            "reserve_bytes": reserve,
            "ready_files": waiting,
        }
    except OSError as exc:
        report["spool"] = {"ok": False, "error": str(exc)}
    now = timezone.now()
    beat = WorkerHeartbeat.objects.order_by("-last_seen").first()
    age = (now - beat.last_seen).total_seconds() if beat else None
    report["worker"] = {"ok": age is not None and age < HEARTBEAT_STALE_S, "last_heartbeat_age_s": age}
    oldest = (
        WorkItem.objects.filter(state=WorkState.PENDING)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    failed = WorkItem.objects.filter(state=WorkState.FAILED).count()
    report["work"] = {
        "ok": True,
        "oldest_pending_age_s": (now - oldest).total_seconds() if oldest else 0,
        "failed": failed,
    }
    report["ok"] = all(part.get("ok", True) for part in report.values() if isinstance(part, dict))
    return report

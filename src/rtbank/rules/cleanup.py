"""The cleanup service: unretained old data is announced, then deleted into a trash, then purged.

A patient's objects become *deletable* when none is retained (:mod:`rtbank.rules.retention`) and the
patient has had no new object for ``CLEANUP_AGE_DAYS`` (a CT is never deleted while its plan is still
arriving). ``CLEANUP_NOTICE_DAYS`` before that, the submitting institution's data managers (else the site
admins) are told which data will go (a :class:`CleanupNotice` per patient). When the notice period is over
and the data is still unretained and untouched, the objects are deleted from the catalog and their files
move into the trash (``TRASH_DIR``), where they stay ``CLEANUP_TRASH_DAYS`` before the files are removed.
New objects of a patient cancel its notice (a new one follows when the data is old again), and so does
assigning the data to a project.

Each run first computes a :class:`CleanupPlan` and stores it as the dry-run report; a real run then does
exactly that plan (re-checking retention per patient just before deleting — never less safe than the report).
``rtbank cleanup --dry-run`` prints the plan and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max, ProtectedError, Sum
from django.utils import timezone

from rtbank.catalog.blobstore import blob_store
from rtbank.catalog.models import Instance, Patient, Series, Study
from rtbank.eventlog.services import log_event
from rtbank.fileio import fsync_dirs
from rtbank.institutions.models import Institution, UserProfile
from rtbank.notifications.events import Event
from rtbank.notifications.services import notify
from rtbank.rules.models import CleanupNotice, CleanupRun, NoticeState, TrashedInstance
from rtbank.rules.retention import retained_q
from rtbank.work import services as work

logger = logging.getLogger("rtbank.cleanup")


@dataclass
class PatientCleanup:
    patient: int  # internal id (reports never carry Patient IDs)
    institution: str
    objects: int
    bytes: int
    last_received: str
    notice: int | None = None
    delete_after: str = ""
    sop_instance_uids: list[str] = field(default_factory=list)


@dataclass
class CleanupPlan:
    now: str
    cutoff: str  # objects of patients idle since before this are deletable
    announce: list[PatientCleanup] = field(default_factory=list)
    delete: list[PatientCleanup] = field(default_factory=list)
    cancel: list[int] = field(default_factory=list)  # notice ids
    purge: int = 0  # trashed files past the grace period

    def report(self, *, with_uids: bool = False) -> dict[str, Any]:
        def rows(items: list[PatientCleanup]) -> list[dict[str, Any]]:
            return [
                {k: v for k, v in asdict(p).items() if with_uids or k != "sop_instance_uids"} for p in items
            ]

        return {
            "now": self.now,
            "cutoff": self.cutoff,
            "announce": rows(self.announce),
            "delete": rows(self.delete),
            "cancel": self.cancel,
            "purge": self.purge,
            "totals": {
                "announce_patients": len(self.announce),
                "delete_patients": len(self.delete),
                "delete_objects": sum(p.objects for p in self.delete),
                "delete_bytes": sum(p.bytes for p in self.delete),
            },
        }


# --- planning --------------------------------------------------------------------------------------------
def plan_cleanup(now: dt.datetime | None = None) -> CleanupPlan:
    now = now or timezone.now()
    age, notice = (
        dt.timedelta(days=settings.CLEANUP_AGE_DAYS),
        dt.timedelta(days=settings.CLEANUP_NOTICE_DAYS),
    )
    cutoff, horizon = now - age, now - age + notice
    plan = CleanupPlan(now=now.isoformat(), cutoff=cutoff.isoformat())
    candidates = set(
        Instance.objects.filter(series__isnull=False, received_at__lt=horizon)
        .exclude(retained_q())
        .values_list("series__study__patient_id", flat=True)
        .distinct()
    )
    pending = {n.patient_id: n for n in CleanupNotice.objects.filter(state=NoticeState.PENDING)}
    last = _last_received(candidates | set(pending))
    for patient_id, n in sorted(pending.items(), key=lambda kv: kv[1].pk):
        idle_since = last.get(patient_id)
        if (
            patient_id not in candidates
            or idle_since is None
            or idle_since >= horizon
            or idle_since > n.noticed_at
        ):
            plan.cancel.append(n.pk)
        elif idle_since < cutoff and n.delete_after <= now:
            plan.delete.append(_describe(patient_id, idle_since, notice=n, with_uids=True))
    for patient_id in sorted(candidates - set(pending)):
        idle_since = last.get(patient_id)
        if idle_since is not None and idle_since < horizon:
            entry = _describe(patient_id, idle_since)
            entry.delete_after = max(now + notice, idle_since + age).isoformat()
            plan.announce.append(entry)
    plan.purge = TrashedInstance.objects.filter(purged_at__isnull=True, purge_after__lte=now).count()
    return plan


def deletable(patient_id: int) -> Any:
    """The patient's objects cleanup may delete (unretained; quarantined objects are left to admins)."""
    return Instance.objects.filter(series__study__patient_id=patient_id).exclude(retained_q())


def _last_received(patients: set[int]) -> dict[int, dt.datetime]:
    found: dict[int, dt.datetime] = {}
    ids = sorted(patients)
    for start in range(0, len(ids), 500):
        rows = (
            Instance.objects.filter(series__study__patient_id__in=ids[start : start + 500])
            .values("series__study__patient_id")
            .annotate(last=Max("received_at"))
            .order_by()
        )
        found.update({r["series__study__patient_id"]: r["last"] for r in rows})
    return found


def _describe(
    patient_id: int, idle_since: dt.datetime, *, notice: CleanupNotice | None = None, with_uids: bool = False
) -> PatientCleanup:
    objects = deletable(patient_id)
    totals = objects.aggregate(size=Sum("size"))
    institution = (
        Patient.objects.filter(pk=patient_id).values_list("institution__code", flat=True).first() or ""
    )
    entry = PatientCleanup(
        patient_id,
        institution,
        objects.count(),
        int(totals["size"] or 0),
        idle_since.isoformat(),
        notice=notice.pk if notice else None,
        delete_after=notice.delete_after.isoformat() if notice else "",
    )
    if with_uids:
        entry.sop_instance_uids = sorted(set(objects.values_list("sop_instance_uid", flat=True)))
    return entry


# --- running ---------------------------------------------------------------------------------------------
def run_cleanup(
    *, dry_run: bool, actor: str, now: dt.datetime | None = None
) -> tuple[CleanupPlan, dict[str, Any]]:
    """Plan (stored as the dry-run report), then — unless ``dry_run`` — do exactly the plan."""
    plan = plan_cleanup(now)
    CleanupRun.objects.create(dry_run=True, actor=actor[:150], report=plan.report())
    if dry_run:
        return plan, {"dry_run": True}
    result: dict[str, Any] = {
        "announced": announce(plan),
        "cancelled": cancel(plan.cancel),
        "deleted": [],
        "skipped": [],
        "purged": purge_trash(now),
    }
    for entry in plan.delete:
        deleted, note = delete_patient_data(entry.notice, entry.sop_instance_uids, actor=actor)
        result["deleted"] += deleted
        if note:
            result["skipped"].append({"patient": entry.patient, "reason": note})
    CleanupRun.objects.create(
        dry_run=False,
        actor=actor[:150],
        report={**plan.report(), "result": {**result, "deleted": len(result["deleted"])}},
    )
    return plan, result


def run_scheduled(period: str) -> dict[str, Any]:
    """Scheduled job ``cleanup``: the dry-run report, notices, cancellations, one deletion row per patient,
    the trash purge — and the projects area's finished export folders past their keeping time."""
    from rtbank.projects.exports import remove_old_exports

    exports = remove_old_exports()
    plan = plan_cleanup()
    CleanupRun.objects.create(dry_run=True, actor="scheduler", report=plan.report())
    announced, cancelled = announce(plan), cancel(plan.cancel)
    for entry in plan.delete:
        work.enqueue(
            CLEANUP, f"notice:{entry.notice}", {"notice": entry.notice, "uids": entry.sop_instance_uids}
        )
    work.enqueue(CLEANUP, f"purge:{period}", {"purge": True})
    return {
        "announced": announced,
        "cancelled": cancelled,
        "deletions_queued": len(plan.delete),
        "exports_removed": exports,
    }


CLEANUP = "cleanup"  # work kind: delete one announced patient's data, or purge the trash


def cleanup_item(item: Any, batch: Any) -> dict[str, Any]:
    if item.payload.get("purge"):
        return {"purged": purge_trash()}
    deleted, note = delete_patient_data(
        item.payload["notice"], item.payload.get("uids", []), actor="scheduler"
    )
    return {"deleted": len(deleted), "note": note}


def announce(plan: CleanupPlan) -> int:
    """Create the notices of ``plan.announce`` and tell each institution's data managers once."""
    now = timezone.now()
    by_institution: dict[str, list[CleanupNotice]] = {}
    with transaction.atomic():
        for entry in plan.announce:
            patient = Patient.objects.filter(pk=entry.patient).first()
            if (
                patient is None
                or CleanupNotice.objects.filter(patient=patient, state=NoticeState.PENDING).exists()
            ):
                continue
            n = CleanupNotice.objects.create(
                patient=patient,
                institution_id=patient.institution_id,
                noticed_at=now,
                delete_after=dt.datetime.fromisoformat(entry.delete_after),
                instances=entry.objects,
                bytes=entry.bytes,
            )
            by_institution.setdefault(entry.institution, []).append(n)
        for code, notices in by_institution.items():
            _tell(code, notices)
    return sum(len(v) for v in by_institution.values())


def _tell(code: str, notices: list[CleanupNotice]) -> None:
    institution = Institution.objects.filter(code=code).first() if code else None
    people = (
        [
            p.user
            for p in UserProfile.objects.filter(institution=institution).select_related("user")
            if p.has_role("data_manager") and p.user.is_active
        ]
        if institution
        else []
    )
    if not people:
        people = list(User.objects.filter(is_superuser=True, is_active=True))
    first = min(n.delete_after for n in notices)
    objects, size = sum(n.instances for n in notices), sum(n.bytes for n in notices)
    source = f"from {institution.code}" if institution else "from unknown institutions"
    notify(
        people,
        Event.CLEANUP_UPCOMING,
        f"Cleanup: {len(notices)} patient(s) {source} will be deleted from {first:%Y-%m-%d}",
        f"{len(notices)} patient(s) {source} ({objects} objects, {size / 1e6:.1f} MB) "
        f"are in no project and have "
        f"received nothing for a while. They will be deleted on or after {first:%Y-%m-%d} (kept in the trash "
        f"for {settings.CLEANUP_TRASH_DAYS} days). Assign what you need to a project to keep it.",
        url="/inbox/",
    )


def cancel(notice_ids: list[int]) -> int:
    return CleanupNotice.objects.filter(pk__in=notice_ids, state=NoticeState.PENDING).update(
        state=NoticeState.CANCELLED, closed_at=timezone.now(), message="retained now, or new objects arrived"
    )


def delete_patient_data(notice_id: int | None, uids: list[str], *, actor: str) -> tuple[list[str], str]:
    """Delete the announced objects of one patient that are still deletable; files go to the trash.

    Returns the SOP Instance UIDs deleted and a note when something was kept.
    """
    notice = CleanupNotice.objects.filter(pk=notice_id, state=NoticeState.PENDING).first()
    if notice is None or notice.patient_id is None:
        return [], "notice no longer pending"
    purge_after = timezone.now() + dt.timedelta(days=settings.CLEANUP_TRASH_DAYS)
    try:
        with transaction.atomic():
            objects = list(
                deletable(notice.patient_id).filter(sop_instance_uid__in=uids).select_related("institution")
            )
            trashed = [_trash_row(i, notice, purge_after) for i in objects]
            TrashedInstance.objects.bulk_create(trashed, batch_size=500)
            Instance.objects.filter(pk__in=[i.pk for i in objects]).delete()
            patient_gone = _drop_empty(notice.patient_id)
            CleanupNotice.objects.filter(pk=notice.pk).update(
                state=NoticeState.DONE, closed_at=timezone.now(), message=f"{len(objects)} object(s) deleted"
            )
            if not patient_gone:
                work.enqueue("analysis", f"patient:{notice.patient_id}", {"patient": notice.patient_id})
            log_event(
                "cleanup",
                "deleted",
                actor=actor,
                object_type="patient",
                object_id=notice.patient_id,
                details={"objects": len(objects), "notice": notice.pk},
            )
            transaction.on_commit(move_to_trash)
    except ProtectedError as exc:
        return [], f"kept: still referenced by {type(next(iter(exc.protected_objects))).__name__}"
    kept = len(set(uids) - {i.sop_instance_uid for i in objects})
    deleted = sorted({i.sop_instance_uid for i in objects})
    return deleted, (f"{len(set(uids)) - len(deleted)} object(s) kept (retained since)" if kept else "")


def _trash_row(instance: Instance, notice: CleanupNotice, purge_after: dt.datetime) -> TrashedInstance:
    return TrashedInstance(
        notice=notice,
        sop_instance_uid=instance.sop_instance_uid,
        sop_class_uid=instance.sop_class_uid,
        patient_ref=str(notice.patient_id),
        institution_code=instance.institution.code if instance.institution else "",
        blob_key=instance.blob_key,
        size=instance.size,
        file_sha256=instance.file_sha256,
        received_at=instance.received_at,
        purge_after=purge_after,
    )


def _drop_empty(patient_id: int) -> bool:
    """Remove series, studies and the patient left without objects. True if the patient is gone."""
    Series.objects.filter(study__patient_id=patient_id, instances__isnull=True).delete()
    Study.objects.filter(patient_id=patient_id, series__isnull=True).delete()
    patient = Patient.objects.filter(pk=patient_id, studies__isnull=True).first()
    if patient is None:
        return False
    try:
        with transaction.atomic():
            patient.delete()
    except ProtectedError:
        return False
    return True


# --- the trash -------------------------------------------------------------------------------------------
def move_to_trash() -> int:
    """Move deleted objects' files from the blob store into the trash (after the deletion committed).

    Idempotent: a crash between commit and move leaves rows without ``trash_path``, moved at the next run.
    """
    store, moved, dirs = blob_store(), 0, set()
    for row in TrashedInstance.objects.filter(trash_path="", purged_at__isnull=True):
        if Instance.objects.filter(blob_key=row.blob_key).exists():
            TrashedInstance.objects.filter(pk=row.pk).update(
                trash_path="-"
            )  # the file still serves another object
            continue
        relative = f"{row.trashed_at:%Y-%m-%d}/{row.blob_key}"
        destination = Path(settings.TRASH_DIR) / relative
        source = store.local_path(row.blob_key)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source is not None and source.exists():
            try:
                os.replace(source, destination)
            except OSError:  # another file system: copy, then remove
                shutil.copyfile(source, destination)
                store.delete(row.blob_key)
            dirs |= {destination.parent, source.parent}
        TrashedInstance.objects.filter(pk=row.pk).update(trash_path=relative)
        moved += 1
    fsync_dirs({d for d in dirs if d.exists()})
    return moved


def purge_trash(now: dt.datetime | None = None) -> int:
    """Remove trashed files whose grace period is over."""
    move_to_trash()
    purged = 0
    for row in TrashedInstance.objects.filter(purged_at__isnull=True, purge_after__lte=now or timezone.now()):
        if row.trash_path not in ("", "-"):
            (Path(settings.TRASH_DIR) / row.trash_path).unlink(missing_ok=True)
        TrashedInstance.objects.filter(pk=row.pk).update(purged_at=timezone.now())
        purged += 1
    if purged:
        log_event("cleanup", "trash_purged", actor="cleanup", details={"files": purged})
    return purged

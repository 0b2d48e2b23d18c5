"""The forwarding outbox: durable sends to DICOM destinations, retried until they succeed or a person decides.

Every forward — by a trigger rule, a person's "send to node", or another area (audit copies) — is a
:class:`Forward` row plus the work row ``forward:<id>``. A worker sends the forward's objects with C-STORE
over one association per batch (:func:`rtbank.dicom.scu.send_files`); only when every sub-operation
succeeded are the objects recorded as delivered (:class:`ForwardedInstance`) and the row marked done.
Otherwise the row backs off (``RTBANK_FORWARD_BACKOFF`` · 2^n, at most ``RTBANK_FORWARD_BACKOFF_CAP``) and,
after ``RTBANK_FORWARD_MAX_ATTEMPTS``, waits as failed on the outbox page until someone resubmits it.

The network send happens before the batch transaction opens (the kind's ``prepare``), so a slow
destination never holds a database transaction; the handler then records the outcome. Sends are
at-least-once: a worker killed after the destination answered but before the commit sends again.

Every send is in the access log (action ``forward``), failures included. Callers check the person's
permission (``forward`` on the project) themselves; the outbox checks the destination: a project's data
goes only to nodes on the project's allow-list, site-level sends only to nodes with the ``dest`` role.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import CharField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Cast

from rtbank.catalog.blobstore import blob_store
from rtbank.catalog.models import Instance, InstanceState, Patient, PlanBundleMember
from rtbank.fileio import fsync_dirs, fsync_path
from rtbank.institutions.models import Node, NodeRole
from rtbank.projects.models import Project
from rtbank.rules.models import Forward, ForwardedInstance, ForwardScope
from rtbank.work import services as work
from rtbank.work.models import WorkItem, WorkState
from rtbank.work.registry import PermanentError

logger = logging.getLogger("rtbank.outbox")
FORWARD = "forward"
# Images first, then what references them: a receiver that resolves references on arrival sees targets first.
_KIND_ORDER = {
    "image": 0,
    "rt_image": 1,
    "registration": 2,
    "deformable_registration": 2,
    "structure_set": 3,
    "segmentation": 3,
    "plan": 4,
    "ion_plan": 4,
    "dose": 5,
}


class ForwardRefused(ValidationError):
    """This forward may not be queued (destination not allowed, nothing to send); the message says why."""


class SendFailed(Exception):
    """The destination did not confirm every object; the row is retried later."""


# --- queueing (the API other areas call) ---------------------------------------------------------------
def send_plan(
    node: Node,
    plan: Instance,
    *,
    project: Project | None,
    actor: str,
    user: Any = None,
    origin: str = "manual",
    origin_key: str | None = None,
    only_new: bool = False,
) -> Forward:
    """Queue the plan bundle of ``plan`` (plan, structure set, images, doses, records present) to ``node``."""
    if plan.kind not in ("plan", "ion_plan") or plan.state != InstanceState.CURRENT:
        raise ForwardRefused("only a current treatment plan can be sent as a plan bundle")
    patient_id = plan.series.study.patient_id if plan.series_id else None
    return _queue(
        node,
        project,
        ForwardScope.PLAN,
        actor=actor,
        user=user,
        origin=origin,
        origin_key=origin_key,
        only_new=only_new,
        plan=plan,
        patient_id=patient_id,
    )


def send_patient(
    node: Node,
    patient: Patient,
    *,
    project: Project | None,
    actor: str,
    user: Any = None,
    origin: str = "manual",
    origin_key: str | None = None,
    only_new: bool = False,
) -> Forward:
    """Queue every current object of ``patient`` to ``node``."""
    return _queue(
        node,
        project,
        ForwardScope.PATIENT,
        actor=actor,
        user=user,
        origin=origin,
        origin_key=origin_key,
        only_new=only_new,
        patient_id=patient.pk,
    )


def send_instances(
    node: Node,
    instances: Iterable[Instance],
    *,
    project: Project | None,
    actor: str,
    user: Any = None,
    origin: str = "manual",
    origin_key: str | None = None,
) -> Forward:
    """Queue chosen stored objects to ``node``."""
    ids = sorted({i.pk for i in instances})
    if not ids:
        raise ForwardRefused("nothing to send")
    return _queue(
        node,
        project,
        ForwardScope.INSTANCES,
        actor=actor,
        user=user,
        origin=origin,
        origin_key=origin_key,
        instance_ids=ids,
    )


def send_files(
    node: Node,
    paths: Iterable[Path],
    *,
    actor: str,
    origin: str,
    project: Project | None = None,
    user: Any = None,
    origin_key: str | None = None,
) -> Forward:
    """Queue DICOM files that are not in the catalog (e.g. an audit's anonymised copies) to ``node``.

    The outbox keeps its own durable copy (``OUTBOX_DIR/<forward id>/``) until the send succeeded, so the
    caller may remove its files once this returns.
    """
    sources = [Path(p) for p in paths]
    if not sources:
        raise ForwardRefused("nothing to send")
    missing = [str(p) for p in sources if not p.is_file()]
    if missing:
        raise ForwardRefused(f"not a file: {missing[0]}")
    check_destination(node, project)
    with transaction.atomic():
        forward = Forward.objects.create(
            destination=node,
            project=project,
            scope=ForwardScope.FILES,
            origin=origin,
            origin_key=origin_key,
            requested_by=actor[:150],
            user=user,
        )
        folder = Path(settings.OUTBOX_DIR) / str(forward.pk)
        names = _copy_durably(sources, folder)
        Forward.objects.filter(pk=forward.pk).update(files=names)
        forward.files = names
        _enqueue(forward)
    return forward


def check_destination(node: Node, project: Project | None) -> None:
    """A project's data goes only to its allow-list; site-level sends only to nodes with the ``dest`` role."""
    if project is not None:
        if not project.destinations.filter(pk=node.pk).exists():
            raise ForwardRefused(f"{node.name} is not on the destination list of project {project.code}")
    elif not node.has_role(NodeRole.DEST):
        raise ForwardRefused(f"{node.name} is not a forwarding destination (role 'dest')")


def refresh(forward: Forward) -> bool:
    """Send what is new for an ``only_new`` forward (late objects of its plan or patient). True if queued.

    A pending row will see the late objects when it runs; a running one runs once more afterwards (its list
    was made before they arrived). A failed row is left for a person: late objects go out with the resubmit.
    """
    row = WorkItem.objects.filter(kind=FORWARD, key=forward.work_key).first()
    if row is not None and row.state in (WorkState.FAILED, WorkState.PENDING):
        return False
    if not _unsent(forward).exists():
        return False
    _enqueue(forward)  # done: pending again; in progress: marked to run again when it ends
    return True


def resubmit(forward: Forward, *, actor: str) -> bool:
    """A person's "try again" on a failed forward."""
    row = WorkItem.objects.filter(kind=FORWARD, key=forward.work_key, state=WorkState.FAILED).first()
    if row is None:
        return False
    Forward.objects.filter(pk=forward.pk).update(failure_notified=False)
    from rtbank.eventlog.services import log_event

    log_event("outbox", "forward_resubmitted", actor=actor, object_type="forward", object_id=forward.pk)
    return work.resubmit(row.pk)


def with_state(forwards: QuerySet[Forward]) -> QuerySet[Forward]:
    """Forwards annotated with their work row: ``work_state``, ``work_attempts``, ``work_error``,
    ``next_try``."""
    # Work keys are the forward id as text.
    rows = WorkItem.objects.filter(kind=FORWARD, key=Cast(OuterRef("pk"), CharField()))
    return forwards.annotate(
        work_state=Subquery(rows.values("state")[:1]),
        work_attempts=Subquery(rows.values("attempts")[:1]),
        work_error=Subquery(rows.values("last_error")[:1]),
        next_try=Subquery(rows.values("not_before")[:1]),
        work_id=Subquery(rows.values("pk")[:1]),
    )


def _queue(
    node: Node,
    project: Project | None,
    scope: str,
    *,
    actor: str,
    user: Any,
    origin: str,
    origin_key: str | None,
    only_new: bool = False,
    plan: Instance | None = None,
    patient_id: int | None = None,
    instance_ids: list[int] | None = None,
) -> Forward:
    check_destination(node, project)
    with transaction.atomic():
        if origin_key:
            existing = Forward.objects.filter(origin_key=origin_key).first()
            if existing:
                refresh(existing)
                return existing
        forward = Forward.objects.create(
            destination=node,
            project=project,
            scope=scope,
            plan=plan,
            patient_id=patient_id,
            instance_ids=instance_ids or [],
            only_new=only_new,
            origin=origin[:64],
            origin_key=origin_key,
            requested_by=actor[:150],
            user=user if getattr(user, "is_authenticated", False) else None,
        )
        _enqueue(forward)
    return forward


def _enqueue(forward: Forward) -> None:
    work.enqueue(
        FORWARD, forward.work_key, {"forward": forward.pk}, max_attempts=settings.FORWARD_MAX_ATTEMPTS
    )


def _copy_durably(sources: list[Path], folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, src in enumerate(sources):
        name = f"{i:06d}.dcm"
        tmp = folder / f".{name}.tmp"
        shutil.copyfile(src, tmp)
        fsync_path(tmp)
        os.replace(tmp, folder / name)
        names.append(name)
    fsync_dirs({folder, folder.parent})
    return names


# --- what a forward sends --------------------------------------------------------------------------------
def dataset(forward: Forward) -> QuerySet[Instance]:
    """The current objects in the forward's scope (all of them, sent or not)."""
    current = Instance.objects.filter(state=InstanceState.CURRENT, series__isnull=False)
    if forward.scope == ForwardScope.PLAN:
        members = PlanBundleMember.objects.filter(plan_id=forward.plan_id).values("member_id")
        return current.filter(pk__in=members) | current.filter(pk=forward.plan_id)
    if forward.scope == ForwardScope.PATIENT:
        return current.filter(series__study__patient_id=forward.patient_id)
    if forward.scope == ForwardScope.INSTANCES:
        return current.filter(pk__in=forward.instance_ids)
    return Instance.objects.none()


def _unsent(forward: Forward) -> QuerySet[Instance]:
    objects = dataset(forward)
    if forward.only_new:
        delivered = ForwardedInstance.objects.filter(destination_id=forward.destination_id).values(
            "instance_id"
        )
        objects = objects.exclude(pk__in=delivered)
    return objects


@dataclass
class Outgoing:
    """What one run of a forward sends: catalog objects (id, path) or the outbox's own files."""

    instances: list[tuple[int, str, Path]]  # (instance id, SOP Instance UID, file)
    files: list[Path]

    @property
    def paths(self) -> list[Path]:
        return [path for _, _, path in self.instances] + self.files

    def __len__(self) -> int:
        return len(self.instances) + len(self.files)


def outgoing(forward: Forward) -> Outgoing:
    if forward.scope == ForwardScope.FILES:
        folder = Path(settings.OUTBOX_DIR) / str(forward.pk)
        return Outgoing([], [folder / name for name in forward.files])
    store = blob_store()
    rows = sorted(
        _unsent(forward).values_list("pk", "sop_instance_uid", "blob_key", "kind", "instance_number"),
        key=lambda r: (_KIND_ORDER.get(r[3], 6), r[4] if r[4] is not None else 0, r[0]),
    )
    found = []
    for pk, uid, key, _kind, _number in rows:
        path = store.local_path(key)
        if path is None:
            raise PermanentError("the blob store has no local files; forwarding needs them")
        found.append((pk, uid, path))
    return Outgoing(found, [])

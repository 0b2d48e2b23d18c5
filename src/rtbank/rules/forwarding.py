"""The worker side of the outbox: send (before the transaction), then record (inside it).

See :mod:`rtbank.rules.outbox` for the guarantees. ``prepare_forward`` runs the C-STORE association with
no database transaction open and never raises; ``finish_forward`` (the work handler) records a complete
success, or raises so the worker backs the row off or, at the attempt cap, parks it as failed.
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import F
from django.utils import timezone

from rtbank.dicom import scu
from rtbank.notifications.events import Event
from rtbank.notifications.services import notify
from rtbank.projects.access import live_grants
from rtbank.projects.models import AccessLog, Grant, Permission
from rtbank.rules.models import Forward, ForwardedInstance, ForwardScope
from rtbank.rules.outbox import Outgoing, SendFailed, outgoing
from rtbank.work.models import WorkItem
from rtbank.work.registry import Batch, PermanentError

logger = logging.getLogger("rtbank.outbox")


@dataclass
class SendOutcome:
    forward: Forward
    out: Outgoing
    result: scu.SendResult | None  # None: nothing to send

    @property
    def ok(self) -> bool:
        return self.result is None or self.result.ok


def prepare_forward(items: list[WorkItem], batch: Batch) -> None:
    """Before the batch transaction: send each claimed forward and keep the outcome for the handler."""
    for item in items:
        try:
            batch.data[("forward", item.pk)] = _send(item)
        except Exception as exc:  # noqa: BLE001 - reported by the handler as the row's error
            batch.data[("forward", item.pk)] = exc
            final = isinstance(exc, PermanentError) or item.attempts >= item.max_attempts
            _on_failure(item, f"{type(exc).__name__}: {exc}", final=final)


def finish_forward(item: WorkItem, batch: Batch) -> dict[str, Any]:
    """Work handler of kind ``forward``: record a complete send, or raise for a retry."""
    key = ("forward", item.pk)
    if key not in batch.data:
        prepare_forward([item], batch)
    outcome = batch.data[key]
    if isinstance(outcome, Exception):
        raise outcome
    if outcome.result is None:
        return {"sent": 0, "note": "nothing new to send"}
    if not outcome.ok:
        raise SendFailed(_summary(outcome.result))
    forward, out = outcome.forward, outcome.out
    now = timezone.now()
    ForwardedInstance.objects.bulk_create(
        [
            ForwardedInstance(forward=forward, destination_id=forward.destination_id, instance_id=pk)
            for pk, _uid, _path in out.instances
        ],
        ignore_conflicts=True,
        batch_size=500,
    )
    Forward.objects.filter(pk=forward.pk).update(
        last_sent_at=now, sent_total=F("sent_total") + len(out), failure_notified=False
    )
    _log_access(forward, "allowed", len(out), attempt=item.attempts)
    if forward.scope == ForwardScope.FILES:
        folder = Path(settings.OUTBOX_DIR) / str(forward.pk)
        batch.after_commit.append(lambda: shutil.rmtree(folder, ignore_errors=True))
    return {"sent": len(out)}


def _send(item: WorkItem) -> SendOutcome:
    forwards = Forward.objects.select_related("destination", "project", "user")
    forward = forwards.filter(pk=item.payload["forward"]).first()
    if forward is None:
        raise PermanentError(f"forward #{item.payload['forward']} no longer exists")
    out = outgoing(forward)
    if not len(out):
        return SendOutcome(forward, out, None)
    node = forward.destination
    host = _single_host(node.host)
    options = node.options or {}
    result = scu.send_files(
        out.paths,
        host,
        node.port,
        called_ae=node.ae_title.strip(),
        calling_ae=str(options.get("calling_ae") or settings.AE_TITLE),
        timeout_s=float(options.get("timeout_s") or settings.FORWARD_TIMEOUT_S),
        retries=1,
    )
    outcome = SendOutcome(forward, out, result)
    if not result.ok:
        final = item.attempts >= item.max_attempts
        _on_failure(item, _summary(result), final=final, forward=forward, objects=len(out))
    return outcome


def _single_host(host: str) -> str:
    network = ipaddress.ip_network(host, strict=False)
    if network.num_addresses != 1:
        raise PermanentError(f"the destination's host is a network ({host}); forwarding needs one address")
    return str(network.network_address)


def _summary(result: scu.SendResult) -> str:
    reasons = sorted({reason for _uid, reason in result.failed})
    return (
        f"{len(result.failed)} of {len(result.failed) + len(result.sent)} object(s) not confirmed: "
        f"{'; '.join(reasons)[:300]}"
    )


def _on_failure(
    item: WorkItem, error: str, *, final: bool, forward: Forward | None = None, objects: int = 0
) -> None:
    """Outside the transaction: log the failed send; at the last attempt, tell the people concerned once."""
    forward = (
        forward
        or Forward.objects.filter(pk=item.payload.get("forward"))
        .select_related("destination", "project", "user")
        .first()
    )
    if forward is None:
        return
    _log_access(forward, "error", objects, attempt=item.attempts, error=error[:300])
    if not final or forward.failure_notified:
        return
    Forward.objects.filter(pk=forward.pk).update(failure_notified=True)
    node = forward.destination
    what = {"plan": "a plan bundle", "patient": "a patient's data", "instances": "objects", "files": "files"}[
        forward.scope
    ]
    where = f"project {forward.project.code}" if forward.project else "the site"
    url = f"/projects/{forward.project.code}/outbox/" if forward.project else "/outbox/"
    notify(
        _failure_recipients(forward),
        Event.FORWARD_FAILED,
        f"Forward #{forward.pk} to {node.name} failed",
        f"rtbank could not send {what} of {where} to {node.name} ({node.ae_title}) after {item.attempts} "
        f"attempt(s): {error}\nIt waits in the outbox; resubmit it there once the destination is reachable.",
        url=url,
    )


def _failure_recipients(forward: Forward) -> list[User]:
    people: dict[int, User] = {}
    if forward.project is None:
        people = {u.pk: u for u in User.objects.filter(is_superuser=True, is_active=True)}
    if forward.user is not None and (
        forward.project is None or live_grants(forward.user).filter(project=forward.project).exists()
    ):
        people[forward.user.pk] = forward.user
    if forward.project is not None:
        holders = Grant.objects.filter(
            project=forward.project, permission=Permission.FORWARD, expires_on__gte=timezone.localdate()
        ).values("user_id")
        for user in User.objects.filter(pk__in=holders, is_active=True):
            people[user.pk] = user
    return list(people.values())


def _log_access(forward: Forward, outcome: str, objects: int, **details: Any) -> None:
    target_type, target_id = {
        ForwardScope.PLAN: ("instance", forward.plan_id),
        ForwardScope.PATIENT: ("patient", forward.patient_id),
    }.get(forward.scope, ("forward", forward.pk))
    AccessLog.objects.create(
        user=forward.user,
        actor=forward.requested_by,
        action="forward",
        object_type=target_type,
        object_id=str(target_id),
        project=forward.project,
        outcome=outcome,
        details={
            "forward": forward.pk,
            "node": forward.destination.name,
            "objects": objects,
            "origin": forward.origin,
            **details,
        },
    )

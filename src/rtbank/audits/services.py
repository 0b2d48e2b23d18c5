"""Audit verbs shared by the web, tests and the worker: create, make copies, send, download, close.

Callers check the person's ``audit`` permission on the project (views through
:meth:`rtbank.projects.access.Access.project`); these functions check everything about the data: cases
must be held by the project, destinations must be on the project's allow-list (the outbox checks again).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from rtbank.audits.copies import COPY, copy_files, reference_structure_set
from rtbank.audits.keys import create_key
from rtbank.audits.models import (
    TARGET_TYPES,
    Audit,
    AuditDataset,
    AuditState,
    Content,
    CopyState,
    Participant,
    PseudonymousPatient,
)
from rtbank.catalog.models import Instance, Patient
from rtbank.dicom.anonymize import Option
from rtbank.eventlog.services import log_event
from rtbank.institutions.models import Institution, Node
from rtbank.projects.access import ALLOWED, Access, instances_in
from rtbank.projects.exports import stream_folder
from rtbank.projects.models import Project, ProjectSubject
from rtbank.rules import outbox
from rtbank.rules.models import Forward
from rtbank.work import services as work
from rtbank.work.models import WorkState

PLAN_KINDS = ("plan", "ion_plan")
DEFAULT_CONTENTS = [Content.PLANNING_IMAGES.value, Content.STRUCTURE_SET.value]


@dataclass(frozen=True)
class ParticipantSpec:
    """A participating centre or observer: a name, optionally its institution and DICOM node."""

    name: str
    institution: Institution | None = None
    node: Node | None = None


def create_audit(
    access: Access,
    project: Project,
    *,
    name: str,
    subjects: Sequence[str] = (),
    plans: Sequence[str] = (),
    participants: Sequence[ParticipantSpec] | int,
    contents: Iterable[str] = DEFAULT_CONTENTS,
    remove_roi_types: Iterable[str] = (),
    options: Iterable[str] = (),
    description: str = "",
) -> Audit:
    """An audit of ``project``: cases (subject IDs, plan UIDs), participants (specs, or a number of them).

    Raises
    ------
    ValidationError
        Naming what to fix (unknown case, destination not allowed, nothing chosen…).
    """
    cases = _cases(project, subjects, plans)
    specs = (
        [ParticipantSpec(f"observer {i}") for i in range(1, participants + 1)]
        if isinstance(participants, int)
        else list(participants)
    )
    chosen_contents, chosen_options, types = _check_choices(contents, options, remove_roi_types)
    _check_participants(project, specs)
    with transaction.atomic():
        audit = Audit.objects.create(
            project=project,
            name=name.strip()[:200] or "audit",
            description=description,
            contents=chosen_contents,
            remove_roi_types=types,
            options=chosen_options,
            pseudonym_prefix="AUDIT",
            created_by=access.user if getattr(access.user, "is_authenticated", False) else None,
            created_by_name=access.label,
        )
        audit.pseudonym_prefix = f"AUDIT{audit.pk}"  # distinct across audits: pseudonyms never collide
        audit.key_fingerprint = create_key(audit)
        audit.save(update_fields=["pseudonym_prefix", "key_fingerprint"])
        for position, (patient_id, plan) in enumerate(cases, start=1):
            dataset = AuditDataset.objects.create(
                audit=audit, label=f"case {position}", patient_id=patient_id, plan=plan, position=position
            )
            dataset.reference_structure_set = reference_structure_set(dataset)
            dataset.save(update_fields=["reference_structure_set"])
        for number, spec in enumerate(specs, start=1):
            Participant.objects.create(
                audit=audit,
                name=spec.name.strip()[:100],
                copy_id=str(number),
                institution=spec.institution,
                node=spec.node,
            )
        access.record(
            "create_audit",
            "audit",
            audit.pk,
            ALLOWED,
            project=project,
            cases=len(cases),
            participants=len(specs),
        )
        log_event(
            "audits",
            "audit_created",
            actor=access.label,
            object_type="audit",
            object_id=audit.pk,
            details={"project": project.code, "cases": len(cases), "participants": len(specs)},
        )
    return audit


def _cases(
    project: Project, subjects: Sequence[str], plans: Sequence[str]
) -> list[tuple[int, Instance | None]]:
    cases: list[tuple[int, Instance | None]] = []
    for subject_id in dict.fromkeys(s.strip() for s in subjects if s.strip()):
        subject = ProjectSubject.objects.filter(project=project, subject_id=subject_id).first()
        if subject is None:
            raise ValidationError(f"{project.code} has no subject {subject_id!r}")
        cases.append((subject.patient_id, None))
    held = instances_in(project, kinds=PLAN_KINDS).select_related("series__study")
    for uid in dict.fromkeys(p.strip() for p in plans if p.strip()):
        plan = held.filter(sop_instance_uid=uid).first()
        if plan is None:
            raise ValidationError(f"{project.code} holds no plan with the UID {uid[:64]!r}")
        cases.append((plan.series.study.patient_id, plan))
    if not cases:
        raise ValidationError("choose at least one case: patients (subject IDs) or plans")
    ids: dict[str, int] = {}
    for patient_pk, _plan in cases:
        patient_id = Patient.objects.values_list("patient_id", flat=True).get(pk=patient_pk)
        if ids.setdefault(patient_id, patient_pk) != patient_pk:
            raise ValidationError(
                "two cases are different patients with the same Patient ID (from two issuers); "
                "their pseudonyms would collide: put them in separate audits"
            )
    return cases


def _check_choices(
    contents: Iterable[str], options: Iterable[str], types: Iterable[str]
) -> tuple[list[str], list[str], list[str]]:
    chosen = [c for c in Content.values if c in set(contents)]
    unknown = set(contents) - set(Content.values)
    if unknown or not chosen:
        raise ValidationError(f"choose what the copies hold from: {', '.join(Content.values)}")
    try:
        chosen_options = sorted({Option.parse(o).value for o in options})
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    if {Option.RETAIN_LONGITUDINAL_FULL_DATES.value, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES.value} <= set(
        chosen_options
    ):
        raise ValidationError("choose full dates or modified dates, not both")
    chosen_types = sorted({t.strip().upper() for t in types if t.strip()})
    if set(chosen_types) - set(TARGET_TYPES):
        raise ValidationError(f"ROI types that can be removed: {', '.join(TARGET_TYPES)}")
    return chosen, chosen_options, chosen_types


def _check_participants(project: Project, specs: list[ParticipantSpec]) -> None:
    if not specs:
        raise ValidationError("an audit needs at least one participant")
    if len({s.name.strip().casefold() for s in specs}) != len(specs) or any(
        not s.name.strip() for s in specs
    ):
        raise ValidationError("give every participant its own name")
    allowed = set(project.destinations.values_list("pk", flat=True))
    for spec in specs:
        if spec.node is not None and spec.node.pk not in allowed:
            raise ValidationError(
                f"{spec.node.name} is not on the destination list of project {project.code}; "
                "a site admin adds it there first"
            )


# --- copies, sends, downloads ------------------------------------------------------------------------------
def request_copies(
    access: Access, audit: Audit, participants: Iterable[Participant] | None = None, *, send: bool = False
) -> int:
    """Queue making (again) the copies of ``participants`` (all by default); ``send``: send each when made."""
    if audit.state != AuditState.OPEN:
        raise ValidationError("the audit is closed: no more copies go out")
    chosen = list(participants) if participants is not None else list(audit.participants.all())
    for participant in chosen:
        Participant.objects.filter(pk=participant.pk).update(
            copy_state=CopyState.QUEUED, copy_error="", send_when_ready=bool(send and participant.node_id)
        )
        work.enqueue(
            COPY,
            f"participant:{participant.pk}",
            {"participant": participant.pk, "user": getattr(access.user, "pk", None), "actor": access.label},
            max_attempts=3,
        )
    access.record(
        "request_audit_copies",
        "audit",
        audit.pk,
        ALLOWED,
        project=audit.project,
        participants=[p.pk for p in chosen],
        send=send,
    )
    return len(chosen)


def send_copy(participant: Participant, *, actor: str, user_id: int | None = None) -> Forward:
    """Queue the made copy to the participant's node through the outbox (which keeps its own copy)."""
    audit = participant.audit
    if participant.node_id is None:
        raise ValidationError(f"{participant.name} has no DICOM node: give it one, or download the copy")
    if participant.copy_state != CopyState.READY:
        raise ValidationError(f"the copy for {participant.name} is not made yet")
    files = copy_files(participant)
    user = _user(user_id)
    forward = outbox.send_files(
        participant.node, files, actor=actor, origin=f"audit:{audit.pk}", project=audit.project, user=user
    )
    Participant.objects.filter(pk=participant.pk).update(forward=forward, send_when_ready=False)
    _record_patients(participant, actor, user, "audit_send", forward=forward.pk, node=participant.node.name)
    return forward


def send_copies(access: Access, audit: Audit, participants: Iterable[Participant]) -> tuple[int, int]:
    """Send made copies now and have the others made and then sent: (sent, queued for making)."""
    sent = queued = 0
    to_make = []
    for participant in participants:
        if participant.node_id is None:
            continue
        if participant.copy_state == CopyState.READY:
            send_copy(participant, actor=access.label, user_id=getattr(access.user, "pk", None))
            sent += 1
        else:
            to_make.append(participant)
    if to_make:
        queued = request_copies(access, audit, to_make, send=True)
    return sent, queued


def download_copy(access: Access, participant: Participant) -> Iterator[bytes]:
    """The made copy as a zip stream; counts and logs the download (one access-log row per patient)."""
    if participant.copy_state != CopyState.READY or not copy_files(participant):
        raise ValidationError(f"the copy for {participant.name} is not made yet")
    Participant.objects.filter(pk=participant.pk).update(
        downloads=F("downloads") + 1, downloaded_at=timezone.now()
    )
    _record_patients(participant, access.label, access.user, "audit_download", remote_addr=access.remote_addr)
    from rtbank.audits.copies import copy_folder

    return stream_folder(copy_folder(participant))


def close_audit(access: Access, audit: Audit) -> None:
    Audit.objects.filter(pk=audit.pk).update(state=AuditState.CLOSED)
    access.record("close_audit", "audit", audit.pk, ALLOWED, project=audit.project)


def _record_patients(
    participant: Participant, actor: str, user: Any, action: str, remote_addr: str = "", **details: Any
) -> None:
    from rtbank.projects.models import AccessLog

    patients = PseudonymousPatient.objects.filter(participant=participant).values_list(
        "original_id", flat=True
    )
    AccessLog.objects.bulk_create(
        AccessLog(
            user=user if getattr(user, "is_authenticated", False) else None,
            actor=actor[:150],
            action=action,
            object_type="patient",
            object_id=str(pk),
            project=participant.audit.project,
            outcome=ALLOWED,
            remote_addr=remote_addr,
            details={"audit": participant.audit_id, "participant": participant.pk, **details},
        )
        for pk in sorted(set(patients))
    )


def _user(user_id: int | None) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=user_id).first() if user_id else None


# --- what the pages show -----------------------------------------------------------------------------------
@dataclass
class ParticipantStatus:
    participant: Participant
    sent: str  # "", queued, sent, failed
    sent_at: dt.datetime | None
    returns: int


def participant_statuses(audit: Audit) -> list[ParticipantStatus]:
    participants = list(audit.participants.select_related("node", "institution", "forward"))
    forwards = {
        f.pk: f
        for f in outbox.with_state(
            Forward.objects.filter(pk__in=[p.forward_id for p in participants if p.forward_id])
        )
    }
    rows = []
    for p in participants:
        forward = forwards.get(p.forward_id) if p.forward_id else None
        state = ""
        if forward is not None:
            state = {WorkState.DONE: "sent", WorkState.FAILED: "failed"}.get(forward.work_state, "queued")
        rows.append(ParticipantStatus(p, state, forward.last_sent_at if forward else None, p.returns.count()))
    return rows

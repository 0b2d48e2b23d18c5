"""Making each participant's copy: which stored objects go in, the anonymisation, the files, the maps.

A copy is made by the worker (work kind ``audit_copy``, one row per participant): the objects are read from
the blob store and anonymised **outside** the database transaction (``prepare``) into
``RTBANK_HOME/audits/<audit>/copy-<k>/`` (folder mode 0700, built beside it and swapped in whole), and
the handler then stores the maps the copy applied, the access-log rows (one per patient: anonymising is
an access to patient data) and, if asked, queues the send through the outbox. Making a copy again gives
the same files (keyed maps), plus whatever arrived since.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from pydicom.dataset import Dataset

from rtbank.audits.keys import AuditKeyError, read_key
from rtbank.audits.models import (
    Audit,
    AuditDataset,
    Content,
    CopyState,
    Participant,
    PseudonymousPatient,
    PseudonymousUid,
)
from rtbank.catalog.blobstore import blob_store
from rtbank.catalog.models import Instance, PlanBundleMember
from rtbank.dicom.anonymize import AnonymizationRefused, Anonymizer, KeyedPseudonyms, Option, Profile
from rtbank.dicom.anonymize.files import output_name
from rtbank.dicom.plan_bundle import Role
from rtbank.eventlog.services import log_event
from rtbank.fileio import fsync_path
from rtbank.projects.access import instances_in
from rtbank.projects.models import AccessLog
from rtbank.work.models import WorkItem
from rtbank.work.registry import Batch, PermanentError

logger = logging.getLogger("rtbank.audits")
COPY = "audit_copy"
COPIES_FOLDER = "audits"

CONTENT_OF_ROLE = {
    Role.PLAN: Content.PLAN,
    Role.STRUCTURE_SET: Content.STRUCTURE_SET,
    Role.DOSE: Content.DOSE,
    Role.RECORD: Content.RECORD,
    Role.PLANNING_IMAGES: Content.PLANNING_IMAGES,
    Role.REGISTRATION: Content.OTHER_IMAGES,
    Role.FRAME_IMAGES: Content.OTHER_IMAGES,
    Role.REGISTERED_IMAGES: Content.OTHER_IMAGES,
    Role.REGISTERED_FRAME_IMAGES: Content.OTHER_IMAGES,
}
IMAGE_KINDS = ("image", "rt_image")
# Order in a copy and in a send: images first, then what references them.
KIND_ORDER = {
    "image": 0,
    "rt_image": 1,
    "registration": 2,
    "deformable_registration": 2,
    "structure_set": 3,
    "plan": 4,
    "ion_plan": 4,
    "dose": 5,
}


class CopyError(Exception):
    """A copy cannot be made as the audit is set up; the message says what to change."""


# --- what goes into a copy -------------------------------------------------------------------------------
def content_of(instance: Instance, modality: str) -> str | None:
    """Content group of an object of a whole-patient dataset (plans bundles give roles instead)."""
    kind = instance.kind
    if kind in IMAGE_KINDS:
        return Content.PLANNING_IMAGES if modality == "CT" else Content.OTHER_IMAGES
    if kind in ("registration", "deformable_registration"):
        return Content.OTHER_IMAGES
    if kind in ("plan", "ion_plan"):
        return Content.PLAN
    if kind in ("record", "ion_record", "brachy_record", "summary_record"):
        return Content.RECORD
    return kind if kind in (Content.STRUCTURE_SET, Content.DOSE) else None


def source_instances(dataset: AuditDataset, contents: list[str] | None = None) -> list[Instance]:
    """The current objects of ``dataset`` that the audit's contents include, in copy order.

    Only what the audit's project holds is ever taken (:func:`rtbank.projects.access.instances_in`).
    """
    audit = dataset.audit
    wanted = set(contents if contents is not None else audit.contents)
    held = instances_in(audit.project).select_related("series")
    if dataset.plan_id:
        roles = dict(
            PlanBundleMember.objects.filter(plan_id=dataset.plan_id).values_list("member_id", "role")
        )
        roles[dataset.plan_id] = Role.PLAN.value
        ids = [pk for pk, role in roles.items() if CONTENT_OF_ROLE.get(role) in wanted]
        chosen = list(held.filter(pk__in=ids))
    else:
        patient_objects: QuerySet[Instance] = held.filter(series__study__patient_id=dataset.patient_id)
        chosen = [i for i in patient_objects if content_of(i, i.series.modality) in wanted]
    return sorted(
        chosen, key=lambda i: (KIND_ORDER.get(i.kind, 6), i.series.uid, i.instance_number or 0, i.pk)
    )


def reference_structure_set(dataset: AuditDataset) -> Instance | None:
    """The delineation returns are compared with: the plan's structure set, or the patient's latest one."""
    held = instances_in(dataset.audit.project, kinds=["structure_set"])
    if dataset.plan_id:
        members = PlanBundleMember.objects.filter(plan_id=dataset.plan_id, role=Role.STRUCTURE_SET.value)
        return held.filter(pk__in=members.values("member_id")).order_by("-received_at", "-pk").first()
    return held.filter(series__study__patient_id=dataset.patient_id).order_by("-received_at", "-pk").first()


def without_rois(ds: Dataset, interpreted_types: set[str]) -> Dataset:
    """The structure set without the ROIs of these interpreted types (e.g. targets): removed everywhere."""
    types = {t.upper() for t in interpreted_types}
    numbers = {
        int(o.ReferencedROINumber)
        for o in ds.get("RTROIObservationsSequence", None) or []
        if str(o.get("RTROIInterpretedType", "") or "").strip().upper() in types
        and o.get("ReferencedROINumber") not in (None, "")
    }
    if not numbers:
        return ds
    for keyword, number_keyword in (
        ("StructureSetROISequence", "ROINumber"),
        ("ROIContourSequence", "ReferencedROINumber"),
        ("RTROIObservationsSequence", "ReferencedROINumber"),
    ):
        if keyword in ds:
            setattr(
                ds,
                keyword,
                [
                    item
                    for item in ds[keyword].value
                    if item.get(number_keyword) in (None, "") or int(item.get(number_keyword)) not in numbers
                ],
            )
    return ds


# --- making a copy (outside the transaction) ---------------------------------------------------------------
@dataclass
class MadeCopy:
    participant_id: int
    files: int = 0
    size: int = 0
    uids: list[tuple[int, str, str]] = field(default_factory=list)  # (dataset id, original UID, copy's UID)
    patients: list[tuple[int, int, str]] = field(default_factory=list)  # (dataset id, patient id, pseudonym)
    date_shift_days: int = 0
    objects_by_patient: dict[int, int] = field(default_factory=dict)


def copies_root(audit: Audit) -> Path:
    root = Path(settings.HOME) / COPIES_FOLDER
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = root / str(int(audit.pk))
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def copy_folder(participant: Participant) -> Path:
    # copy_id is made by rtbank (digits), never taken from a request.
    return copies_root(participant.audit) / f"copy-{int(participant.copy_id)}"


def anonymizer_for(participant: Participant, key: bytes | None = None) -> Anonymizer:
    audit = participant.audit
    profile = Profile([Option(o) for o in audit.options])
    return Anonymizer(profile, key or read_key(audit), participant.copy_id, prefix=audit.pseudonym_prefix)


def make_copy(participant: Participant) -> MadeCopy:
    """Write the participant's copy (replacing an earlier one whole) and return the maps it applied."""
    audit = participant.audit
    key = read_key(audit)
    anonymizer = anonymizer_for(participant, key)
    pseudonyms = KeyedPseudonyms(key, participant.copy_id, audit.pseudonym_prefix)
    final = copy_folder(participant)
    building = final.with_name(f".{final.name}.{secrets.token_hex(6)}")
    building.mkdir(mode=0o700)
    made = MadeCopy(participant.pk)
    if Option.RETAIN_LONGITUDINAL_MODIFIED_DATES.value in audit.options:
        made.date_shift_days = anonymizer.date_shift_days
    try:
        for dataset in AuditDataset.objects.filter(audit=audit).select_related("patient", "audit__project"):
            _copy_dataset(dataset, anonymizer, building, made)
            patient_id = dataset.patient.patient_id
            made.patients.append(
                (
                    dataset.pk,
                    dataset.patient_id,
                    anonymizer.patient_map.get(patient_id) or pseudonyms(patient_id),
                )
            )
        fsync_path(building)
        _swap(building, final)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return made


def _copy_dataset(dataset: AuditDataset, anonymizer: Anonymizer, folder: Path, made: MadeCopy) -> None:
    store = blob_store()
    seen = set(anonymizer.uid_map)
    objects = source_instances(dataset)
    if not objects:
        raise CopyError(
            f"{dataset.label} has nothing the audit's contents include; change the contents or the case"
        )
    types = set(dataset.audit.remove_roi_types)
    for instance in objects:
        path = store.local_path(instance.blob_key)
        if path is None:
            raise CopyError("the blob store has no local files; audit copies need them")
        ds = pydicom.dcmread(path, force=True)
        if instance.kind == "structure_set" and types:
            ds = without_rois(ds, types)
        out = anonymizer.anonymize(ds)
        buffer = io.BytesIO()
        out.save_as(buffer, enforce_file_format=True)
        data = buffer.getvalue()
        target = folder / output_name(out)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        made.files += 1
        made.size += len(data)
        made.objects_by_patient[dataset.patient_id] = made.objects_by_patient.get(dataset.patient_id, 0) + 1
    made.uids += [
        (dataset.pk, original, new) for original, new in anonymizer.uid_map.items() if original not in seen
    ]


def _swap(building: Path, final: Path) -> None:
    old = final.with_name(f".{final.name}.old.{secrets.token_hex(6)}")
    if final.exists():
        os.rename(final, old)
    os.rename(building, final)
    fsync_path(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def copy_files(participant: Participant) -> list[Path]:
    """The files of a made copy, images first (the order a send uses)."""
    folder = copy_folder(participant)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix == ".dcm"] if folder.is_dir() else []
    order = {kind.replace("_", "-"): rank for kind, rank in KIND_ORDER.items()}
    return sorted(files, key=lambda p: (order.get(p.name.rsplit("-", 1)[0], 6), p.name))


# --- the work kind ---------------------------------------------------------------------------------------
PERMANENT = (AnonymizationRefused, AuditKeyError, CopyError, Participant.DoesNotExist)


def prepare_copies(items: list[WorkItem], batch: Batch) -> None:
    """Before the batch transaction: make each claimed participant's copy (files only)."""
    for item in items:
        try:
            participant = Participant.objects.select_related("audit").get(pk=item.payload["participant"])
            batch.data[(COPY, item.pk)] = make_copy(participant)
        except Exception as exc:  # noqa: BLE001 - reported by the handler as the row's error
            logger.warning("audit copy for participant %s failed: %s", item.payload.get("participant"), exc)
            batch.data[(COPY, item.pk)] = exc
            if isinstance(exc, PERMANENT) or item.attempts >= item.max_attempts:
                with transaction.atomic():
                    Participant.objects.filter(pk=item.payload.get("participant")).update(
                        copy_state=CopyState.FAILED, copy_error=f"{exc}"[:2000]
                    )


def finish_copy(item: WorkItem, batch: Batch) -> dict[str, Any]:
    """Work handler of ``audit_copy``: store what the made copy applied; queue its send when asked."""
    key = (COPY, item.pk)
    if key not in batch.data:
        prepare_copies([item], batch)
    made = batch.data[key]
    if isinstance(made, PERMANENT):
        raise PermanentError(str(made))
    if isinstance(made, Exception):
        raise made
    participant = Participant.objects.select_related("audit__project", "node").get(pk=made.participant_id)
    store_copy(participant, made, user_id=item.payload.get("user"), actor=item.payload.get("actor", "worker"))
    return {"files": made.files, "bytes": made.size}


def store_copy(participant: Participant, made: MadeCopy, *, user_id: int | None, actor: str) -> None:
    audit = participant.audit
    PseudonymousUid.objects.bulk_create(
        [
            PseudonymousUid(participant=participant, dataset_id=d, original_uid=o, uid=n)
            for d, o, n in made.uids
        ],
        ignore_conflicts=True,
        batch_size=500,
    )
    for dataset_id, patient_id, pseudonym in made.patients:
        PseudonymousPatient.objects.update_or_create(
            participant=participant,
            dataset_id=dataset_id,
            defaults={
                "original_id": patient_id,
                "pseudonym": pseudonym,
                "date_shift_days": made.date_shift_days,
            },
        )
    Participant.objects.filter(pk=participant.pk).update(
        copy_state=CopyState.READY,
        copy_error="",
        copy_files=made.files,
        copy_bytes=made.size,
        copy_made_at=timezone.now(),
    )
    AccessLog.objects.bulk_create(
        AccessLog(
            user_id=user_id,
            actor=actor[:150],
            action="anonymise",
            object_type="patient",
            object_id=str(patient_id),
            project=audit.project,
            outcome="allowed",
            details={"audit": audit.pk, "participant": participant.pk, "objects": count},
        )
        for patient_id, count in sorted(made.objects_by_patient.items())
    )
    log_event(
        "audits",
        "copy_made",
        actor=actor,
        object_type="audit",
        object_id=audit.pk,
        details={"participant": participant.pk, "files": made.files},
    )
    if participant.send_when_ready and participant.node_id:
        from rtbank.audits.services import send_copy

        participant.refresh_from_db()
        send_copy(participant, actor=actor, user_id=user_id)

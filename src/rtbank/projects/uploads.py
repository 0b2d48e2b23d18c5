"""Web upload: DICOM files and zip archives into the spool (the same pipeline as C-STORE), optionally into a
project.

Uploaded files arrive on disk (``TemporaryFileUploadHandler``), are read one object at a time, and are
written durably to the spool by :func:`rtbank.ingest.importer.import_stream` before the response — so an
HTTP success means the data is safe (I1). An upload marked de-identified is first checked object by object
(:mod:`rtbank.projects.deidentified`); if anything still identifies, nothing is stored and the person gets the
list of offending elements. An upload into a project is assigned by a work row (kind ``upload_assign``) once
the worker has filed its objects: whole patients, only of the uploader's institution, never reusing a patient
that is already in another project (that stays a site-admin action).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pydicom
from django.db import transaction
from django.utils import timezone
from pydicom.errors import InvalidDicomError

from rtbank.catalog.indexing import audit_return_q
from rtbank.catalog.models import Instance, InstanceState, Patient
from rtbank.ingest import importer, spool
from rtbank.ingest.importer import ImportRefused, import_stream
from rtbank.projects.access import ALLOWED, Access
from rtbank.projects.deidentified import Offence, remaining_identifiers, summarise
from rtbank.projects.models import AssignedVia, JobState, Project, ProjectSubject, Upload
from rtbank.projects.services import assign_patient
from rtbank.work import services as work
from rtbank.work.models import WorkItem, WorkState
from rtbank.work.registry import Batch

UPLOAD_ASSIGN = "upload_assign"
MAX_RESULTS = 2000  # per-file result lines kept on the upload (the counts are always complete)


class UploadRefused(ValueError):
    """Nothing of the upload was stored; ``problems`` says why, one line each."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass
class Scan:
    """What a pass over the uploaded files found before anything is stored."""

    uids: list[str] = field(default_factory=list)
    offences: list[tuple[str, list[Offence]]] = field(default_factory=list)


def scan(files: list[Any], *, check_identifiers: bool) -> Scan:
    """Read every object's header once (zip members included) for its UID and, when asked, identifiers."""
    found = Scan()
    for upload in files:
        for name, stream in _objects(upload.name, upload.file):
            try:
                ds = pydicom.dcmread(stream, stop_before_pixels=True, force=True)
            except (
                InvalidDicomError,
                ValueError,
                TypeError,
                KeyError,
                EOFError,
                AttributeError,
                RecursionError,
            ):
                continue  # reported as "not DICOM" by the importer
            uid = str(ds.get("SOPInstanceUID", "") or "")
            if not uid:
                continue
            found.uids.append(uid)
            if check_identifiers:
                try:
                    offences = remaining_identifiers(ds)
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    raise UploadRefused(f"{name}: cannot be checked for identifiers ({exc})") from None
                if offences:
                    found.offences.append((name, offences))
    return found


def _objects(name: str, stream: BinaryIO) -> Iterator[tuple[str, BinaryIO]]:
    """Each object of one uploaded file as a readable stream (headers are read, pixel data is not)."""
    stream.seek(0)
    if zipfile.is_zipfile(stream):
        stream.seek(0)
        with zipfile.ZipFile(stream) as archive:
            # The importer's own member checks (zip slip, zip bomb) run here too, before anything is read.
            for member, read in importer._zip_members(archive, name):  # noqa: SLF001 - one set of zip rules
                try:
                    yield member, io.BytesIO(read())
                except ImportRefused:
                    continue  # the importer reports it per file
    else:
        stream.seek(0)
        yield name, stream
    stream.seek(0)


def receive(access: Access, files: list[Any], *, deidentified: bool, project: Project | None) -> Upload:
    """Store an upload (the caller checked the uploader role and that ``project`` is in
    ``upload_projects``)."""
    institution = access.upload_institution()
    if institution is None:
        raise UploadRefused("only uploaders of an institution may upload")
    if not files:
        raise UploadRefused("choose at least one file")
    try:
        # The UIDs are needed only to assign the upload; identifiers only when it claims to be de-identified.
        found = scan(files, check_identifiers=deidentified) if deidentified or project else Scan()
    except ImportRefused as exc:
        raise UploadRefused(str(exc)) from None
    if found.offences:
        access.record(
            "upload",
            "upload",
            "",
            "refused",
            project=project,
            reason="identifiers remain",
            files=len(found.offences),
        )
        raise UploadRefused(
            "the upload is marked de-identified, but identifiers remain; nothing was stored",
            summarise(found.offences),
        )
    upload = Upload.objects.create(
        user=access.user,
        institution=institution,
        project=project,
        deidentified=deidentified,
        files=len(files),
    )
    info = {
        "institution": institution.code,
        "upload": upload.pk,
        "uploaded_by": access.label,
        "deidentified": deidentified,
    }
    results: list[list[str]] = []
    for f in files:
        try:
            report = import_stream(f.name, f.file, info)
        except ImportRefused as exc:
            upload.rejected += 1
            results.append([f.name, str(exc)])
            continue
        upload.source_ids.append(report.source_id)
        upload.stored += report.stored
        upload.not_dicom += report.not_dicom
        upload.rejected += len(report.rejected)
        results += [[name, result] for name, result in report.results]
    upload.results = results[:MAX_RESULTS]
    if project is not None and upload.stored:
        upload.assignment = JobState.PENDING
    with transaction.atomic():
        upload.save()
        if upload.assignment:
            work.enqueue(
                UPLOAD_ASSIGN,
                f"upload:{upload.pk}",
                {"upload": upload.pk, "uids": sorted(set(found.uids))},
                max_attempts=50,
            )
        access.record(
            "upload",
            "upload",
            upload.pk,
            ALLOWED,
            project=project,
            stored=upload.stored,
            rejected=upload.rejected,
        )
    return upload


def ensure_temp_dir() -> None:
    from django.conf import settings

    os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, exist_ok=True)


# --- assignment once filed ------------------------------------------------------------------------------
def assign_upload(item: WorkItem, batch: Batch) -> dict[str, Any]:
    """Work handler: put the uploaded patients into the upload's project once the worker has filed them."""
    upload = Upload.objects.select_related("project", "user", "institution").get(pk=item.payload["upload"])
    if upload.assignment != JobState.PENDING or upload.project is None:
        return {"state": upload.assignment}
    if _still_filing(upload.source_ids):
        _again_in(item, seconds=2)
        return {"state": "waiting"}
    access = Access(upload.user)
    project = upload.project
    if not access.may_assign(project) or not project.institutions.filter(pk=upload.institution_id).exists():
        return _done(upload, JobState.FAILED, {"error": f"you may no longer assign to {project.code}"})
    patients = (
        Patient.objects.filter(
            pk__in=Instance.objects.filter(
                sop_instance_uid__in=item.payload.get("uids", []),
                state=InstanceState.CURRENT,
                series__study__patient__institution=upload.institution,
            ).values("series__study__patient_id")
        )
        .exclude(audit_return_q())
        .order_by("pk")
    )  # returned audit data stays with its audit
    assigned, already, refused = [], [], []
    for patient in patients:
        here = ProjectSubject.objects.filter(project=project, patient=patient).first()
        if here and here.whole_patient:
            already.append(here.subject_id)
            continue
        if ProjectSubject.objects.filter(patient=patient).exclude(project=project).exists():
            refused.append(patient.pk)
            continue
        subject = assign_patient(project, patient, actor=access.label, via=AssignedVia.UPLOAD)
        assigned.append(subject.subject_id)
    result = {"assigned": assigned, "already": already, "refused_in_other_project": len(refused)}
    return _done(upload, JobState.DONE, result)


def _still_filing(source_ids: list[str]) -> bool:
    dirs = spool.spool_dirs()
    for source_id in source_ids:
        if any(name.startswith(source_id + ".") and name.endswith(".dcm") for name in os.listdir(dirs.ready)):
            return True
        if WorkItem.objects.filter(
            kind="ingest",
            key__startswith=source_id + ".",
            state__in=[WorkState.PENDING, WorkState.IN_PROGRESS],
        ).exists():
            return True
    return False


def _again_in(item: WorkItem, seconds: float) -> None:
    """Run this row once more, a little later (not a failure: the worker has not filed everything yet)."""
    WorkItem.objects.filter(pk=item.pk).update(
        rerun=True, not_before=timezone.now() + dt.timedelta(seconds=seconds)
    )


def _done(upload: Upload, state: str, result: dict[str, Any]) -> dict[str, Any]:
    upload.assignment, upload.assignment_result = state, result
    upload.save(update_fields=["assignment", "assignment_result"])
    return {"state": state, **result}

"""Filing one parsed object into the catalog: hierarchy rows, RT rows, references, versions, collisions.

Rules for a SOP Instance UID that is already stored:

* same content (dataset hash) → acknowledged and ignored;
* different content, same institution and same patient → the new one becomes current, the earlier one is
  kept as ``superseded`` and the correction is logged;
* different content from another institution (or for another patient) → a collision: the new object is
  kept ``quarantined`` for an admin, nothing is overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils.module_loading import import_string
from pydicom.dataset import Dataset

from rtbank.catalog.models import (
    Dose,
    Instance,
    InstanceState,
    Patient,
    Reference,
    Registration,
    Roi,
    RTPlan,
    Series,
    StructureSet,
    Study,
    TreatmentRecord,
)
from rtbank.dicom.keys import InstanceKeys
from rtbank.dicom.references import references
from rtbank.dicom.rtobjects import DoseInfo, PlanInfo, RecordInfo, RegistrationInfo, StructureSetInfo
from rtbank.dicom.sop import RtKind
from rtbank.eventlog.models import Outcome
from rtbank.eventlog.services import log_event

LOCAL_ISSUER = "LOCAL"
# Filing classifiers, consulted in this order before an object is filed (explicit, like the pipeline's
# stages): ``classify(ds, keys, source) -> Claim | None``. The first claim decides. A claimed object is not
# clinical data: it is filed under the claim's issuer (its own patients) and handed to the claim's
# ``attach`` after filing, in the same transaction. The receive path is not involved.
FILING_CLASSIFIERS: list[str] = [
    "rtbank.audits.collection.classify",  # what audit participants send back
]
# Patients under issuers starting with this hold returned audit data (issuer "audit:<audit>:<participant>"):
# pseudonymous, never clinical — not in the inbox, not matched by rules, never assigned to a project.
AUDIT_ISSUER = "audit:"


class Filed(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    NEW_VERSION = "new_version"
    QUARANTINED = "quarantined"


@dataclass(frozen=True)
class StoredFile:
    """The bytes of one object as the blob store will hold them."""

    blob_key: str
    size: int
    file_sha256: str
    content_sha256: str
    transfer_syntax_uid: str


@dataclass(frozen=True)
class Source:
    """Who sent an object and how (from the spool source record)."""

    via: str
    institution_id: int | None = None
    institution_code: str = ""
    node_id: int | None = None
    calling_ae: str = ""
    called_ae: str = ""
    spool_name: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    claim: Claim | None = None  # set by classify(): not clinical data

    @property
    def actor(self) -> str:
        return f"{self.calling_ae}@dicom" if self.via == "dicom" else self.via


@dataclass(frozen=True)
class Claim:
    """A filing classifier's verdict on one object: it belongs to another area, not to the clinical data."""

    issuer: str  # the patient key's issuer, e.g. "audit:12:3"
    attach: str  # dotted path of attach(instance, claim), called after filing in the filing transaction
    details: dict[str, Any] = field(default_factory=dict)  # kept in the instance's provenance


def classify(ds: Dataset, keys: InstanceKeys, source: Source) -> Source:
    """``source`` with the first classifier's claim (and the claim in its provenance), or unchanged."""
    for dotted in FILING_CLASSIFIERS:
        claim = import_string(dotted)(ds, keys, source)
        if claim is not None:
            return replace(source, claim=claim, provenance={**source.provenance, "claim": claim.details})
    return source


def attach_claimed(instance: Instance, source: Source) -> None:
    """After filing a claimed object: hand it to the area that claimed it (same transaction)."""
    if source.claim is not None:
        import_string(source.claim.attach)(instance, source.claim)


def audit_return_q(prefix: str = "") -> Q:
    """Patients holding returned audit data (``prefix``: the path from another model, e.g.
    ``series__study__patient__``)."""
    return Q(**{f"{prefix}issuer__startswith": AUDIT_ISSUER})


@dataclass
class FilingCache:
    """Hierarchy rows looked up once per batch."""

    patients: dict[tuple[str, str], Patient] = field(default_factory=dict)
    studies: dict[tuple[int, str], Study] = field(default_factory=dict)
    series: dict[tuple[int, str], Series] = field(default_factory=dict)


@dataclass(frozen=True)
class FilingResult:
    outcome: Filed
    instance: Instance | None
    patient: Patient | None
    message: str = ""


def file_object(
    ds: Dataset, keys: InstanceKeys, stored: StoredFile, source: Source, cache: FilingCache
) -> FilingResult:
    """File one object (inside the caller's transaction). The blob must already be in the store."""
    versions = list(
        Instance.objects.filter(sop_instance_uid=keys.sop_instance_uid).select_related(
            "series__study__patient"
        )
    )
    if any(v.content_sha256 == stored.content_sha256 for v in versions):
        return FilingResult(Filed.DUPLICATE, None, None, "identical object already stored")
    issuer = issuer_of(keys, source)
    current = next((v for v in versions if v.state == InstanceState.CURRENT), None)
    conflict = _conflict(keys, issuer, source, current)
    if conflict:
        instance = _new_instance(
            keys,
            stored,
            source,
            None,
            InstanceState.QUARANTINED,
            len(versions) + 1,
            {"collision": conflict, "patient_issuer": issuer},
        )
        log_event(
            "worker",
            "uid_collision",
            actor=source.actor,
            outcome=Outcome.WARNING,
            object_type="instance",
            object_id=instance.pk,
            message=conflict,
        )
        return FilingResult(Filed.QUARANTINED, instance, None, conflict)
    patient, series = _hierarchy(keys, issuer, source, cache)
    outcome = Filed.NEW
    if current is not None:
        Instance.objects.filter(pk=current.pk).update(state=InstanceState.SUPERSEDED)
        outcome = Filed.NEW_VERSION
    instance = _new_instance(keys, stored, source, series, InstanceState.CURRENT, len(versions) + 1, {})
    if current is not None:
        log_event(
            "worker",
            "object_corrected",
            actor=source.actor,
            object_type="instance",
            object_id=instance.pk,
            message=f"version {instance.version} supersedes instance #{current.pk}",
        )
    _index_rt(instance, keys.kind, ds)
    return FilingResult(outcome, instance, patient)


def issuer_of(keys: InstanceKeys, source: Source) -> str:
    if source.claim is not None:
        return source.claim.issuer
    issuer = keys.issuer_of_patient_id or source.institution_code or LOCAL_ISSUER
    # An unclaimed object cannot hide among audit returns by naming their issuer itself.
    return f"dicom:{issuer}"[:64] if issuer.startswith(AUDIT_ISSUER) else issuer


def prepare_hierarchy(filings: list[tuple[InstanceKeys, Source]], cache: FilingCache) -> None:
    """Create the patient/study/series rows of a batch up front, in key order, each in its own transaction.

    Two workers that file objects of the same patients then take the unique-index locks in the same order
    and hold them only for one short transaction: no deadlock. Objects headed for quarantine (a UID
    already current for another institution or patient) get no rows.
    """
    uids = [k.sop_instance_uid for k, _ in filings]
    current = {
        i.sop_instance_uid: i
        for i in Instance.objects.filter(
            sop_instance_uid__in=uids, state=InstanceState.CURRENT
        ).select_related("series__study__patient")
    }
    wanted: dict[tuple[str, str, str, str], tuple[InstanceKeys, Source]] = {}
    for keys, source in filings:
        issuer = issuer_of(keys, source)
        if _conflict(keys, issuer, source, current.get(keys.sop_instance_uid)):
            continue
        wanted.setdefault(
            (issuer, keys.patient_id, keys.study_instance_uid, keys.series_instance_uid), (keys, source)
        )
    for key in sorted(wanted):
        keys, source = wanted[key]
        with transaction.atomic():
            _hierarchy(keys, key[0], source, cache)


def _conflict(keys: InstanceKeys, issuer: str, source: Source, current: Instance | None) -> str:
    if current is None:
        return ""
    if current.institution_id != source.institution_id:
        return "the same SOP Instance UID with different content was sent by another institution"
    current_patient = current.series.study.patient if current.series else None
    if current_patient and (current_patient.issuer, current_patient.patient_id) != (issuer, keys.patient_id):
        return "the same SOP Instance UID with different content belongs to another patient"
    return ""


def _hierarchy(keys: InstanceKeys, issuer: str, source: Source, cache: FilingCache) -> tuple[Patient, Series]:
    patient_key = (issuer, keys.patient_id)
    patient = cache.patients.get(patient_key)
    if patient is None:
        patient, created = Patient.objects.get_or_create(
            issuer=issuer,
            patient_id=keys.patient_id,
            defaults={
                "name": keys.patient_name,
                "birth_date": keys.patient_birth_date,
                "sex": keys.patient_sex,
                "institution_id": source.institution_id,
            },
        )
        if not created and not patient.name and keys.patient_name:
            Patient.objects.filter(pk=patient.pk).update(name=keys.patient_name)
        cache.patients[patient_key] = patient
    study = cache.studies.get((patient.pk, keys.study_instance_uid))
    if study is None:
        study, _ = Study.objects.get_or_create(
            patient=patient,
            uid=keys.study_instance_uid,
            defaults={
                "date": keys.study_date,
                "description": keys.study_description,
                "accession_number": keys.accession_number,
                "study_id": keys.study_id,
            },
        )
        cache.studies[(patient.pk, study.uid)] = study
    series = cache.series.get((study.pk, keys.series_instance_uid))
    if series is None:
        series, _ = Series.objects.get_or_create(
            study=study,
            uid=keys.series_instance_uid,
            defaults={
                "modality": keys.modality,
                "number": keys.series_number,
                "description": keys.series_description,
                "date": keys.series_date,
                "frame_of_reference_uid": keys.frame_of_reference_uid,
                "manufacturer": keys.manufacturer,
                "model_name": keys.model_name,
                "station_name": keys.station_name,
                "institution_name": keys.institution_name,
            },
        )
        cache.series[(study.pk, series.uid)] = series
    return patient, series


def _new_instance(
    keys: InstanceKeys,
    stored: StoredFile,
    source: Source,
    series: Series | None,
    state: str,
    version: int,
    extra: dict[str, Any],
) -> Instance:
    return Instance.objects.create(
        sop_instance_uid=keys.sop_instance_uid,
        sop_class_uid=keys.sop_class_uid,
        kind=keys.kind.value,
        series=series,
        state=state,
        version=version,
        instance_number=keys.instance_number,
        position=list(keys.slice_position_mm) if keys.slice_position_mm else None,
        orientation=list(keys.orientation) if keys.orientation else None,
        pixel_spacing=list(keys.pixel_spacing_mm) if keys.pixel_spacing_mm else None,
        slice_thickness=keys.slice_thickness_mm,
        rows=keys.rows,
        columns=keys.columns,
        frames=keys.frames,
        content_date=keys.content_date,
        trial_subject_id=keys.trial_subject_id,
        burned_in_annotation=keys.burned_in_annotation[:3],
        blob_key=stored.blob_key,
        size=stored.size,
        file_sha256=stored.file_sha256,
        content_sha256=stored.content_sha256,
        transfer_syntax_uid=stored.transfer_syntax_uid,
        received_via=source.via,
        calling_ae=source.calling_ae,
        called_ae=source.called_ae,
        source_node_id=source.node_id,
        institution_id=source.institution_id,
        spool_name=source.spool_name,
        provenance={**source.provenance, **extra},
    )


def _index_rt(instance: Instance, kind: RtKind, ds: Dataset) -> None:
    refs = references(ds)
    if refs:
        Reference.objects.bulk_create(
            [
                Reference(source=instance, kind=r.kind.value, level=r.level, target_uid=r.target_uid)
                for r in refs
            ],
            ignore_conflicts=True,
            batch_size=500,
        )
    if kind in (RtKind.PLAN, RtKind.ION_PLAN):
        RTPlan.objects.create(instance=instance, **vars(PlanInfo.from_dataset(ds)))
    elif kind == RtKind.STRUCTURE_SET:
        info = StructureSetInfo.from_dataset(ds)
        fields = {k: v for k, v in vars(info).items() if k != "rois"}
        ss = StructureSet.objects.create(instance=instance, **fields)
        Roi.objects.bulk_create([Roi(structure_set=ss, **vars(roi)) for roi in _unique_rois(info)])
    elif kind == RtKind.DOSE:
        info = DoseInfo.from_dataset(ds)
        fields = {
            k: v for k, v in vars(info).items() if k not in ("pixel_spacing_mm", "referenced_beam_numbers")
        }
        Dose.objects.create(
            instance=instance,
            pixel_spacing=list(info.pixel_spacing_mm or []) or None,
            referenced_beams=list(info.referenced_beam_numbers),
            **fields,
        )
    elif kind in (RtKind.RECORD, RtKind.ION_RECORD, RtKind.BRACHY_RECORD, RtKind.SUMMARY_RECORD):
        TreatmentRecord.objects.create(instance=instance, **vars(RecordInfo.from_dataset(ds)))
    elif kind in (RtKind.REGISTRATION, RtKind.DEFORMABLE_REGISTRATION):
        info = RegistrationInfo.from_dataset(ds)
        Registration.objects.create(
            instance=instance,
            deformable=info.deformable,
            frames=list(info.frames),
            series_uids=list(info.series_uids),
            matrices=[[frame, list(values)] for frame, values in info.matrices],
            registration_types=list(info.registration_types),
        )


def _unique_rois(info: StructureSetInfo) -> list:
    seen: set[int] = set()
    out = []
    for roi in info.rois:
        if roi.number not in seen:  # a few exporters repeat ROI numbers; keep the first
            seen.add(roi.number)
            out.append(roi)
    return out

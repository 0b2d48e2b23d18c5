"""Collecting returns: recognising what participants send back, before it is filed, and attaching it.

A returned object (a participant's RTSTRUCT, RTPLAN, RTDOSE — or an object of the copy sent back as it
was) carries UIDs of the participant's copy: it references the copy's images, frame of reference, study,
structure set or plan (the copy's UIDs are ``2.25.<keyed HMAC>`` values nobody else can produce), or it
is the copy's own object. Failing that, its Patient ID is one of the copy's pseudonyms. rtbank's filing
asks :func:`classify` about every object before filing it (``rtbank.catalog.indexing.FILING_CLASSIFIERS``);
a recognised object is filed under its own patient with the issuer ``audit:<audit>:<participant>`` — never
a clinical patient, never in the inbox, never matched by rules, never assigned to a project — and
:func:`attach` (called after filing, in the same transaction) records it for the participant and queues
the audit's QA. Whether it came over DICOM or by upload makes no difference.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from django.utils import timezone
from pydicom.dataset import Dataset

from rtbank.audits.models import Participant, PseudonymousPatient, PseudonymousUid, ReturnedObject
from rtbank.catalog.indexing import AUDIT_ISSUER, Claim, Source
from rtbank.catalog.models import Instance
from rtbank.dicom.keys import InstanceKeys
from rtbank.dicom.references import references
from rtbank.eventlog.services import log_event
from rtbank.work import services as work

logger = logging.getLogger("rtbank.audits")
QA = "audit_qa"  # work kind: score an audit's returns (rtbank.audits.qa)
ATTACH = "rtbank.audits.collection.attach"


def classify(ds: Dataset, keys: InstanceKeys, source: Source) -> Claim | None:
    """The filing classifier: a :class:`Claim` for returned audit data, else ``None`` (clinical data)."""
    found = recognise(ds, keys)
    if found is None:
        return None
    participant_id, audit_id, dataset_id, details = found
    return Claim(
        issuer=f"{AUDIT_ISSUER}{audit_id}:{participant_id}",
        attach=ATTACH,
        details={"audit": audit_id, "participant": participant_id, "dataset": dataset_id, **details},
    )


def recognise(
    ds: Dataset, keys: InstanceKeys | None = None
) -> tuple[int, int, int | None, dict[str, Any]] | None:
    """(participant, audit, dataset, evidence) of a returned object, or ``None``.

    UIDs decide first: the participant whose copy's UIDs the object carries most often. Only an object with
    none of them is recognised by a pseudonym in its Patient ID.
    """
    if not Participant.objects.exists():
        # No audit has participants, so nothing can be a return: skip walking the object's references
        # (most of this function's cost, paid for every CT slice that arrives).
        return None
    keys = keys or InstanceKeys.from_dataset(ds)
    uids = _uids_of(ds, keys)
    rows = list(PseudonymousUid.objects.filter(uid__in=uids).values_list("participant_id", "dataset_id"))
    if rows:
        participant_id = Counter(p for p, _ in rows).most_common(1)[0][0]
        datasets = Counter(d for p, d in rows if p == participant_id and d is not None)
        dataset_id = datasets.most_common(1)[0][0] if datasets else None
        evidence = {"matched_by": "uid", "uids": sum(1 for p, _ in rows if p == participant_id)}
    else:
        pseudonym = (keys.patient_id or "").strip()
        match = (
            PseudonymousPatient.objects.filter(pseudonym=pseudonym)
            .values_list("participant_id", "dataset_id")
            .first()
            if pseudonym
            else None
        )
        if match is None:
            return None
        participant_id, dataset_id = match
        evidence = {"matched_by": "pseudonym"}
    audit_id = Participant.objects.filter(pk=participant_id).values_list("audit_id", flat=True).first()
    if audit_id is None:
        return None
    return participant_id, audit_id, dataset_id, evidence


def attach(instance: Instance, claim: Claim) -> None:
    """After filing (same transaction): record the return for its participant and queue the audit's QA."""
    details = claim.details
    participant = Participant.objects.filter(pk=details["participant"]).first()
    if participant is None:  # the participant was removed between classifying and filing
        return
    ReturnedObject.objects.get_or_create(
        instance=instance,
        defaults={
            "participant": participant,
            "dataset_id": details.get("dataset"),
            "kind": instance.kind,
            "matched_by": details.get("matched_by", ""),
            "evidence": {k: v for k, v in details.items() if k in ("uids", "matched_by")},
        },
    )
    now = timezone.now()
    Participant.objects.filter(pk=participant.pk, first_return_at__isnull=True).update(first_return_at=now)
    Participant.objects.filter(pk=participant.pk).update(last_return_at=now)
    work.enqueue(QA, f"audit:{participant.audit_id}", {"audit": participant.audit_id})
    log_event(
        "audits",
        "return_received",
        actor=instance.calling_ae or instance.received_via,
        object_type="instance",
        object_id=instance.pk,
        details={"audit": participant.audit_id, "participant": participant.pk, "kind": instance.kind},
    )


def _uids_of(ds: Dataset, keys: InstanceKeys) -> list[str]:
    """Every UID by which an object can point into a copy: its own, its study/series/frame, its references."""
    uids = {
        keys.sop_instance_uid,
        keys.study_instance_uid,
        keys.series_instance_uid,
        keys.frame_of_reference_uid,
    }
    uids.update(ref.target_uid for ref in references(ds))
    for item in ds.get("ReferencedFrameOfReferenceSequence", None) or []:
        uids.add(str(item.get("FrameOfReferenceUID", "") or ""))
        for study in item.get("RTReferencedStudySequence", None) or []:
            uids.add(str(study.get("ReferencedSOPInstanceUID", "") or ""))
            for series in study.get("RTReferencedSeriesSequence", None) or []:
                uids.add(str(series.get("SeriesInstanceUID", "") or ""))
    return sorted(u.strip() for u in uids if u and u.strip())

"""A patient as one project sees them: the catalog's patient view cut down to what the project holds.

A plan assigned on its own brings its bundle, not the rest of the patient's data: objects outside the
project are dropped, references to them are shown as "outside this project" without their UIDs, and series
and image counts cover only the project's instances.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rtbank.catalog.models import Instance, Patient, PlanBundleMember, Reference
from rtbank.catalog.patient_view import PatientView, patient_view


def subject_view(patient: Patient, allowed_pks: set[int]) -> PatientView:
    view = patient_view(patient)
    allowed_series = (
        set(Instance.objects.filter(pk__in=allowed_pks).values_list("series_id", flat=True))
        if allowed_pks
        else set()
    )
    rt_objects = [o for o in view.rt_objects if o.instance.pk in allowed_pks]
    for obj in rt_objects:
        obj.incoming = [i for i in obj.incoming if i.pk in allowed_pks]
        for link in obj.outgoing:
            outside = (link.target is not None and link.target.pk not in allowed_pks) or (
                link.series is not None and link.series.pk not in allowed_series
            )
            link.outside = outside  # type: ignore[attr-defined]
            if outside:
                link.target, link.series, link.uid = None, None, ""
    counts = Counter(Instance.objects.filter(pk__in=allowed_pks).values_list("series_id", flat=True))
    series = [s for s in view.series if s.pk in allowed_series]
    return PatientView(patient, series, rt_objects, dict(counts))


@dataclass
class BundleGroup:
    role: str
    kind: str
    modality: str
    description: str
    count: int


def bundle_groups(plan: Instance, allowed_pks: set[int]) -> list[BundleGroup]:
    """The plan's bundle members by role, images grouped per series (a CT is one line, not 300)."""
    groups: Counter[tuple[str, str, str, str]] = Counter()
    rows = PlanBundleMember.objects.filter(plan=plan).values_list(
        "role", "member_id", "member__kind", "member__series__modality", "member__series__description"
    )
    for role, member_id, kind, modality, description in rows:
        if member_id in allowed_pks:
            groups[(role, kind, modality or "", description or "")] += 1
    return [
        BundleGroup(role, kind, modality, description, n)
        for (role, kind, modality, description), n in sorted(groups.items())
    ]


@dataclass
class PlanReference:
    kind: str
    instance: Instance | None
    uid: str
    outside: bool = False


def plan_references(plan: Instance, allowed_pks: set[int]) -> tuple[list[PlanReference], list[PlanReference]]:
    """(what the plan references, what references the plan), limited to the project's instances."""
    outgoing = []
    refs = list(
        Reference.objects.filter(source=plan)
        .exclude(kind="image")
        .order_by("kind", "target_uid")
        .values_list("kind", "level", "target_uid")
    )
    targets = {
        i.sop_instance_uid: i
        for i in Instance.objects.filter(
            sop_instance_uid__in=[uid for _, level, uid in refs if level == "instance"], state="current"
        )
    }
    for kind, level, uid in refs:
        target = targets.get(uid) if level == "instance" else None
        if target is not None and target.pk not in allowed_pks:
            outgoing.append(PlanReference(kind, None, "", outside=True))
        else:
            outgoing.append(PlanReference(kind, target, uid))
    incoming = [
        PlanReference(r.kind, r.source, r.source.sop_instance_uid)
        for r in Reference.objects.filter(target_uid=plan.sop_instance_uid, source_id__in=allowed_pks)
        .select_related("source")
        .order_by("kind", "source_id")
    ]
    return outgoing, incoming

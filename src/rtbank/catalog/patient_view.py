"""What a patient page shows: studies, series, RT objects, and every reference resolved in both directions.

Built from a handful of queries per patient (not one per object), so a patient with a 300-slice CT and a
dozen RT objects renders quickly.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from rtbank.catalog.models import (
    Dose,
    Instance,
    InstanceState,
    Patient,
    PlanBundleMember,
    Reference,
    Registration,
    Roi,
    RTPlan,
    Series,
    StructureSet,
    TreatmentRecord,
)

RT_KINDS = (
    "plan",
    "ion_plan",
    "structure_set",
    "dose",
    "record",
    "ion_record",
    "brachy_record",
    "summary_record",
    "registration",
    "deformable_registration",
    "rt_image",
    "segmentation",
    "raw",
    "other",
)


@dataclass
class RefLink:
    kind: str
    uid: str
    target: Instance | None = None  # resolved instance, when the target is an instance of this patient
    series: Series | None = None  # resolved series (series references, or the series of a frame)
    resolved: bool = False


@dataclass
class RtObject:
    instance: Instance
    detail: object | None
    outgoing: list[RefLink] = field(default_factory=list)
    incoming: list[Instance] = field(default_factory=list)
    bundle: list[tuple[str, int]] = field(default_factory=list)  # (role, count) for plans

    @property
    def unresolved(self) -> int:
        return sum(1 for link in self.outgoing if not link.resolved)


@dataclass
class PatientView:
    patient: Patient
    series: list[Series]
    rt_objects: list[RtObject]
    image_counts: dict[int, int]


def patient_view(patient: Patient) -> PatientView:
    instances = list(
        Instance.objects.filter(series__study__patient=patient, state=InstanceState.CURRENT).select_related(
            "series"
        )
    )
    by_uid = {i.sop_instance_uid: i for i in instances}
    series = list(
        Series.objects.filter(study__patient=patient)
        .select_related("study")
        .order_by("study__date", "study_id", "number")
    )
    series_by_uid = {s.uid: s for s in series}
    series_by_frame: dict[str, Series] = {}
    for s in series:
        if s.frame_of_reference_uid and s.modality in ("CT", "MR", "PT"):
            series_by_frame.setdefault(s.frame_of_reference_uid, s)
    rt = [i for i in instances if i.kind in RT_KINDS and i.kind != "image"]
    details = _details([i.pk for i in rt])
    outgoing: dict[int, list[RefLink]] = defaultdict(list)
    incoming: dict[str, list[Instance]] = defaultdict(list)
    refs = (
        Reference.objects.filter(source__in=[i.pk for i in rt])
        .exclude(kind="image")
        .order_by("kind", "target_uid")
    )
    for source_id, kind, level, target in refs.values_list("source_id", "kind", "level", "target_uid"):
        link = RefLink(kind, target)
        if level == "instance":
            link.target = by_uid.get(target)
            link.resolved = link.target is not None
        elif level == "series":
            link.series = series_by_uid.get(target)
            link.resolved = link.series is not None
        else:
            link.series = series_by_frame.get(target)
            link.resolved = link.series is not None
        outgoing[source_id].append(link)
        if link.target is not None:
            incoming[target].append(next(i for i in rt if i.pk == source_id))
    bundles: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for plan_id, role in PlanBundleMember.objects.filter(plan__in=[i.pk for i in rt]).values_list(
        "plan_id", "role"
    ):
        bundles[plan_id][role] += 1
    objects = [
        RtObject(
            i,
            details.get(i.pk),
            outgoing.get(i.pk, []),
            incoming.get(i.sop_instance_uid, []),
            sorted(bundles.get(i.pk, {}).items()),
        )
        for i in sorted(rt, key=lambda i: (RT_KINDS.index(i.kind) if i.kind in RT_KINDS else 99, i.pk))
    ]
    counts: dict[int, int] = defaultdict(int)
    for i in instances:
        counts[i.series_id] += 1
    return PatientView(patient, series, objects, dict(counts))


def _details(pks: list[int]) -> dict[int, object]:
    found: dict[int, object] = {}
    for model in (RTPlan, Dose, TreatmentRecord, Registration):
        for obj in model.objects.filter(instance_id__in=pks):
            found[obj.instance_id] = obj
    for ss in StructureSet.objects.filter(instance_id__in=pks).prefetch_related("rois"):
        found[ss.instance_id] = ss
    return found


def rois_of(structure_set: StructureSet) -> list[Roi]:
    return list(structure_set.rois.all())

"""What a harvest run learned about one patient at its sources, as an :class:`RtIndex`.

The manifest's "expected objects" of a treated plan are ``plan_bundle(plan, index)`` over this index (merged
with the catalog, which knows the objects rtbank already held), so "expected" means exactly what the
plan bundle means everywhere else in rtbank.
"""

from __future__ import annotations

from collections import defaultdict

from rtbank.catalog.models import Patient
from rtbank.catalog.rtindex import CatalogIndex
from rtbank.dicom.plan_bundle import IndexedObject
from rtbank.dicom.references import RefKind
from rtbank.harvest.models import HarvestObject, HarvestRun, HarvestSeries

VOLUME = ("CT", "MR", "PT")


class HarvestIndex:
    def __init__(self, run: HarvestRun, patient_id: str) -> None:
        rows = HarvestObject.objects.filter(run=run, patient_id=patient_id).order_by(
            "series_uid", "instance_number", "id"
        )
        frames = dict(
            HarvestSeries.objects.filter(run=run, patient_id=patient_id).values_list(
                "series_uid", "frame_uid"
            )
        )
        self.objects: dict[str, IndexedObject] = {}
        self._series: dict[str, list[str]] = defaultdict(list)
        self._frames: dict[str, set[str]] = defaultdict(set)
        self._forward: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._reverse: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._first: dict[str, str] = {}
        for obj in rows:
            frame = obj.frame_uid or frames.get(obj.series_uid, "") or ""
            self.objects[obj.sop_instance_uid] = IndexedObject(
                obj.sop_instance_uid, obj.kind, obj.series_uid, frame
            )
            self._series[obj.series_uid].append(obj.sop_instance_uid)
            if obj.kind == "image" and obj.modality in VOLUME and frame:
                self._frames[frame].add(obj.series_uid)
            for kind, target in obj.refs or []:
                self._forward[(obj.sop_instance_uid, kind)].append(target)
                self._reverse[(target, kind)].append(obj.sop_instance_uid)
            if obj.first_contour_image:
                self._first[obj.sop_instance_uid] = obj.first_contour_image

    def get(self, sop_instance_uid: str) -> IndexedObject | None:
        return self.objects.get(sop_instance_uid)

    def targets(self, source_uid: str, kind: RefKind) -> list[str]:
        return list(self._forward.get((source_uid, kind.value), []))

    def sources(self, target_uid: str, kind: RefKind, source_kinds: frozenset[str]) -> list[str]:
        return sorted(
            u
            for u in self._reverse.get((target_uid, kind.value), [])
            if (o := self.objects.get(u)) is not None and o.kind in source_kinds
        )

    def series_instances(self, series_uid: str) -> list[str]:
        return list(self._series.get(series_uid, []))

    def image_series_in_frame(self, frame_of_reference_uid: str) -> list[str]:
        return sorted(self._frames.get(frame_of_reference_uid, ()))

    def first_contour_image(self, structure_set_uid: str) -> str:
        return self._first.get(structure_set_uid, "")


class MergedIndex:
    """The run's knowledge first, then the catalog (objects rtbank already held)."""

    def __init__(self, first: HarvestIndex, second: CatalogIndex | None) -> None:
        self.a, self.b = first, second

    def get(self, uid: str) -> IndexedObject | None:
        return self.a.get(uid) or (self.b.get(uid) if self.b else None)

    def targets(self, source_uid: str, kind: RefKind) -> list[str]:
        return _union(self.a.targets(source_uid, kind), self.b.targets(source_uid, kind) if self.b else [])

    def sources(self, target_uid: str, kind: RefKind, source_kinds: frozenset[str]) -> list[str]:
        return sorted(
            set(self.a.sources(target_uid, kind, source_kinds))
            | set(self.b.sources(target_uid, kind, source_kinds) if self.b else [])
        )

    def series_instances(self, series_uid: str) -> list[str]:
        return _union(
            self.a.series_instances(series_uid), self.b.series_instances(series_uid) if self.b else []
        )

    def image_series_in_frame(self, frame: str) -> list[str]:
        return sorted(
            set(self.a.image_series_in_frame(frame))
            | set(self.b.image_series_in_frame(frame) if self.b else [])
        )

    def first_contour_image(self, structure_set_uid: str) -> str:
        return self.a.first_contour_image(structure_set_uid) or (
            self.b.first_contour_image(structure_set_uid) if self.b else ""
        )


def _union(first: list[str], second: list[str]) -> list[str]:
    seen = dict.fromkeys(first)
    seen.update(dict.fromkeys(second))
    return list(seen)


def run_index(run: HarvestRun, patient_id: str) -> MergedIndex:
    patient = Patient.objects.filter(patient_id=patient_id).order_by("pk").first()
    return MergedIndex(HarvestIndex(run, patient_id), CatalogIndex(patient.pk) if patient else None)

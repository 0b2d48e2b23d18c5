"""The catalog as an :class:`rtbank.dicom.plan_bundle.RtIndex`: one patient's current objects in memory.

Two queries load a patient's instances and references; the walk then runs without further SQL.
"""

from __future__ import annotations

from collections import defaultdict

from rtbank.catalog.models import Instance, InstanceState, Reference, StructureSet
from rtbank.dicom.plan_bundle import IndexedObject
from rtbank.dicom.references import RefKind
from rtbank.dicom.sop import VOLUME_MODALITIES


class CatalogIndex:
    def __init__(self, patient_id: int) -> None:
        rows = (
            Instance.objects.filter(series__study__patient_id=patient_id, state=InstanceState.CURRENT)
            .values_list(
                "pk",
                "sop_instance_uid",
                "kind",
                "series__uid",
                "series__frame_of_reference_uid",
                "series__modality",
                "instance_number",
            )
            .order_by("series__uid", "instance_number", "pk")
        )
        self.objects: dict[str, IndexedObject] = {}
        self.pk_of: dict[str, int] = {}
        self._series: dict[str, list[str]] = defaultdict(list)
        self._frames: dict[str, set[str]] = defaultdict(set)
        for pk, uid, kind, series_uid, frame, modality, _ in rows:
            self.objects[uid] = IndexedObject(uid, kind, series_uid, frame or "")
            self.pk_of[uid] = pk
            self._series[series_uid].append(uid)
            if kind == "image" and modality in VOLUME_MODALITIES and frame:
                self._frames[frame].add(series_uid)
        self._forward: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._reverse: dict[tuple[str, str], list[str]] = defaultdict(list)
        refs = Reference.objects.filter(
            source__series__study__patient_id=patient_id, source__state=InstanceState.CURRENT
        )
        for source_uid, kind, target in refs.values_list("source__sop_instance_uid", "kind", "target_uid"):
            self._forward[(source_uid, kind)].append(target)
            self._reverse[(target, kind)].append(source_uid)
        self._first_image = dict(
            StructureSet.objects.filter(instance__pk__in=self.pk_of.values()).values_list(
                "instance__sop_instance_uid", "first_contour_image_uid"
            )
        )

    def get(self, sop_instance_uid: str) -> IndexedObject | None:
        return self.objects.get(sop_instance_uid)

    def targets(self, source_uid: str, kind: RefKind) -> list[str]:
        return list(self._forward.get((source_uid, kind.value), []))

    def sources(self, target_uid: str, kind: RefKind, source_kinds: frozenset[str]) -> list[str]:
        return sorted(
            uid
            for uid in self._reverse.get((target_uid, kind.value), [])
            if (obj := self.objects.get(uid)) is not None and obj.kind in source_kinds
        )

    def series_instances(self, series_uid: str) -> list[str]:
        return list(self._series.get(series_uid, []))

    def image_series_in_frame(self, frame_of_reference_uid: str) -> list[str]:
        return sorted(self._frames.get(frame_of_reference_uid, ()))

    def first_contour_image(self, structure_set_uid: str) -> str:
        return self._first_image.get(structure_set_uid, "")

    def plans(self) -> list[str]:
        return sorted(uid for uid, obj in self.objects.items() if obj.kind in ("plan", "ion_plan"))

"""The harvester's ten-step reference walk, computed over one patient's datasets: the manifest's answer key.

For a treated plan the walk collects

1. the plan;
2. the structure set the plan references;
3. the doses that reference the plan, or (TomoTherapy style, no plan reference) its structure set;
4. the treatment records that reference the plan;
5–6. the whole image series holding the image of the first contour of the first non-empty ROI;
7. registrations that reference that series, one of its images or its frame of reference;
8. every CT/MR/PET series in the planning frame of reference;
9. the image series those registrations reference;
10. every CT/MR/PET series sharing a frame of reference with those.

Only image series are collected in steps 8 and 10: a trial dose or a second structure set in the planning
frame of reference is not part of the plan. Referenced objects missing from the archive are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from rtbank.dicom import sop

IMAGE_MODALITIES = frozenset({"CT", "MR", "PT"})


@dataclass
class _Registration:
    uid: str
    frames: set[str] = field(default_factory=set)
    images: set[str] = field(default_factory=set)
    series: set[str] = field(default_factory=set)


class ReferenceIndex:
    """One patient's objects indexed by the references the walk follows (both directions)."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.objects: dict[str, Dataset] = {}
        self.series_of: dict[str, str] = {}
        self.members: dict[str, list[str]] = {}
        self.image_series_frame: dict[str, str] = {}
        self.doses: list[Dataset] = []
        self.records: list[Dataset] = []
        self.registrations: list[_Registration] = []
        for ds in datasets:
            self._add(ds)

    def _add(self, ds: Dataset) -> None:
        uid, series = str(ds.SOPInstanceUID), str(ds.SeriesInstanceUID)
        self.objects[uid] = ds
        self.series_of[uid] = series
        self.members.setdefault(series, []).append(uid)
        if ds.Modality in IMAGE_MODALITIES and "FrameOfReferenceUID" in ds:
            self.image_series_frame[series] = str(ds.FrameOfReferenceUID)
        kind = sop.rt_kind(str(ds.SOPClassUID))
        if kind == sop.RtKind.DOSE:
            self.doses.append(ds)
        elif kind == sop.RtKind.RECORD:
            self.records.append(ds)
        elif kind == sop.RtKind.REGISTRATION:
            self.registrations.append(_registration(ds))

    def harvest(self, plan_uid: str) -> dict[str, list[str]]:
        """``{"instances": [...], "series": [...]}`` the walk collects from the plan ``plan_uid``."""
        plan = self.objects.get(plan_uid)
        if plan is None:
            return {"instances": [], "series": []}
        instances: dict[str, None] = {plan_uid: None}
        structure_set = _first_reference(plan, "ReferencedStructureSetSequence")
        if structure_set not in self.objects:
            structure_set = None
        if structure_set:
            instances[structure_set] = None
        for dose in self.doses:
            if _references(dose, "ReferencedRTPlanSequence", plan_uid) or (
                structure_set
                and "ReferencedRTPlanSequence" not in dose
                and _references(dose, "ReferencedStructureSetSequence", structure_set)
            ):
                instances[str(dose.SOPInstanceUID)] = None
        for record in self.records:
            if _references(record, "ReferencedRTPlanSequence", plan_uid):
                instances[str(record.SOPInstanceUID)] = None
        planning = self._planning_series(structure_set)
        if planning is None:
            return {"instances": list(instances), "series": []}
        frame = self.image_series_frame[planning]
        series: dict[str, None] = {planning: None}
        series.update(dict.fromkeys(self._series_in_frame(frame)))
        registrations = [r for r in self.registrations if self._registers(r, planning, frame)]
        instances.update(dict.fromkeys(r.uid for r in registrations))
        registered: dict[str, None] = {}
        for registration in registrations:
            registered.update(dict.fromkeys(self._registered_series(registration)))
        series.update(registered)
        for uid in registered:
            series.update(dict.fromkeys(self._series_in_frame(self.image_series_frame[uid])))
        for uid in series:
            instances.update(dict.fromkeys(self.members[uid]))
        return {"instances": list(instances), "series": list(series)}

    def _planning_series(self, structure_set: str | None) -> str | None:
        """Steps 5–6: the image series under the structure set's first contour, if it is in the archive."""
        if not structure_set:
            return None
        series = self.series_of.get(first_contour_image(self.objects[structure_set]) or "")
        return series if series in self.image_series_frame else None

    def _registers(self, registration: _Registration, series: str, frame: str) -> bool:
        return (
            frame in registration.frames
            or series in registration.series
            or any(self.series_of.get(image) == series for image in registration.images)
        )

    def _registered_series(self, registration: _Registration) -> list[str]:
        """Step 9: image series in the archive that ``registration`` references (sorted for stability)."""
        found = {self.series_of[i] for i in registration.images if i in self.series_of}
        found |= {s for s in registration.series if s in self.members}
        return sorted(s for s in found if s in self.image_series_frame)

    def _series_in_frame(self, frame: str) -> Iterator[str]:
        return (series for series, f in self.image_series_frame.items() if f == frame)


def first_contour_image(structure_set: Dataset) -> str | None:
    """The SOP Instance UID of the image under the first contour of the first ROI that has contours."""
    for roi in structure_set.get("ROIContourSequence", []):
        for contour in roi.get("ContourSequence", []):
            for image in contour.get("ContourImageSequence", []):
                return str(image.ReferencedSOPInstanceUID)
    return None


def _first_reference(ds: Dataset, keyword: str) -> str | None:
    for ref in ds.get(keyword, []):
        return str(ref.ReferencedSOPInstanceUID)
    return None


def _references(ds: Dataset, keyword: str, uid: str) -> bool:
    return any(str(ref.ReferencedSOPInstanceUID) == uid for ref in ds.get(keyword, []))


def _registration(ds: Dataset) -> _Registration:
    found = _Registration(str(ds.SOPInstanceUID))
    for entry in ds.get("RegistrationSequence", []):
        if "FrameOfReferenceUID" in entry:
            found.frames.add(str(entry.FrameOfReferenceUID))
        found.images.update(str(r.ReferencedSOPInstanceUID) for r in entry.get("ReferencedImageSequence", []))
    studies = [ds, *ds.get("StudiesContainingOtherReferencedInstancesSequence", [])]
    for study in studies:
        for series in study.get("ReferencedSeriesSequence", []):
            found.series.add(str(series.SeriesInstanceUID))
            found.images.update(
                str(r.ReferencedSOPInstanceUID) for r in series.get("ReferencedInstanceSequence", [])
            )
    return found

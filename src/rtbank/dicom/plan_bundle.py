"""``plan_bundle``: the one definition of "a treatment plan with everything it references".

It is the closure the harvester's ten-step walk collects (Abdulkadir et al., §2.1), computed over any
:class:`RtIndex` — the catalog's SQL tables, or the objects a harvest run has seen so far:

1. the plan;
2. the structure set(s) the plan references;
3. the doses that reference the plan (or, TomoTherapy style, reference its structure set while naming no
   plan), and doses the plan itself references;
4. all treatment records that reference the plan;
5–6. the image the first contour of the first non-empty ROI lies on, and its whole series (falling back to
   the series the structure set names when that image is unknown);
7. registrations of the patient that reference the planning series, its images or its frame of reference;
8. every CT/MR/PET series sharing the planning frame of reference;
9. the image series the registrations reference (through images or series);
10. every CT/MR/PET series sharing a frame of reference with those.

Steps 8 and 10 take volumetric image series only: a trial dose or a second structure set sharing the
frame of reference is not part of the plan. Assignment, export, viewer access, anonymisation, forwarding
and the harvest manifest all use this function, so "the plan" means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from rtbank.dicom.references import RefKind


class Role(StrEnum):
    """Why an object belongs to a bundle."""

    PLAN = "plan"
    STRUCTURE_SET = "structure_set"
    DOSE = "dose"
    RECORD = "record"
    PLANNING_IMAGES = "planning_images"
    REGISTRATION = "registration"
    FRAME_IMAGES = "frame_images"  # series sharing the planning frame of reference (step 8)
    REGISTERED_IMAGES = "registered_images"  # series the registrations reference (step 9)
    REGISTERED_FRAME_IMAGES = "registered_frame_images"  # series sharing their frames (step 10)


@dataclass(frozen=True)
class IndexedObject:
    """What the walk needs to know of one stored object."""

    sop_instance_uid: str
    kind: str  # an RtKind value
    series_uid: str
    frame_of_reference_uid: str


class RtIndex(Protocol):
    """The questions the walk asks of whatever holds the objects (all scoped to one patient)."""

    def get(self, sop_instance_uid: str) -> IndexedObject | None: ...

    def targets(self, source_uid: str, kind: RefKind) -> list[str]:
        """UIDs that ``source_uid`` references with ``kind`` (forward)."""
        ...

    def sources(self, target_uid: str, kind: RefKind, source_kinds: frozenset[str]) -> list[str]:
        """Instance UIDs of objects of ``source_kinds`` that reference ``target_uid`` (reverse)."""
        ...

    def series_instances(self, series_uid: str) -> list[str]: ...

    def image_series_in_frame(self, frame_of_reference_uid: str) -> list[str]:
        """CT/MR/PET series (UIDs) whose images lie in ``frame_of_reference_uid``."""
        ...

    def first_contour_image(self, structure_set_uid: str) -> str: ...


@dataclass
class PlanBundle:
    plan_uid: str
    instances: dict[str, Role] = field(default_factory=dict)  # SOP Instance UID -> role
    series: dict[str, Role] = field(default_factory=dict)  # Series Instance UID -> role (image series)
    missing: list[tuple[Role, str]] = field(default_factory=list)  # referenced but not in the index
    planning_series_uid: str = ""
    frame_of_reference_uid: str = ""

    def uids(self) -> set[str]:
        return set(self.instances)

    def add(self, uid: str, role: Role) -> None:
        self.instances.setdefault(uid, role)


_DOSE = frozenset({"dose"})
_RECORDS = frozenset({"record", "ion_record", "brachy_record", "summary_record"})
_REGISTRATIONS = frozenset({"registration", "deformable_registration"})


def plan_bundle(plan_uid: str, index: RtIndex) -> PlanBundle:
    """The bundle of ``plan_uid`` as far as ``index`` knows it; missing references are listed, not fatal."""
    bundle = PlanBundle(plan_uid)
    if index.get(plan_uid) is None:
        bundle.missing.append((Role.PLAN, plan_uid))
        return bundle
    bundle.add(plan_uid, Role.PLAN)
    structure_sets = _present(
        index, bundle, Role.STRUCTURE_SET, index.targets(plan_uid, RefKind.STRUCTURE_SET)
    )
    _doses(index, bundle, plan_uid, structure_sets)
    for uid in index.sources(plan_uid, RefKind.PLAN, _RECORDS):
        bundle.add(uid, Role.RECORD)
    planning_series = _planning_series(index, bundle, structure_sets)
    if not planning_series:
        return bundle
    _add_series(index, bundle, planning_series, Role.PLANNING_IMAGES)
    frame = bundle.frame_of_reference_uid
    registrations = _registrations(index, bundle, planning_series, frame)
    for series_uid in index.image_series_in_frame(frame) if frame else []:
        _add_series(index, bundle, series_uid, Role.FRAME_IMAGES)
    registered = _registered_series(index, registrations) - set(bundle.series)
    for series_uid in sorted(registered):
        _add_series(index, bundle, series_uid, Role.REGISTERED_IMAGES)
    # The frames a registration relates are the frames of the images it registers, so they count even
    # when the registration names frames without listing images.
    registered_frames = _frames_of(index, registered) | {
        f for reg in registrations for f in index.targets(reg, RefKind.FRAME_OF_REFERENCE)
    }
    for frame_uid in sorted(registered_frames - {frame}):
        for series_uid in index.image_series_in_frame(frame_uid):
            _add_series(index, bundle, series_uid, Role.REGISTERED_FRAME_IMAGES)
    return bundle


def _present(index: RtIndex, bundle: PlanBundle, role: Role, uids: list[str]) -> list[str]:
    found = []
    for uid in uids:
        if index.get(uid) is None:
            bundle.missing.append((role, uid))
        else:
            bundle.add(uid, role)
            found.append(uid)
    return found


def _doses(index: RtIndex, bundle: PlanBundle, plan_uid: str, structure_sets: list[str]) -> None:
    for uid in index.sources(plan_uid, RefKind.PLAN, _DOSE):
        bundle.add(uid, Role.DOSE)
    _present(index, bundle, Role.DOSE, index.targets(plan_uid, RefKind.DOSE))
    for ss_uid in structure_sets:
        for uid in index.sources(ss_uid, RefKind.STRUCTURE_SET, _DOSE):
            # A dose that names a plan belongs to that plan (e.g. a trial dose); only plan-less doses
            # referencing the structure set (TomoTherapy) belong to every plan on that structure set.
            if not index.targets(uid, RefKind.PLAN):
                bundle.add(uid, Role.DOSE)


def _planning_series(index: RtIndex, bundle: PlanBundle, structure_sets: list[str]) -> str:
    for ss_uid in structure_sets:
        image_uid = index.first_contour_image(ss_uid)
        image = index.get(image_uid) if image_uid else None
        if image is not None:
            bundle.planning_series_uid = image.series_uid
            bundle.frame_of_reference_uid = image.frame_of_reference_uid
            return image.series_uid
        if image_uid:
            bundle.missing.append((Role.PLANNING_IMAGES, image_uid))
        for series_uid in index.targets(ss_uid, RefKind.SERIES):
            instances = index.series_instances(series_uid)
            if instances:
                first = index.get(instances[0])
                bundle.planning_series_uid = series_uid
                bundle.frame_of_reference_uid = first.frame_of_reference_uid if first else ""
                return series_uid
            bundle.missing.append((Role.PLANNING_IMAGES, series_uid))
    return ""


def _add_series(index: RtIndex, bundle: PlanBundle, series_uid: str, role: Role) -> None:
    if series_uid in bundle.series:
        return
    bundle.series[series_uid] = role
    for uid in index.series_instances(series_uid):
        bundle.add(uid, role)


def _registrations(index: RtIndex, bundle: PlanBundle, series_uid: str, frame: str) -> list[str]:
    found: set[str] = set()
    found.update(index.sources(series_uid, RefKind.SERIES, _REGISTRATIONS))
    if frame:
        found.update(index.sources(frame, RefKind.FRAME_OF_REFERENCE, _REGISTRATIONS))
    for image_uid in index.series_instances(series_uid):
        found.update(index.sources(image_uid, RefKind.IMAGE, _REGISTRATIONS))
    for uid in sorted(found):
        bundle.add(uid, Role.REGISTRATION)
    return sorted(found)


def _registered_series(index: RtIndex, registrations: list[str]) -> set[str]:
    series: set[str] = set()
    for reg_uid in registrations:
        series.update(s for s in index.targets(reg_uid, RefKind.SERIES) if index.series_instances(s))
        for image_uid in index.targets(reg_uid, RefKind.IMAGE):
            image = index.get(image_uid)
            if image is not None:
                series.add(image.series_uid)
    return series


def _frames_of(index: RtIndex, series_uids: set[str]) -> set[str]:
    frames = set()
    for series_uid in series_uids:
        instances = index.series_instances(series_uid)
        first = index.get(instances[0]) if instances else None
        if first is not None and first.frame_of_reference_uid:
            frames.add(first.frame_of_reference_uid)
    return frames

"""The references an RT object makes to other objects, read along the paths the standard defines.

DICOM references run one way (a dose points at its plan, the plan does not point at the dose). rtbank
stores each reference as a row so it can be followed both ways, and resolves the target by UID whenever it
arrives — before or after the source. Vendor quirks stay data: a TomoTherapy dose that references the
structure set instead of the plan is simply a ``DOSE → STRUCTURE_SET`` row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from pydicom.dataset import Dataset

from rtbank.dicom.sop import RtKind, rt_kind
from rtbank.dicom.uids import is_safe_uid


class RefKind(StrEnum):
    """What the target of a reference is."""

    PLAN = "plan"
    STRUCTURE_SET = "structure_set"
    DOSE = "dose"
    RECORD = "record"
    IMAGE = "image"  # an image instance (e.g. a CT slice a contour lies on, an image a registration uses)
    REFERENCE_IMAGE = "reference_image"  # a beam's reference image (DRR / RT Image)
    SERIES = "series"
    FRAME_OF_REFERENCE = "frame_of_reference"


LEVEL = {RefKind.SERIES: "series", RefKind.FRAME_OF_REFERENCE: "frame"}


@dataclass(frozen=True)
class Ref:
    kind: RefKind
    target_uid: str

    @property
    def level(self) -> str:
        """``instance``, ``series`` or ``frame``: what table the target UID lives in."""
        return LEVEL.get(self.kind, "instance")


def references(ds: Dataset) -> list[Ref]:
    """All references of ``ds``, de-duplicated, in a stable order; unsafe UIDs are dropped."""
    kind = rt_kind(str(ds.get("SOPClassUID", "")))
    refs = list(_EXTRACTORS.get(kind, _generic)(ds))
    seen: set[Ref] = set()
    out: list[Ref] = []
    for ref in refs:
        if ref not in seen and is_safe_uid(ref.target_uid):
            seen.add(ref)
            out.append(ref)
    return out


def _items(ds: Dataset | None, *path: str) -> Iterator[Dataset]:
    """Items reached by following sequence keywords ``path`` (every item at every level)."""
    if ds is None:
        return
    if not path:
        yield ds
        return
    for item in ds.get(path[0], None) or []:
        yield from _items(item, *path[1:])


def _uids(items: Iterable[Dataset], keyword: str, kind: RefKind) -> Iterator[Ref]:
    for item in items:
        value = item.get(keyword)
        if value:
            yield Ref(kind, str(value).strip())


def _plan(ds: Dataset) -> Iterator[Ref]:
    yield from _uids(
        _items(ds, "ReferencedStructureSetSequence"), "ReferencedSOPInstanceUID", RefKind.STRUCTURE_SET
    )
    yield from _uids(_items(ds, "ReferencedDoseSequence"), "ReferencedSOPInstanceUID", RefKind.DOSE)
    yield from _uids(_items(ds, "ReferencedRTPlanSequence"), "ReferencedSOPInstanceUID", RefKind.PLAN)
    for beams in ("BeamSequence", "IonBeamSequence"):
        yield from _uids(
            _items(ds, beams, "ReferencedReferenceImageSequence"),
            "ReferencedSOPInstanceUID",
            RefKind.REFERENCE_IMAGE,
        )


def _dose(ds: Dataset) -> Iterator[Ref]:
    yield from _uids(_items(ds, "ReferencedRTPlanSequence"), "ReferencedSOPInstanceUID", RefKind.PLAN)
    yield from _uids(
        _items(ds, "ReferencedStructureSetSequence"), "ReferencedSOPInstanceUID", RefKind.STRUCTURE_SET
    )


def _structure_set(ds: Dataset) -> Iterator[Ref]:
    frames = list(_items(ds, "ReferencedFrameOfReferenceSequence"))
    yield from _uids(frames, "FrameOfReferenceUID", RefKind.FRAME_OF_REFERENCE)
    series = list(
        _items(
            ds,
            "ReferencedFrameOfReferenceSequence",
            "RTReferencedStudySequence",
            "RTReferencedSeriesSequence",
        )
    )
    yield from _uids(series, "SeriesInstanceUID", RefKind.SERIES)
    yield from _uids(_items_of(series, "ContourImageSequence"), "ReferencedSOPInstanceUID", RefKind.IMAGE)
    yield from _uids(
        _items(ds, "ROIContourSequence", "ContourSequence", "ContourImageSequence"),
        "ReferencedSOPInstanceUID",
        RefKind.IMAGE,
    )


def _record(ds: Dataset) -> Iterator[Ref]:
    yield from _uids(_items(ds, "ReferencedRTPlanSequence"), "ReferencedSOPInstanceUID", RefKind.PLAN)
    yield from _uids(
        _items(ds, "ReferencedTreatmentRecordSequence"), "ReferencedSOPInstanceUID", RefKind.RECORD
    )


def _registration(ds: Dataset) -> Iterator[Ref]:
    for seq in ("RegistrationSequence", "DeformableRegistrationSequence"):
        yield from _uids(_items(ds, seq), "FrameOfReferenceUID", RefKind.FRAME_OF_REFERENCE)
        yield from _uids(_items(ds, seq), "SourceFrameOfReferenceUID", RefKind.FRAME_OF_REFERENCE)
        yield from _uids(
            _items(ds, seq, "ReferencedImageSequence"), "ReferencedSOPInstanceUID", RefKind.IMAGE
        )
    yield from _frame(ds)
    yield from _series_refs(ds)


def _rt_image(ds: Dataset) -> Iterator[Ref]:
    yield from _uids(_items(ds, "ReferencedRTPlanSequence"), "ReferencedSOPInstanceUID", RefKind.PLAN)


def _generic(ds: Dataset) -> Iterator[Ref]:
    yield from _series_refs(ds)


def _series_refs(ds: Dataset) -> Iterator[Ref]:
    """Series (and their instances) named in ReferencedSeriesSequence, directly or per study."""
    series = [
        *_items(ds, "ReferencedSeriesSequence"),
        *_items(ds, "StudiesContainingOtherReferencedInstancesSequence", "ReferencedSeriesSequence"),
    ]
    yield from _uids(series, "SeriesInstanceUID", RefKind.SERIES)
    yield from _uids(
        _items_of(series, "ReferencedInstanceSequence"), "ReferencedSOPInstanceUID", RefKind.IMAGE
    )


def _frame(ds: Dataset) -> Iterator[Ref]:
    # A registration's own FrameOfReferenceUID is the frame it registers to; recorded as a reference so
    # "registrations touching this frame" is one query for the walk.
    value = ds.get("FrameOfReferenceUID")
    if value:
        yield Ref(RefKind.FRAME_OF_REFERENCE, str(value).strip())


def _items_of(parents: Iterable[Dataset], keyword: str) -> Iterator[Dataset]:
    for parent in parents:
        yield from _items(parent, keyword)


_EXTRACTORS = {
    RtKind.PLAN: _plan,
    RtKind.ION_PLAN: _plan,
    RtKind.DOSE: _dose,
    RtKind.STRUCTURE_SET: _structure_set,
    RtKind.RECORD: _record,
    RtKind.ION_RECORD: _record,
    RtKind.BRACHY_RECORD: _record,
    RtKind.SUMMARY_RECORD: _record,
    RtKind.REGISTRATION: _registration,
    RtKind.DEFORMABLE_REGISTRATION: _registration,
    RtKind.RT_IMAGE: _rt_image,
}

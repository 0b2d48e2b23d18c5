"""RT Structure Sets: ROIs named in the institution's habit, contoured exactly on the CT slices.

Each contour is the section of an analytic organ with the slice plane, at the slice's own z text, and refers
to that slice; the structure set lists every slice of the series it was drawn on, including one that a
later archive may have lost.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from pydicom.dataset import Dataset

from rtbank.dicom import sop
from rtbank.dicom.synth.common import base_dataset, ds_text, item, reference, sequence
from rtbank.dicom.synth.context import Generated, PatientContext, Series
from rtbank.dicom.synth.images import ImageSeries
from rtbank.dicom.synth.naming import ROI_STYLES, roi_name, standard_roi_name
from rtbank.dicom.synth.phantom import Anatomy
from rtbank.dicom.synth.shapes import Ellipse, Shape
from rtbank.dicom.synth.sites import Site, Target

STUDY_COMPONENT_CLASS = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management, as TPSs still write it

COLOURS: dict[str, tuple[int, int, int]] = {
    "External": (0, 255, 0),
    "SpinalCord": (255, 255, 0),
    "Brainstem": (255, 128, 0),
    "Brain": (255, 200, 150),
    "Parotid_L": (0, 128, 255),
    "Parotid_R": (0, 200, 255),
    "OralCavity": (200, 100, 200),
    "Larynx": (150, 75, 0),
    "Eye_L": (0, 255, 255),
    "Eye_R": (0, 255, 200),
    "Lens_L": (255, 0, 255),
    "Lens_R": (200, 0, 255),
    "OpticChiasm": (128, 255, 0),
    "Lung_L": (0, 100, 255),
    "Lung_R": (100, 150, 255),
    "Heart": (255, 0, 0),
    "Esophagus": (170, 100, 50),
    "Bladder": (255, 255, 100),
    "Rectum": (160, 80, 40),
    "Femur_Head_L": (200, 200, 0),
    "Femur_Head_R": (200, 170, 0),
    "SeminalVesicles": (0, 160, 160),
    "GTV": (255, 0, 0),
    "CTV": (255, 128, 192),
    "PTV": (0, 0, 255),
    "Insert": (128, 128, 255),
}


@dataclass(frozen=True)
class RoiSpec:
    """One ROI to write. ``shape`` is ``None`` for an empty ROI; ``empty_kind`` says how it is empty:
    ``no_contour_item`` (no ROI Contour item at all) or ``no_contours`` (an item without contours)."""

    number: int
    name: str
    standard: str
    roi_type: str
    colour: tuple[int, int, int]
    shape: Shape | None
    empty_kind: str = ""

    @property
    def empty(self) -> bool:
        return self.shape is None


@dataclass(frozen=True)
class StructureSet:
    generated: Generated
    rois: tuple[RoiSpec, ...]

    @property
    def uid(self) -> str:
        return str(self.generated.dataset.SOPInstanceUID)


def course_rois(
    site: Site, anatomy: Anatomy, targets: list[Target], style: str, fractions: int, rng: random.Random
) -> list[RoiSpec]:
    """The ROIs of a course's structure set in the order the institution's template puts them.

    Empty template ROIs come first for the ``danish`` style, last for ``tg263`` and anywhere for
    ``free_text``, so "the first non-empty ROI" is not always the first ROI.
    """
    drawn: list[tuple[str, str, str, Shape]] = []
    for standard in site.organs_at_risk:
        organ = anatomy.organ(standard)
        drawn.append((roi_name(style, standard, rng), standard, organ.roi_type or "ORGAN", organ.shape))
    for target in targets:
        name = roi_name(style, target.kind, rng, gy=target.dose_gy, fx=fractions)
        drawn.append((name, standard_roi_name(target.kind, target.dose_gy), target.kind, target.shape))
    empties = [(roi_name(style, s, rng), s, "AVOIDANCE" if "Plex" in s else "ORGAN") for s in site.empty_rois]
    order: list[tuple[str, str, str, Shape | None]] = [*drawn]
    for name, standard, kind in empties:
        position = {"danish": 0, "tg263": len(order)}.get(style, rng.randrange(len(order) + 1))
        order.insert(position, (name, standard, kind, None))
    return _numbered(order, rng)


def phantom_rois(anatomy: Anatomy, style: str, rng: random.Random) -> list[RoiSpec]:
    order: list[tuple[str, str, str, Shape | None]] = [
        (
            roi_name(style, o.standard, rng) if o.standard in ROI_STYLES[style] else o.standard,
            o.standard,
            o.roi_type or "ORGAN",
            o.shape,
        )
        for o in anatomy.organs
    ]
    return _numbered(order, rng)


def _numbered(order: list[tuple[str, str, str, Shape | None]], rng: random.Random) -> list[RoiSpec]:
    specs: list[RoiSpec] = []
    seen: set[str] = set()
    for number, (name, standard, kind, shape) in enumerate(order, start=1):
        unique = name if name not in seen else f"{name}_{number}"
        seen.add(unique)
        colour = COLOURS.get(standard.split("_")[0] if kind in {"CTV", "PTV"} else standard, (128, 128, 128))
        empty_kind = "" if shape is not None else rng.choice(("no_contour_item", "no_contours"))
        specs.append(RoiSpec(number, unique, standard, kind, colour, shape, empty_kind))
    return specs


def structure_set(
    ctx: PatientContext,
    series: Series,
    image: ImageSeries,
    rois: list[RoiSpec],
    label: str,
    day: str,
    time: str,
) -> StructureSet:
    """An RTSTRUCT drawn on ``image`` (whose pose must be a pure translation)."""
    uid = ctx.uid("rtstruct", series.uid, series.instances + 1)
    ds = base_dataset(ctx, series, sop.RT_STRUCTURE_SET, uid, day, time)
    ds.OperatorsName = ""
    ds.StructureSetLabel = label[:16]
    ds.StructureSetName = label[:64]
    ds.StructureSetDate = day
    ds.StructureSetTime = time
    ds.ReferencedFrameOfReferenceSequence = sequence([_referenced_frame(image)])
    for_uid = image.series.frame_of_reference_uid
    ds.StructureSetROISequence = sequence(
        item(
            ROINumber=r.number,
            ReferencedFrameOfReferenceUID=for_uid,
            ROIName=r.name,
            ROIGenerationAlgorithm="MANUAL" if r.roi_type != "EXTERNAL" else "AUTOMATIC",
        )
        for r in rois
    )
    ds.ROIContourSequence = sequence(
        _roi_contour(r, image) for r in rois if r.empty_kind != "no_contour_item"
    )
    ds.RTROIObservationsSequence = sequence(
        item(
            ObservationNumber=r.number,
            ReferencedROINumber=r.number,
            RTROIInterpretedType=r.roi_type,
            ROIInterpreter="",
        )
        for r in rois
    )
    ds.ApprovalStatus = "APPROVED"
    ds.ReviewDate = day
    ds.ReviewTime = time
    ds.ReviewerName = "PHYSICIAN^SYNTHETIC"
    return StructureSet(Generated(ds, series), tuple(rois))


def _referenced_frame(image: ImageSeries) -> Dataset:
    contour_images = sequence(reference(image.sop_class_uid, uid) for uid in image.slice_uids)
    referenced_series = item(SeriesInstanceUID=image.series.uid, ContourImageSequence=contour_images)
    study = item(
        ReferencedSOPClassUID=STUDY_COMPONENT_CLASS,
        ReferencedSOPInstanceUID=image.series.study.uid,
        RTReferencedSeriesSequence=sequence([referenced_series]),
    )
    return item(
        FrameOfReferenceUID=image.series.frame_of_reference_uid, RTReferencedStudySequence=sequence([study])
    )


def _roi_contour(roi: RoiSpec, image: ImageSeries) -> Dataset:
    entry = item(ROIDisplayColor=list(roi.colour), ReferencedROINumber=roi.number)
    if roi.shape is None:
        return entry
    tx, ty, tz = image.pose.translation
    contours: list[Dataset] = []
    for z in image.grid.zs:
        section = roi.shape.section(z - tz)
        if section is None or min(section.a, section.b) < 0.6:
            continue
        contours.append(_contour(len(contours) + 1, section, tx, ty, z, image))
    entry.ContourSequence = sequence(contours)
    return entry


def _contour(number: int, section: Ellipse, tx: float, ty: float, z: float, image: ImageSeries) -> Dataset:
    perimeter = math.pi * (
        3 * (section.a + section.b) - math.sqrt((3 * section.a + section.b) * (section.a + 3 * section.b))
    )
    step = max(1.0, image.grid.pixel_mm)
    points = int(min(max(perimeter / step, 8), 256))
    polygon = section.polygon(points)
    z_text = ds_text(z, 2)
    data: list[str] = []
    for x, y in (polygon + (tx, ty)).tolist():
        data += [f"{x:.2f}", f"{y:.2f}", z_text]
    return item(
        ContourImageSequence=sequence([reference(image.sop_class_uid, image.slice_uid_at(z))]),
        ContourGeometricType="CLOSED_PLANAR",
        NumberOfContourPoints=points,
        ContourNumber=number,
        ContourData=data,
    )

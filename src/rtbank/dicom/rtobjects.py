"""Typed summaries of RT objects: what the catalog's RT tables hold, read from a dataset.

Each ``from_dataset`` is tolerant of vendor variation (missing optional attributes give ``None``), because
a research archive must keep and show what a clinic sent, not refuse it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from rtbank.dicom.keys import date, floats, integer, number, text, time_of_day
from rtbank.dicom.references import RefKind, references
from rtbank.dicom.sop import RtKind, rt_kind

INTENTS = {"CURATIVE", "PALLIATIVE", "PROPHYLACTIC", "VERIFICATION", "MACHINE_QA", "RESEARCH", "SERVICE"}


def _seq(ds: Dataset, keyword: str) -> list[Dataset]:
    return list(ds.get(keyword, None) or [])


def _first_ref(ds: Dataset, kind: RefKind) -> str:
    return next((r.target_uid for r in references(ds) if r.kind == kind), "")


@dataclass(frozen=True)
class PlanInfo:
    label: str
    name: str
    plan_date: dt.date | None
    intent: str  # lower case: curative, palliative, prophylactic, verification, machine_qa, … or ""
    geometry: str
    approval_status: str
    fractions_planned: int | None
    prescription_gy: float | None
    beam_count: int
    technique: str
    radiation_type: str
    machine: str
    total_meterset: float | None  # MU (photons) or the ion meterset unit, summed over fraction group beams
    is_ion: bool
    structure_set_uid: str

    @classmethod
    def from_dataset(cls, ds: Dataset) -> PlanInfo:
        is_ion = rt_kind(str(ds.SOPClassUID)) == RtKind.ION_PLAN or "IonBeamSequence" in ds
        beams = _seq(ds, "IonBeamSequence" if is_ion else "BeamSequence")
        treatment_beams = [b for b in beams if text(b, "TreatmentDeliveryType") in ("", "TREATMENT")]
        groups = _seq(ds, "FractionGroupSequence")
        intent = text(ds, "PlanIntent").upper()
        return cls(
            label=text(ds, "RTPlanLabel"),
            name=text(ds, "RTPlanName"),
            plan_date=date(ds, "RTPlanDate"),
            intent=intent.lower() if intent in INTENTS else intent.lower()[:32],
            geometry=text(ds, "RTPlanGeometry"),
            approval_status=text(ds, "ApprovalStatus"),
            fractions_planned=integer(groups[0], "NumberOfFractionsPlanned") if groups else None,
            prescription_gy=_prescription_gy(ds),
            beam_count=len(treatment_beams),
            technique=_technique(treatment_beams, is_ion),
            radiation_type=text(beams[0], "RadiationType") if beams else "",
            machine=text(beams[0], "TreatmentMachineName") if beams else "",
            total_meterset=_total_meterset(groups),
            is_ion=is_ion,
            structure_set_uid=_first_ref(ds, RefKind.STRUCTURE_SET),
        )


def _prescription_gy(ds: Dataset) -> float | None:
    """Target prescription (Gy): the largest TargetPrescriptionDose among target dose references."""
    doses = [number(item, "TargetPrescriptionDose") for item in _seq(ds, "DoseReferenceSequence")]
    doses = [d for d in doses if d is not None and d > 0]
    return max(doses) if doses else None


def _total_meterset(groups: list[Dataset]) -> float | None:
    values = [number(b, "BeamMeterset") for g in groups for b in _seq(g, "ReferencedBeamSequence")]
    known = [v for v in values if v is not None]
    return round(sum(known), 3) if known else None


def _technique(beams: list[Dataset], is_ion: bool) -> str:
    """A coarse technique label from the beams: VMAT, IMRT, 3D-CRT, PBS, passive, or ARC."""
    if not beams:
        return ""
    if is_ion:
        kinds = {text(b, "ScanMode") for b in beams}
        return "PBS" if kinds & {"MODULATED", "MODULATED_SPEC"} else "passive"
    control_points = [_seq(b, "ControlPointSequence") for b in beams]
    dynamic = any(text(b, "BeamType") == "DYNAMIC" for b in beams)
    rotating = any(
        len({number(cp, "GantryAngle") for cp in cps if "GantryAngle" in cp}) > 1 for cps in control_points
    )
    modulated = any(len(cps) > 2 for cps in control_points)
    if rotating and (dynamic or modulated):
        return "VMAT"
    if rotating:
        return "ARC"
    if modulated:
        return "IMRT"
    return "3D-CRT"


@dataclass(frozen=True)
class RoiInfo:
    number: int
    name: str
    interpreted_type: str
    color: str  # "#rrggbb" from ROIDisplayColor, "" when absent
    contour_count: int
    frame_of_reference_uid: str
    generation_algorithm: str

    @property
    def is_empty(self) -> bool:
        return self.contour_count == 0


@dataclass(frozen=True)
class StructureSetInfo:
    label: str
    name: str
    structure_set_date: dt.date | None
    frame_of_reference_uid: str
    series_uid: str
    first_contour_image_uid: (
        str  # image of the first contour of the first non-empty ROI (the harvest walk's step 5)
    )
    rois: tuple[RoiInfo, ...] = field(default_factory=tuple)

    @classmethod
    def from_dataset(cls, ds: Dataset) -> StructureSetInfo:
        contours = {integer(c, "ReferencedROINumber"): c for c in _seq(ds, "ROIContourSequence")}
        types = {
            integer(o, "ReferencedROINumber"): text(o, "RTROIInterpretedType")
            for o in _seq(ds, "RTROIObservationsSequence")
        }
        rois = []
        for roi in _seq(ds, "StructureSetROISequence"):
            num = integer(roi, "ROINumber")
            if num is None:
                continue
            contour_item = contours.get(num)
            rois.append(
                RoiInfo(
                    number=num,
                    name=text(roi, "ROIName", 128),
                    interpreted_type=types.get(num, ""),
                    color=_color(contour_item),
                    contour_count=_contour_count(contour_item),
                    frame_of_reference_uid=text(roi, "ReferencedFrameOfReferenceUID"),
                    generation_algorithm=text(roi, "ROIGenerationAlgorithm"),
                )
            )
        refs = references(ds)
        return cls(
            label=text(ds, "StructureSetLabel"),
            name=text(ds, "StructureSetName"),
            structure_set_date=date(ds, "StructureSetDate"),
            frame_of_reference_uid=next(
                (r.target_uid for r in refs if r.kind == RefKind.FRAME_OF_REFERENCE), ""
            ),
            series_uid=next((r.target_uid for r in refs if r.kind == RefKind.SERIES), ""),
            first_contour_image_uid=_first_contour_image(ds),
            rois=tuple(rois),
        )


def _contour_count(item: Dataset | None) -> int:
    if item is None:
        return 0
    return sum(
        1 for c in _seq(item, "ContourSequence") if integer(c, "NumberOfContourPoints") or "ContourData" in c
    )


def _color(item: Dataset | None) -> str:
    rgb = floats(item, "ROIDisplayColor", 3) if item is not None else None
    if not rgb:
        return ""
    r, g, b = (max(0, min(255, int(v))) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def _first_contour_image(ds: Dataset) -> str:
    for item in _seq(ds, "ROIContourSequence"):
        for contour in _seq(item, "ContourSequence"):
            for image in _seq(contour, "ContourImageSequence"):
                uid = text(image, "ReferencedSOPInstanceUID")
                if uid:
                    return uid
    return ""


@dataclass(frozen=True)
class DoseInfo:
    rows: int | None
    columns: int | None
    frames: int | None
    pixel_spacing_mm: tuple[float, float] | None
    slice_spacing_mm: float | None
    units: str
    dose_type: str
    summation_type: str
    grid_scaling: float | None
    plan_uid: str
    structure_set_uid: str
    referenced_beam_numbers: tuple[int, ...]

    @classmethod
    def from_dataset(cls, ds: Dataset) -> DoseInfo:
        offsets = floats(ds, "GridFrameOffsetVector", integer(ds, "NumberOfFrames") or 0) or ()
        spacing = abs(offsets[1] - offsets[0]) if len(offsets) > 1 else None
        beams = tuple(
            n
            for plan in _seq(ds, "ReferencedRTPlanSequence")
            for group in _seq(plan, "ReferencedFractionGroupSequence")
            for beam in _seq(group, "ReferencedBeamSequence")
            if (n := integer(beam, "ReferencedBeamNumber")) is not None
        )
        return cls(
            rows=integer(ds, "Rows"),
            columns=integer(ds, "Columns"),
            frames=integer(ds, "NumberOfFrames"),
            pixel_spacing_mm=floats(ds, "PixelSpacing", 2),  # type: ignore[arg-type]
            slice_spacing_mm=round(spacing, 4) if spacing else None,
            units=text(ds, "DoseUnits"),
            dose_type=text(ds, "DoseType"),
            summation_type=text(ds, "DoseSummationType"),
            grid_scaling=number(ds, "DoseGridScaling"),
            plan_uid=_first_ref(ds, RefKind.PLAN),
            structure_set_uid=_first_ref(ds, RefKind.STRUCTURE_SET),
            referenced_beam_numbers=beams,
        )


@dataclass(frozen=True)
class RecordInfo:
    treatment_date: dt.date | None
    treatment_time: dt.time | None
    fraction_number: int | None
    plan_uid: str
    delivered_meterset: float | None  # MU, summed over the session's beams
    specified_meterset: float | None
    beam_count: int
    machine: str
    termination_status: str  # NORMAL, OPERATOR, MACHINE, UNKNOWN (worst over beams)
    is_ion: bool

    @classmethod
    def from_dataset(cls, ds: Dataset) -> RecordInfo:
        is_ion = "TreatmentSessionIonBeamSequence" in ds
        beams = _seq(ds, "TreatmentSessionIonBeamSequence" if is_ion else "TreatmentSessionBeamSequence")
        delivered = [number(b, "DeliveredPrimaryMeterset") for b in beams]
        specified = [number(b, "SpecifiedPrimaryMeterset") for b in beams]
        fractions = [integer(b, "CurrentFractionNumber") for b in beams]
        statuses = {text(b, "TreatmentTerminationStatus") for b in beams} - {""}
        machines = _seq(ds, "TreatmentMachineSequence")
        return cls(
            treatment_date=date(ds, "TreatmentDate") or _first_beam_date(beams),
            treatment_time=time_of_day(ds, "TreatmentTime"),
            fraction_number=next((f for f in fractions if f is not None), None),
            plan_uid=_first_ref(ds, RefKind.PLAN),
            delivered_meterset=_sum(delivered),
            specified_meterset=_sum(specified),
            beam_count=len(beams),
            machine=text(machines[0], "TreatmentMachineName") if machines else "",
            termination_status=_worst(statuses),
            is_ion=is_ion,
        )


def _first_beam_date(beams: list[Dataset]) -> dt.date | None:
    for beam in beams:
        for cp in _seq(beam, "ControlPointDeliverySequence"):
            if d := date(cp, "TreatmentControlPointDate"):
                return d
    return None


def _sum(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 3) if known else None


def _worst(statuses: set[str]) -> str:
    for status in ("MACHINE", "OPERATOR", "UNKNOWN", "NORMAL"):
        if status in statuses:
            return status
    return next(iter(statuses), "")


@dataclass(frozen=True)
class RegistrationInfo:
    deformable: bool
    frames: tuple[str, ...]  # every frame of reference the registration relates
    series_uids: tuple[str, ...]
    image_uids: tuple[str, ...]
    matrices: tuple[
        tuple[str, tuple[float, ...]], ...
    ]  # (frame UID, 16 row-major values) for rigid/affine parts
    registration_types: tuple[str, ...]

    @classmethod
    def from_dataset(cls, ds: Dataset) -> RegistrationInfo:
        deformable = rt_kind(str(ds.SOPClassUID)) == RtKind.DEFORMABLE_REGISTRATION
        refs = references(ds)
        return cls(
            deformable=deformable,
            frames=tuple(r.target_uid for r in refs if r.kind == RefKind.FRAME_OF_REFERENCE),
            series_uids=tuple(r.target_uid for r in refs if r.kind == RefKind.SERIES),
            image_uids=tuple(r.target_uid for r in refs if r.kind == RefKind.IMAGE),
            matrices=tuple(_matrices(ds)),
            registration_types=tuple(sorted(_registration_types(ds))),
        )


def _matrices(ds: Dataset) -> Iterator[tuple[str, tuple[float, ...]]]:
    for reg in _seq(ds, "RegistrationSequence"):
        frame = text(reg, "FrameOfReferenceUID")
        for matrix_reg in _seq(reg, "MatrixRegistrationSequence"):
            for matrix in _seq(matrix_reg, "MatrixSequence"):
                values = floats(matrix, "FrameOfReferenceTransformationMatrix", 16)
                if values:
                    yield frame, values


def _registration_types(ds: Dataset) -> set[str]:
    found = set()
    for reg in _seq(ds, "RegistrationSequence"):
        for matrix_reg in _seq(reg, "MatrixRegistrationSequence"):
            for matrix in _seq(matrix_reg, "MatrixSequence"):
                if t := text(matrix, "FrameOfReferenceTransformationMatrixType"):
                    found.add(t)
    if "DeformableRegistrationSequence" in ds:
        found.add("DEFORMABLE")
    return found

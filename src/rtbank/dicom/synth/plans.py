"""RT Plans: photon beams with control points shaped to the targets, fraction group, prescription, approval.

Apertures are the projection of the PTVs seen from each gantry angle (collimator rotation ignored), opened
leaf pair by leaf pair; arcs get a control point every few degrees. That is enough for a plan to look and
read like a clinical one; it is not meant to reproduce the dose grid.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from rtbank.dicom import sop
from rtbank.dicom.synth.common import base_dataset, ds_list, ds_text, item, reference, sequence
from rtbank.dicom.synth.context import Generated, PatientContext, Series
from rtbank.dicom.synth.shapes import Shape


@dataclass(frozen=True)
class Mlc:
    """A multileaf collimator: ``boundaries`` are the leaf-pair edges across the leaf travel, mm."""

    vendor: str
    boundaries: tuple[float, ...]

    @property
    def pairs(self) -> int:
        return len(self.boundaries) - 1


VARIAN_MLC = Mlc(
    "Varian",
    (
        -200.0,
        *(-200.0 + 10 * k for k in range(1, 10)),
        *(-100.0 + 5 * k for k in range(41)),
        *(100.0 + 10 * k for k in range(1, 11)),
    ),
)
ELEKTA_MLC = Mlc("Elekta", tuple(-200.0 + 5 * k for k in range(81)))


@dataclass(frozen=True)
class ControlPoint:
    """Gantry angle (deg), cumulative meterset weight, jaw and leaf positions (mm) at one control point."""

    gantry: float
    weight: float
    jaws_x: tuple[float, float]
    jaws_y: tuple[float, float]
    leaves: tuple[float, ...]


@dataclass
class Beam:
    """A planned beam, enough to write the plan and the treatment records that deliver it."""

    number: int
    name: str
    kind: str  # STATIC or DYNAMIC
    meterset_mu: float
    dose_gy: float
    collimator: float
    direction: str  # NONE, CW or CC
    control_points: list[ControlPoint] = field(default_factory=list)
    delivery: str = "TREATMENT"


@dataclass(frozen=True)
class PlanSpec:
    """What a plan delivers and to whom.

    Parameters
    ----------
    label, name
        ``RTPlanLabel`` (≤ 16 characters) and ``RTPlanName``.
    intent
        DICOM ``PlanIntent``: CURATIVE, PALLIATIVE, PROPHYLACTIC, VERIFICATION or MACHINE_QA.
    levels
        ``(ROI number, prescribed dose Gy)`` of the target dose references, highest first.
    isocentre
        Isocentre in the planning frame of reference, mm.
    ptvs
        Target shapes in that frame (translation applied), used to shape the apertures.
    technique
        ``VMAT``, ``IMRT``, ``3DCRT_AP_PA``, ``3DCRT_LAT`` or ``OPEN_FIELD``.
    """

    label: str
    name: str
    intent: str
    levels: tuple[tuple[int, float], ...]
    fractions: int
    isocentre: tuple[float, float, float]
    ptvs: tuple[Shape, ...]
    technique: str
    machine: str
    mlc: Mlc
    approved: bool = True
    structure_set_uid: str | None = None

    @property
    def dose_per_fraction_gy(self) -> float:
        return self.levels[0][1] / self.fractions if self.levels else 0.0


@dataclass
class Plan:
    generated: Generated
    spec: PlanSpec
    beams: list[Beam]
    date: str
    time: str

    @property
    def uid(self) -> str:
        return str(self.generated.dataset.SOPInstanceUID)


def rt_plan(
    ctx: PatientContext, series: Series, spec: PlanSpec, day: str, time: str, rng: random.Random
) -> Plan:
    """An RTPLAN for ``spec``; the plan's frame of reference is its series'."""
    beams = design_beams(spec, rng)
    uid = ctx.uid("rtplan", series.uid, series.instances + 1, spec.label)
    ds = base_dataset(ctx, series, sop.RT_PLAN, uid, day, time)
    ds.OperatorsName = ""
    ds.RTPlanLabel = spec.label[:16]
    ds.RTPlanName = spec.name[:64]
    ds.RTPlanDate = day
    ds.RTPlanTime = time
    ds.PlanIntent = spec.intent
    if spec.structure_set_uid:
        ds.RTPlanGeometry = "PATIENT"
        ds.ReferencedStructureSetSequence = sequence(
            [reference(sop.RT_STRUCTURE_SET, spec.structure_set_uid)]
        )
    else:
        ds.RTPlanGeometry = "TREATMENT_DEVICE"
    _prescription(ds, spec, ctx)
    ds.ToleranceTableSequence = sequence(
        [
            item(
                ToleranceTableNumber=1,
                ToleranceTableLabel="T1",
                GantryAngleTolerance="1",
                BeamLimitingDeviceAngleTolerance="1",
                PatientSupportAngleTolerance="1",
            )
        ]
    )
    ds.PatientSetupSequence = sequence(
        [item(PatientSetupNumber=1, PatientPosition="HFS", SetupTechnique="ISOCENTRIC")]
    )
    ds.FractionGroupSequence = sequence([_fraction_group(spec, beams)])
    ds.BeamSequence = sequence(_beam(spec, b) for b in beams)
    ds.ApprovalStatus = "APPROVED" if spec.approved else "UNAPPROVED"
    if spec.approved:
        ds.ReviewDate = day
        ds.ReviewTime = time
        ds.ReviewerName = "PHYSICIST^SYNTHETIC"
    return Plan(Generated(ds, series), spec, beams, day, time)


def _prescription(ds: Dataset, spec: PlanSpec, ctx: PatientContext) -> None:
    if not spec.levels:
        return
    ds.PrescriptionDescription = " + ".join(f"{gy:g} Gy/{spec.fractions} fx" for _, gy in spec.levels)
    ds.DoseReferenceSequence = sequence(
        item(
            DoseReferenceNumber=n,
            DoseReferenceUID=ctx.uid("dose-reference", spec.label, n),
            DoseReferenceStructureType="VOLUME",
            DoseReferenceDescription=f"Target {gy:g} Gy",
            ReferencedROINumber=roi,
            DoseReferenceType="TARGET",
            DeliveryMaximumDose=ds_text(gy * 1.07, 3),
            TargetMinimumDose=ds_text(gy * 0.95, 3),
            TargetPrescriptionDose=ds_text(gy, 3),
            TargetMaximumDose=ds_text(gy * 1.07, 3),
        )
        for n, (roi, gy) in enumerate(spec.levels, start=1)
    )


def _fraction_group(spec: PlanSpec, beams: list[Beam]) -> Dataset:
    return item(
        FractionGroupNumber=1,
        NumberOfFractionsPlanned=spec.fractions,
        NumberOfBeams=len(beams),
        NumberOfBrachyApplicationSetups=0,
        ReferencedBeamSequence=sequence(
            item(
                ReferencedBeamNumber=b.number,
                BeamDose=ds_text(b.dose_gy, 4),
                BeamMeterset=ds_text(b.meterset_mu, 3),
            )
            for b in beams
        ),
    )


def _beam(spec: PlanSpec, beam: Beam) -> Dataset:
    devices = [
        item(RTBeamLimitingDeviceType="ASYMX", NumberOfLeafJawPairs=1),
        item(RTBeamLimitingDeviceType="ASYMY", NumberOfLeafJawPairs=1),
        item(
            RTBeamLimitingDeviceType="MLCX",
            NumberOfLeafJawPairs=spec.mlc.pairs,
            LeafPositionBoundaries=ds_list(spec.mlc.boundaries, 1),
        ),
    ]
    cps = [_control_point(spec, beam, k, cp) for k, cp in enumerate(beam.control_points)]
    return item(
        BeamNumber=beam.number,
        BeamName=beam.name,
        BeamDescription=beam.name,
        BeamType=beam.kind,
        RadiationType="PHOTON",
        TreatmentMachineName=spec.machine,
        PrimaryDosimeterUnit="MU",
        SourceAxisDistance="1000",
        BeamLimitingDeviceSequence=sequence(devices),
        ReferencedPatientSetupNumber=1,
        ReferencedToleranceTableNumber=1,
        TreatmentDeliveryType=beam.delivery,
        NumberOfWedges=0,
        NumberOfCompensators=0,
        NumberOfBoli=0,
        NumberOfBlocks=0,
        FinalCumulativeMetersetWeight="1",
        NumberOfControlPoints=len(cps),
        ControlPointSequence=sequence(cps),
    )


def _control_point(spec: PlanSpec, beam: Beam, index: int, cp: ControlPoint) -> Dataset:
    positions = item_positions(cp)
    point = item(
        ControlPointIndex=index,
        CumulativeMetersetWeight=ds_text(cp.weight, 6),
        BeamLimitingDevicePositionSequence=sequence(positions),
    )
    last = index == len(beam.control_points) - 1
    if index == 0 or beam.kind == "DYNAMIC":
        point.GantryAngle = ds_text(cp.gantry, 1)
        point.GantryRotationDirection = "NONE" if last or beam.direction == "NONE" else beam.direction
    if index == 0:
        point.NominalBeamEnergy = "6"
        point.DoseRateSet = "600"
        point.BeamLimitingDeviceAngle = ds_text(beam.collimator, 1)
        point.BeamLimitingDeviceRotationDirection = "NONE"
        point.PatientSupportAngle = "0"
        point.PatientSupportRotationDirection = "NONE"
        point.TableTopEccentricAngle = "0"
        point.TableTopEccentricRotationDirection = "NONE"
        point.TableTopVerticalPosition = ""
        point.TableTopLongitudinalPosition = ""
        point.TableTopLateralPosition = ""
        point.IsocenterPosition = ds_list(spec.isocentre, 2)
    return point


def item_positions(cp: ControlPoint) -> list[Dataset]:
    """Beam Limiting Device Position items (jaws then leaves) of one control point."""
    return [
        item(RTBeamLimitingDeviceType="ASYMX", LeafJawPositions=ds_list(cp.jaws_x, 1)),
        item(RTBeamLimitingDeviceType="ASYMY", LeafJawPositions=ds_list(cp.jaws_y, 1)),
        item(RTBeamLimitingDeviceType="MLCX", LeafJawPositions=ds_list(cp.leaves, 1)),
    ]


TECHNIQUE_ANGLES: dict[str, tuple[float, ...]] = {
    "IMRT": (0.0, 51.0, 103.0, 154.0, 206.0, 257.0, 309.0),
    "3DCRT_AP_PA": (0.0, 180.0),
    "3DCRT_LAT": (90.0, 270.0),
    "OPEN_FIELD": (0.0,),
}
FIELD_NAMES = {0.0: "AP", 180.0: "PA", 90.0: "LT LAT", 270.0: "RT LAT"}
MODULATION = {"VMAT": 2.6, "IMRT": 3.0, "3DCRT_AP_PA": 1.15, "3DCRT_LAT": 1.1, "OPEN_FIELD": 1.0}


def design_beams(spec: PlanSpec, rng: random.Random, arc_step_deg: float = 30.0) -> list[Beam]:
    """The beams of ``spec.technique``, with meterset per fraction (MU) from the dose per fraction."""
    total_mu = max(spec.dose_per_fraction_gy, 1.0) * 100 * MODULATION[spec.technique] * rng.uniform(0.9, 1.15)
    if spec.technique == "VMAT":
        beams = [
            _arc(spec, 1, 181.0, "CW", 10.0, arc_step_deg, rng),
            _arc(spec, 2, 179.0, "CC", 350.0, arc_step_deg, rng),
        ]
    elif spec.technique == "IMRT":
        beams = [_step_and_shoot(spec, n, angle, rng) for n, angle in enumerate(TECHNIQUE_ANGLES["IMRT"], 1)]
    else:
        beams = [
            _open_beam(spec, n, angle, rng) for n, angle in enumerate(TECHNIQUE_ANGLES[spec.technique], 1)
        ]
    weights = [rng.uniform(0.8, 1.2) for _ in beams]
    for beam, w in zip(beams, weights, strict=True):
        beam.meterset_mu = round(total_mu * w / sum(weights), 3)
        beam.dose_gy = spec.dose_per_fraction_gy * w / sum(weights)
    return beams


def _arc(
    spec: PlanSpec,
    number: int,
    start: float,
    direction: str,
    collimator: float,
    step_deg: float,
    rng: random.Random,
) -> Beam:
    """A 358° arc from ``start`` (deg), a control point every ``step_deg`` or less, modulated apertures."""
    sweep = 358.0 if direction == "CW" else -358.0
    steps = max(2, math.ceil(358.0 / step_deg))
    angles = [(start + sweep * k / steps) % 360 for k in range(steps + 1)]
    points = [_cp(spec, a, k / steps, rng, shrink=rng.uniform(0, 4)) for k, a in enumerate(angles)]
    name = f"ARC{number}_{'CW' if direction == 'CW' else 'CCW'}"
    return Beam(number, name, "DYNAMIC", 0.0, 0.0, collimator, direction, points)


def _step_and_shoot(spec: PlanSpec, number: int, angle: float, rng: random.Random) -> Beam:
    """A static-gantry IMRT beam of three segments, each 5 mm tighter than the last."""
    points = []
    for segment, shrink in enumerate((0.0, 5.0, 10.0)):
        points += [
            _cp(spec, angle, segment / 3, rng, shrink),
            _cp(spec, angle, (segment + 1) / 3, rng, shrink),
        ]
    return Beam(number, f"G{angle:03.0f}", "STATIC", 0.0, 0.0, 0.0, "NONE", points)


def _open_beam(spec: PlanSpec, number: int, angle: float, rng: random.Random) -> Beam:
    """A conformal (or, without targets, 10 × 10 cm open) static field."""
    points = [_cp(spec, angle, 0.0, rng, 0.0), _cp(spec, angle, 1.0, rng, 0.0)]
    name = FIELD_NAMES.get(angle, f"G{angle:03.0f}")
    return Beam(number, name, "STATIC", 0.0, 0.0, 0.0, "NONE", points)


def _cp(spec: PlanSpec, gantry: float, weight: float, rng: random.Random, shrink: float) -> ControlPoint:
    """The aperture around the PTVs seen from ``gantry``: leaf pairs open where a PTV is, closed elsewhere."""
    theta = math.radians(gantry)
    ux, uy = math.cos(theta), math.sin(theta)
    ix, iy, iz = spec.isocentre
    margin = 5.0 - shrink
    leaves_a: list[float] = []
    leaves_b: list[float] = []
    opened: list[tuple[float, float]] = []
    for low, high in zip(spec.mlc.boundaries[:-1], spec.mlc.boundaries[1:], strict=True):
        extent = _projected_extent(spec.ptvs, iz + 0.5 * (low + high), ix, iy, ux, uy)
        if extent and extent[1] - extent[0] > 2 * abs(margin) + 1:
            a, b = extent[0] - margin, extent[1] + margin
            opened.append((low, high))
        else:
            a = b = 0.0
        leaves_a.append(a)
        leaves_b.append(b)
    if not opened:  # an open field (machine QA): 10 × 10 cm
        leaves_a = [-50.0 if -50 <= lo < 50 else 0.0 for lo in spec.mlc.boundaries[:-1]]
        leaves_b = [50.0 if -50 <= lo < 50 else 0.0 for lo in spec.mlc.boundaries[:-1]]
        return ControlPoint(gantry, weight, (-50.0, 50.0), (-50.0, 50.0), tuple(leaves_a + leaves_b))
    x1 = min(a for a, b in zip(leaves_a, leaves_b, strict=True) if b > a) - 2
    x2 = max(b for a, b in zip(leaves_a, leaves_b, strict=True) if b > a) + 2
    closed = round(0.5 * (x1 + x2), 1)
    pairs = list(zip(leaves_a, leaves_b, strict=True))
    leaves_a = [round(a, 1) if b > a else closed - 0.3 for a, b in pairs]
    leaves_b = [round(b, 1) if b > a else closed + 0.3 for a, b in pairs]
    jaws_y = (max(-200.0, opened[0][0] - 2), min(200.0, opened[-1][1] + 2))
    return ControlPoint(gantry, weight, (round(x1, 1), round(x2, 1)), jaws_y, tuple(leaves_a + leaves_b))


def _projected_extent(
    shapes: tuple[Shape, ...], z: float, ix: float, iy: float, ux: float, uy: float
) -> tuple[float, float] | None:
    lows, highs = [], []
    for shape in shapes:
        section = shape.section(z)
        if section is None:
            continue
        centre = (section.cx - ix) * ux + (section.cy - iy) * uy
        half = math.hypot(section.a * ux, section.b * uy)
        lows.append(centre - half)
        highs.append(centre + half)
    return (min(lows), max(highs)) if lows else None

"""Treatment sites: what a planning CT covers, which organs are contoured, targets and prescriptions."""

from __future__ import annotations

import random
from dataclasses import dataclass

from rtbank.dicom.synth.phantom import Anatomy
from rtbank.dicom.synth.shapes import Ellipsoid, Shape, Tube


@dataclass(frozen=True)
class Site:
    """A treatment site.

    Attributes
    ----------
    key
        ``head_neck``, ``thorax``, ``pelvis``, ``brain`` or ``spine``.
    scan_mm
        Inferior and superior end of the planning CT in the reference anatomy (mm; scaled per patient).
    fov_mm
        Reconstruction field of view (mm).
    organs_at_risk
        Standard names contoured on every plan of the site.
    empty_rois
        Standard names a template creates that nobody draws.
    """

    key: str
    description: str
    body_part: str
    scan_mm: tuple[float, float]
    fov_mm: float
    organs_at_risk: tuple[str, ...]
    empty_rois: tuple[str, ...]


SITES: dict[str, Site] = {
    site.key: site
    for site in (
        Site("head_neck", "Head and neck", "HEADNECK", (-280, -30), 360,
             ("External", "SpinalCord", "Brainstem", "Parotid_L", "Parotid_R", "OralCavity", "Larynx"),
             ("Cochlea_L", "BrachialPlex_L")),
        Site("thorax", "Lung", "CHEST", (-640, -270), 500,
             ("External", "Lung_L", "Lung_R", "Heart", "Esophagus", "SpinalCord"), ("BrachialPlex_L",)),
        Site("pelvis", "Prostate", "PELVIS", (-1090, -880), 500,
             ("External", "Bladder", "Rectum", "Femur_Head_L", "Femur_Head_R", "SeminalVesicles"),
             ("Bowel", "PenileBulb")),
        Site("brain", "Whole brain", "HEAD", (-160, -2), 320,
             ("External", "Brainstem", "Eye_L", "Eye_R", "Lens_L", "Lens_R", "OpticChiasm"), ("Cochlea_L",)),
        Site("spine", "Thoracic spine", "TSPINE", (-90, 90), 500,
             ("External", "SpinalCord", "Lung_L", "Lung_R", "Esophagus"), ()),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Prescription:
    """Dose levels (Gy, highest first) delivered in ``fractions``; intent as DICOM ``PlanIntent``."""

    levels_gy: tuple[float, ...]
    fractions: int
    intent: str

    @property
    def dose_gy(self) -> float:
        return self.levels_gy[0]

    @property
    def dose_per_fraction_gy(self) -> float:
        return self.levels_gy[0] / self.fractions


PRESCRIPTIONS: dict[tuple[str, str], tuple[Prescription, ...]] = {
    ("head_neck", "CURATIVE"): (
        Prescription((66, 50), 33, "CURATIVE"), Prescription((68, 54), 34, "CURATIVE"),
    ),
    ("thorax", "CURATIVE"): (Prescription((60,), 30, "CURATIVE"), Prescription((66,), 33, "CURATIVE")),
    ("thorax", "PALLIATIVE"): (Prescription((39,), 13, "PALLIATIVE"), Prescription((30,), 10, "PALLIATIVE")),
    ("pelvis", "CURATIVE"): (Prescription((78,), 39, "CURATIVE"), Prescription((60,), 20, "CURATIVE")),
    ("brain", "PROPHYLACTIC"): (Prescription((25,), 10, "PROPHYLACTIC"),),
    ("brain", "PALLIATIVE"): (Prescription((20,), 5, "PALLIATIVE"), Prescription((30,), 10, "PALLIATIVE")),
    ("spine", "PALLIATIVE"): (
        Prescription((8,), 1, "PALLIATIVE"), Prescription((20,), 5, "PALLIATIVE"),
        Prescription((30,), 10, "PALLIATIVE"),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Target:
    """A target volume: ``kind`` is ``GTV``, ``CTV`` or ``PTV``; ``dose_gy`` its prescribed dose."""

    kind: str
    shape: Shape
    dose_gy: float


def scan_range(site: Site, anatomy: Anatomy, spine_level_mm: float) -> tuple[float, float]:
    """Inferior and superior end of the planning CT in this patient's anatomy frame, mm."""
    low, high = site.scan_mm
    if site.key == "spine":
        return (spine_level_mm + low, spine_level_mm + high)
    return (low * anatomy.height_scale, high * anatomy.height_scale)


def spine_level(rng: random.Random, anatomy: Anatomy) -> float:
    """The height of a thoracic vertebra with a metastasis, mm."""
    return rng.uniform(-540, -360) * anatomy.height_scale


def targets(
    site: Site, prescription: Prescription, anatomy: Anatomy, rng: random.Random, level_mm: float
) -> list[Target]:
    """GTV/CTV/PTV for one course, nested by isotropic margins; one CTV and PTV per dose level."""
    high = prescription.levels_gy[0]
    if site.key == "head_neck":
        s = anatomy.height_scale
        gtv: Shape = Ellipsoid(rng.choice((-1, 1)) * rng.uniform(5, 18), rng.uniform(-30, -18),
                               rng.uniform(-165, -148) * s, rng.uniform(12, 18), rng.uniform(10, 15),
                               rng.uniform(14, 20))  # fmt: skip
        nodes = Ellipsoid(0, -5, -178 * s, 48, 38, 52)
        low = prescription.levels_gy[1]
        return [Target("GTV", gtv, high), *_nested(gtv.grown(5), high, 4), *_nested(nodes, low, 4)]
    if site.key == "thorax":
        lung = anatomy.organ(rng.choice(("Lung_L", "Lung_R"))).shape
        cx, cy, cz = lung.centre()
        gtv = Ellipsoid(cx + rng.uniform(-15, 15), cy + rng.uniform(-20, 10), cz + rng.uniform(-40, 60),
                        rng.uniform(10, 22), rng.uniform(10, 20), rng.uniform(12, 24))  # fmt: skip
        return [Target("GTV", gtv, high), *_nested(gtv.grown(6), high, 7)]
    if site.key == "pelvis":
        return _nested(anatomy.organ("Prostate").shape.grown(2), high, 6)
    if site.key == "brain":
        return _nested(anatomy.organ("Brain").shape, high, 3)
    vertebra = anatomy.organ("Vertebrae").shape
    assert isinstance(vertebra, Tube)
    return _nested(vertebra.clipped(level_mm - 30, level_mm + 30), high, 6)


def _nested(ctv: Shape, dose_gy: float, margin_mm: float) -> list[Target]:
    return [Target("CTV", ctv, dose_gy), Target("PTV", ctv.grown(margin_mm), dose_gy)]

"""A full-size synthetic pelvis plan for the DVH benchmark: 30 ROIs including the body, one RTDOSE.

The body is an elliptic cylinder 40 cm long (about 23 litres) contoured every 2.5 mm; the other ROIs
are ellipsoids, cylinders, rings with holes, multi-part organs and small markers; the dose grid
(2.5 mm) covers 30 cm of the body's 40 cm, so the body and the spinal canal are partly outside it.
The dose is smooth and made up (a 70 Gy and a 56 Gy level with penumbra and a low-dose bath): this
plan measures speed, not accuracy.

usage: python bench/dvh_plan.py OUT_DIR   (writes OUT_DIR/RS.dcm and OUT_DIR/RD.dcm)
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from rtbank.dicom.dvh.phantoms import dose_dataset, structure_set_dataset

FOR_UID = "1.2.826.0.1.3680043.8.498.77"
SLICES = np.arange(-200.0, 200.01, 2.5)


def body(z: float) -> list[np.ndarray]:
    return [_ellipse(0, 0, 170 + 15 * math.sin(z / 80), 110 + 10 * math.cos(z / 60), 256)]


def _ellipse(cx: float, cy: float, a: float, b: float, n: int = 96) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.column_stack([cx + a * np.cos(t), cy + b * np.sin(t)])


def _ellipsoid(cx: float, cy: float, cz: float, a: float, b: float, c: float):  # noqa: ANN202
    def planes(z: float) -> list[np.ndarray]:
        k = 1 - ((z - cz) / c) ** 2
        return [_ellipse(cx, cy, a * math.sqrt(k), b * math.sqrt(k))] if k > 0.01 else []

    return planes


def _cylinder(cx: float, cy: float, r: float, z0: float, z1: float, hole: float = 0.0):  # noqa: ANN202
    def planes(z: float) -> list[np.ndarray]:
        if not z0 <= z <= z1:
            return []
        return [_ellipse(cx, cy, r, r)] + ([_ellipse(cx, cy, hole, hole)[::-1]] if hole else [])

    return planes


def _ring(outer, inner):  # noqa: ANN001, ANN202 - planes of ``outer`` with ``inner``'s as holes
    def planes(z: float) -> list[np.ndarray]:
        o, i = outer(z), inner(z)
        return o + [p[::-1] for p in i] if o else []

    return planes


def _parts(*shapes):  # noqa: ANN002, ANN202 - several disjoint pieces on the same planes
    def planes(z: float) -> list[np.ndarray]:
        return [p for s in shapes for p in s(z)]

    return planes


def _skin(z: float) -> list[np.ndarray]:
    outer = body(z)[0]
    a, b = 170 + 15 * math.sin(z / 80), 110 + 10 * math.cos(z / 60)
    return [outer, _ellipse(0, 0, a - 5, b - 5, 256)[::-1]]


ROIS = {
    "BODY": body,
    "Skin_5mm": _skin,
    "PTV_70": _ellipsoid(0, 10, 0, 38, 33, 42),
    "CTV_70": _ellipsoid(0, 10, 0, 30, 25, 34),
    "GTV": _ellipsoid(2, 12, 3, 18, 15, 20),
    "PTV_56": _ellipsoid(0, 5, 0, 60, 50, 70),
    "PTV_56-70": _ring(_ellipsoid(0, 5, 0, 60, 50, 70), _ellipsoid(0, 10, 0, 38, 33, 42)),
    "Bladder": _ellipsoid(0, -45, 20, 40, 32, 35),
    "Rectum": _cylinder(0, 55, 18, -60, 60),
    "Rectum_wall": _cylinder(0, 55, 18, -60, 60, hole=13),
    "FemoralHead_L": _ellipsoid(90, 0, 10, 25, 25, 25),
    "FemoralHead_R": _ellipsoid(-90, 0, 10, 25, 25, 25),
    "Femur_L": _cylinder(95, 5, 14, -170, -10),
    "Femur_R": _cylinder(-95, 5, 14, -170, -10),
    "Bowel": _parts(
        _ellipsoid(-40, -40, 90, 25, 20, 45),
        _ellipsoid(40, -35, 100, 28, 22, 50),
        _ellipsoid(0, -60, 130, 30, 20, 40),
    ),
    "SpinalCanal": _cylinder(0, 95, 8, -200, 200),
    "Cauda": _cylinder(0, 95, 5, 60, 200),
    "Kidney_L": _ellipsoid(60, 70, 160, 30, 25, 40),
    "Kidney_R": _ellipsoid(-60, 70, 165, 30, 25, 40),
    "Prostate": _ellipsoid(0, 15, -5, 22, 18, 25),
    "SeminalVesicles": _parts(_ellipsoid(-15, 30, 30, 12, 8, 15), _ellipsoid(15, 30, 30, 12, 8, 15)),
    "PenileBulb": _ellipsoid(0, 20, -60, 10, 10, 8),
    "Urethra": _cylinder(0, 12, 3, -50, 30),
    "Marker_1": _ellipsoid(-8, 10, -5, 1.5, 1.5, 2.5),
    "Marker_2": _ellipsoid(8, 14, 5, 1.5, 1.5, 2.5),
    "Marker_3": _ellipsoid(0, 4, 12, 1.5, 1.5, 2.5),
    "LN_L": _parts(*(_ellipsoid(45 + 5 * k, 10 - 6 * k, 40 + 25 * k, 8, 8, 12) for k in range(4))),
    "LN_R": _parts(*(_ellipsoid(-45 - 5 * k, 10 - 6 * k, 40 + 25 * k, 8, 8, 12) for k in range(4))),
    "Sacrum": _ellipsoid(0, 80, 40, 45, 20, 70),
    "Iliac_bones": _parts(_ellipsoid(110, 40, 100, 25, 55, 60), _ellipsoid(-110, 40, 100, 25, 55, 60)),
}


def structure_set() -> object:
    """The RTSTRUCT (a pydicom Dataset)."""
    ds = structure_set_dataset([], 2.5, FOR_UID)
    from pydicom.dataset import Dataset

    for number, (name, planes) in enumerate(ROIS.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = number, name, FOR_UID
        roi.ROIGenerationAlgorithm = "MANUAL"
        ds.StructureSetROISequence.append(roi)
        contour = Dataset()
        contour.ReferencedROINumber = number
        contour.ROIDisplayColor = [255, 128, 0]
        contour.ContourSequence = []
        for z in SLICES:
            for poly in planes(float(z)):
                item = Dataset()
                item.ContourGeometricType = "CLOSED_PLANAR"
                item.NumberOfContourPoints = len(poly)
                item.ContourData = [
                    f"{v:.2f}" for v in np.column_stack([poly, np.full(len(poly), z)]).ravel()
                ]
                contour.ContourSequence.append(item)
        ds.ROIContourSequence.append(contour)
        obs = Dataset()
        obs.ObservationNumber, obs.ReferencedROINumber = number, number
        obs.RTROIInterpretedType = (
            "EXTERNAL" if name == "BODY" else "PTV" if name.startswith("PTV") else "ORGAN"
        )
        obs.ROIInterpreter = ""
        ds.RTROIObservationsSequence.append(obs)
    return ds


def dose() -> object:
    """The RTDOSE (a pydicom Dataset): 2.5 mm grid over x ±190, y ±130, z ±150 mm."""
    x = np.arange(-190.0, 190.01, 2.5)
    y = np.arange(-130.0, 130.01, 2.5)
    z = np.arange(-150.0, 150.01, 2.5)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    r70 = np.sqrt((xx / 40) ** 2 + ((yy - 10) / 35) ** 2 + (zz / 44) ** 2)
    r56 = np.sqrt((xx / 62) ** 2 + ((yy - 5) / 52) ** 2 + (zz / 72) ** 2)
    high = 16 / (1 + np.exp((r70 - 1) * 12))
    mid = 50 / (1 + np.exp((r56 - 1) * 10))
    bath = 6 * np.exp(-np.sqrt(xx**2 + yy**2 + zz**2) / 90)
    inside = (xx / 175) ** 2 + (yy / 115) ** 2 <= 1
    values = np.where(inside, high + mid + bath, 0.0)
    return dose_dataset(values, x, y, z, FOR_UID)


def write(out: Path) -> tuple[Path, Path]:
    """Write RS.dcm and RD.dcm into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    rs, rd = out / "RS.dcm", out / "RD.dcm"
    structure_set().save_as(rs, enforce_file_format=True)  # type: ignore[attr-defined]
    dose().save_as(rd, enforce_file_format=True)  # type: ignore[attr-defined]
    return rs, rd


if __name__ == "__main__":
    print(*write(Path(sys.argv[1])))

"""Analytic DVH phantoms: simple solids in linear dose fields, with closed-form reference values.

Used to validate the engine (tests, ``bench/dvh.py``, ``docs/dvh.md``) and by anyone who wants to check
a DVH calculator: :func:`structure_set_dataset` and :func:`dose_dataset` write an RTSTRUCT and an
RTDOSE with pydicom, :meth:`Solid.reference` gives the true values.

The reference values come from the solids' equations, never from the contours:

* the volume above a plane perpendicular to the dose gradient is a closed form — a spherical cap, a
  circular segment times a length, a cylinder slice, a cone tip — except for a cone cut parallel to its
  axis, where the closed-form segment area of each circular cross-section is integrated along the axis
  with adaptive quadrature (``scipy.integrate.quad``, tolerance 1e-10);
* Dx is the root (Brent) of ``V(dose ≥ D) = x``; Dmean is the dose at the centroid; Dmin/Dmax the
  dose at the extreme points.

Contours are drawn at the centres of slabs that tile the solid exactly (``n × spacing`` = its length
along z), so with half-slice end caps the slab model has the solid's extent; each plane carries the
solid's exact cross-section at that z (circles as equal-area 360-gons).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from scipy import integrate, optimize

Axis = Literal["x", "y", "z"]
_AXES = {"x": 0, "y": 1, "z": 2}
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
_CONTOUR_DATA = Tag(0x3006, 0x0050)


@dataclass(frozen=True)
class LinearDose:
    """``dose = centre_gy + gradient_gy_per_mm × (p[axis] − origin_mm[axis])`` (Gy)."""

    axis: Axis = "y"
    gradient_gy_per_mm: float = 1.0
    centre_gy: float = 16.0
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def dose_at(self, points_mm: np.ndarray) -> np.ndarray:
        a = _AXES[self.axis]
        return self.centre_gy + self.gradient_gy_per_mm * (np.asarray(points_mm)[..., a] - self.origin_mm[a])


@dataclass(frozen=True)
class Solid:
    """A sphere, cylinder or cone, centred at ``centre_mm``.

    ``kind`` is ``sphere``, ``cylinder`` or ``cone``; ``axis`` the axis of a cylinder or cone (its
    apex towards +axis for a cone); ``radius_mm`` and ``length_mm`` (cylinder, cone) in mm. The centre
    of a cone is the middle of its axis.
    """

    kind: Literal["sphere", "cylinder", "cone"]
    radius_mm: float
    length_mm: float = 0.0
    axis: Axis = "z"
    centre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.kind.capitalize()}_{self.axis}"

    @property
    def volume_mm3(self) -> float:
        r, h = self.radius_mm, self.length_mm
        return {
            "sphere": 4 / 3 * math.pi * r**3,
            "cylinder": math.pi * r * r * h,
            "cone": math.pi * r * r * h / 3,
        }[self.kind]

    def half_extent_mm(self, axis: Axis) -> float:
        """Half the solid's size along a patient axis (mm)."""
        if self.kind == "sphere" or axis != self.axis:
            return self.radius_mm
        return self.length_mm / 2

    def contains(self, points_mm: np.ndarray) -> np.ndarray:
        """Which points (N×3) lie inside the solid."""
        p = np.asarray(points_mm, dtype=float) - np.array(self.centre_mm)
        if self.kind == "sphere":
            return np.einsum("ij,ij->i", p, p) <= self.radius_mm**2
        a = _AXES[self.axis]
        along = p[:, a]
        radial2 = np.einsum("ij,ij->i", p, p) - along**2
        half = self.length_mm / 2
        if self.kind == "cylinder":
            return (np.abs(along) <= half) & (radial2 <= self.radius_mm**2)
        from_apex = half - along
        r = self.radius_mm * from_apex / self.length_mm
        return (from_apex >= 0) & (from_apex <= self.length_mm) & (radial2 <= r * r)

    # ------------------------------------------------------------ closed forms
    def volume_above_mm3(self, u_mm: float, axis: Axis) -> float:
        """Volume of the solid where ``p[axis] − centre[axis] ≥ u_mm`` (mm³)."""
        r, h = self.radius_mm, self.length_mm
        if self.kind == "sphere":
            t = min(max(r - u_mm, 0.0), 2 * r)
            return math.pi * t * t * (3 * r - t) / 3
        if axis == self.axis:
            lo = min(max(u_mm, -h / 2), h / 2)
            if self.kind == "cylinder":
                return math.pi * r * r * (h / 2 - lo)
            s = h / 2 - lo  # length of the tip above the cut
            return math.pi * r * r * s**3 / (3 * h * h)
        if self.kind == "cylinder":
            return h * _segment_area(r, u_mm)
        value, _ = integrate.quad(
            lambda s: _segment_area(r * s / h, u_mm), 0.0, h, epsabs=1e-10, epsrel=1e-12, limit=200
        )
        return float(value)

    def centroid_offset_mm(self, axis: Axis) -> float:
        """Centroid position along ``axis`` relative to the centre (mm)."""
        if self.kind == "cone" and axis == self.axis:
            return self.length_mm / 2 - 3 * self.length_mm / 4  # 3/4 of the height from the apex
        return 0.0

    def reference(self, dose: LinearDose) -> AnalyticReference:
        """Closed-form DVH reference of this solid in ``dose``."""
        return AnalyticReference(self, dose)


@dataclass(frozen=True)
class AnalyticReference:
    """True DVH values of a solid in a linear dose (Gy, cm³, %)."""

    solid: Solid
    dose: LinearDose

    @property
    def _g(self) -> float:
        return self.dose.gradient_gy_per_mm

    def _dose_at_offset(self, u_mm: float) -> float:
        a = _AXES[self.dose.axis]
        return self.dose.centre_gy + self._g * (self.solid.centre_mm[a] + u_mm - self.dose.origin_mm[a])

    @property
    def volume_cc(self) -> float:
        return self.solid.volume_mm3 / 1000

    @property
    def dmean(self) -> float:
        return self._dose_at_offset(self.solid.centroid_offset_mm(self.dose.axis))

    @property
    def dmin(self) -> float:
        e = self.solid.half_extent_mm(self.dose.axis)
        return min(self._dose_at_offset(-e), self._dose_at_offset(e))

    @property
    def dmax(self) -> float:
        e = self.solid.half_extent_mm(self.dose.axis)
        return max(self._dose_at_offset(-e), self._dose_at_offset(e))

    def volume_at_dose_cc(self, dose_gy: float) -> float:
        """Volume receiving at least ``dose_gy`` (cm³)."""
        if self._g == 0:
            return self.volume_cc if dose_gy <= self.dose.centre_gy else 0.0
        a = _AXES[self.dose.axis]
        u = (dose_gy - self.dose.centre_gy) / self._g + self.dose.origin_mm[a] - self.solid.centre_mm[a]
        above = self.solid.volume_above_mm3(u, self.dose.axis)
        return (above if self._g > 0 else self.solid.volume_mm3 - above) / 1000

    def volume_pct_at_dose(self, dose_gy: float) -> float:
        return 100 * self.volume_at_dose_cc(dose_gy) / self.volume_cc

    def dose_at_volume_cc(self, volume_cc: float) -> float:
        """Minimum dose to the hottest ``volume_cc`` (Gy)."""
        if volume_cc >= self.volume_cc:
            return self.dmin
        if volume_cc <= 0:
            return self.dmax
        return float(
            optimize.brentq(
                lambda d: self.volume_at_dose_cc(d) - volume_cc, self.dmin, self.dmax, xtol=1e-10, rtol=1e-12
            )
        )

    def dose_at_volume_pct(self, percent: float) -> float:
        return self.dose_at_volume_cc(percent / 100 * self.volume_cc)

    def metric(self, name: str) -> float:
        """Reference value of a metric named as the engine names it (``D95%``, ``V20Gy[cc]``, …)."""
        from rtbank.dicom.dvh.metrics import parse_metric

        spec = parse_metric(name)
        if spec.kind in {"Dmin", "Dmean", "Dmax"}:
            return {"Dmin": self.dmin, "Dmean": self.dmean, "Dmax": self.dmax}[spec.kind]
        assert spec.value is not None
        return {
            "D%": self.dose_at_volume_pct,
            "Dcc": self.dose_at_volume_cc,
            "V%": self.volume_pct_at_dose,
            "Vcc": self.volume_at_dose_cc,
        }[spec.kind](spec.value)


def _segment_area(r: float, u: float) -> float:
    """Area of a disc of radius r beyond a chord at distance u from its centre (mm²)."""
    if r <= 0 or u >= r:
        return 0.0
    if u <= -r:
        return math.pi * r * r
    return r * r * math.acos(u / r) - u * math.sqrt(r * r - u * u)


# ------------------------------------------------------------------ contours
def contour_planes(solid: Solid, spacing_mm: float) -> list[tuple[float, list[np.ndarray]]]:
    """Planes (z in mm) with the solid's cross-section as polygons (x, y in mm), at slab centres.

    Raises
    ------
    ValueError
        If the solid's length along z is not a whole number of ``spacing_mm``.
    """
    half = solid.half_extent_mm("z")
    n = round(2 * half / spacing_mm)
    if abs(n * spacing_mm - 2 * half) > 1e-6:
        raise ValueError(f"{solid.label}: z extent {2 * half} mm is not a multiple of {spacing_mm} mm")
    cz = solid.centre_mm[2]
    planes = []
    for k in range(n):
        z = cz - half + (k + 0.5) * spacing_mm
        poly = _cross_section(solid, z - cz)
        if poly is not None:
            planes.append((z, [poly + np.array(solid.centre_mm[:2])]))
    return planes


def _cross_section(solid: Solid, dz: float) -> np.ndarray | None:
    r, h = solid.radius_mm, solid.length_mm
    if solid.kind == "sphere" or solid.axis == "z":
        if solid.kind == "sphere":
            radius = math.sqrt(max(r * r - dz * dz, 0.0))
        elif solid.kind == "cylinder":
            radius = r
        else:
            radius = r * (h / 2 - dz) / h
        return _circle(radius) if radius > 1e-9 else None
    # axis in the plane (x or y): a rectangle (cylinder) or a region bounded by a hyperbola (cone)
    if solid.kind == "cylinder":
        half_width = math.sqrt(max(r * r - dz * dz, 0.0))
        along = np.array([-h / 2, h / 2, h / 2, -h / 2])
        across = np.array([-1, -1, 1, 1]) * half_width
    else:
        s_min = h * abs(dz) / r  # distance from the apex where the cone reaches this plane
        s = s_min + (h - s_min) * (1 - np.cos(np.linspace(0, math.pi / 2, 200)))
        w = np.sqrt(np.maximum((r * s / h) ** 2 - dz * dz, 0.0))
        along = np.concatenate([h / 2 - s, (h / 2 - s)[::-1]])
        across = np.concatenate([w, -w[::-1]])
    xy = np.column_stack([along, across]) if solid.axis == "x" else np.column_stack([across, along])
    return xy


def _circle(radius: float, n: int = 360) -> np.ndarray:
    """Regular n-gon with the area of the circle."""
    scale = math.sqrt(2 * math.pi / (n * math.sin(2 * math.pi / n)))
    t = np.arange(n) * 2 * math.pi / n
    return np.column_stack([np.cos(t), np.sin(t)]) * radius * scale


# ------------------------------------------------------------------ datasets
def structure_set_dataset(solids: list[Solid], spacing_mm: float, frame_of_reference_uid: str) -> Dataset:
    """An RTSTRUCT with one ROI per solid, contoured every ``spacing_mm`` (see :func:`contour_planes`)."""
    ds = _base(RT_STRUCTURE_SET_STORAGE, "RTSTRUCT")
    ds.StructureSetLabel = "PHANTOM"
    ref = Dataset()
    ref.FrameOfReferenceUID = frame_of_reference_uid
    ds.ReferencedFrameOfReferenceSequence = [ref]
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = [], [], []
    for number, solid in enumerate(solids, start=1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName = number, solid.label
        roi.ReferencedFrameOfReferenceUID = frame_of_reference_uid
        roi.ROIGenerationAlgorithm = "MANUAL"
        ds.StructureSetROISequence.append(roi)
        contour = Dataset()
        contour.ReferencedROINumber = number
        contour.ROIDisplayColor = [255, 0, 0]
        contour.ContourSequence = [
            _contour_item(z, poly) for z, polys in contour_planes(solid, spacing_mm) for poly in polys
        ]
        ds.ROIContourSequence.append(contour)
        obs = Dataset()
        obs.ObservationNumber, obs.ReferencedROINumber = number, number
        obs.RTROIInterpretedType, obs.ROIInterpreter = "ORGAN", ""
        ds.RTROIObservationsSequence.append(obs)
    return ds


def _contour_item(z: float, poly: np.ndarray) -> Dataset:
    item = Dataset()
    item.ContourGeometricType = "CLOSED_PLANAR"
    item.NumberOfContourPoints = len(poly)
    xyz = np.column_stack([poly, np.full(len(poly), z)])
    # written as raw DS bytes: pydicom's per-number DS objects would dominate the phantoms' cost
    raw = "\\".join(f"{v:.6f}" for v in xyz.ravel()).encode("ascii")
    raw += b" " * (len(raw) % 2)
    item[_CONTOUR_DATA] = RawDataElement(_CONTOUR_DATA, "DS", len(raw), raw, 0, False, True)
    return item


def dose_dataset(
    dose_zyx: np.ndarray,
    x_mm: np.ndarray,
    y_mm: np.ndarray,
    z_mm: np.ndarray,
    frame_of_reference_uid: str,
    *,
    position: str = "HFS",
    absolute_offsets: bool = False,
    summation_type: str = "PLAN",
) -> Dataset:
    """An RTDOSE holding ``dose_zyx`` (Gy, axes z, y, x increasing), written as a TPS would for a patient
    in ``position`` (``HFS``, ``HFP``, ``FFS``, ``FFP``, ``HFDL``, ``HFDR``): the same dose at the same
    patient points, stored with that position's row/column directions and frame order.

    ``absolute_offsets`` writes the Grid Frame Offset Vector as absolute z positions instead of offsets
    relative to the first frame.
    """
    row_cos, col_cos = _ORIENTATIONS[position]
    data = np.asarray(dose_zyx, dtype=float)
    # columns run along row_cos, rows along col_cos; reverse an axis stored in decreasing patient order
    col_axis = _AXES["x"] if abs(row_cos[0]) == 1 else _AXES["y"]
    array = data if col_axis == 0 else data.transpose(0, 2, 1)  # (z, rows, cols)
    col_coords, row_coords = (x_mm, y_mm) if col_axis == 0 else (y_mm, x_mm)
    if sum(row_cos) < 0:
        array, col_coords = array[:, :, ::-1], col_coords[::-1]
    if sum(col_cos) < 0:
        array, row_coords = array[:, ::-1, :], row_coords[::-1]
    normal = np.cross(row_cos, col_cos)
    z_order = np.asarray(z_mm, dtype=float)
    if normal[2] < 0:  # offsets run along the normal: feet-first grids list frames from head to feet
        array, z_order = array[::-1], z_order[::-1]
    ds = _base(RT_DOSE_STORAGE, "RTDOSE")
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ipp = [0.0, 0.0, float(z_order[0])]
    ipp[col_axis], ipp[1 - col_axis] = float(col_coords[0]), float(row_coords[0])
    ds.ImagePositionPatient = [f"{v:.6f}" for v in ipp]
    ds.ImageOrientationPatient = [f"{v:g}" for v in (*row_cos, *col_cos)]
    step_col = abs(float(col_coords[1] - col_coords[0])) if len(col_coords) > 1 else 1.0
    step_row = abs(float(row_coords[1] - row_coords[0])) if len(row_coords) > 1 else 1.0
    ds.PixelSpacing = [f"{step_row:g}", f"{step_col:g}"]
    offsets = z_order if absolute_offsets else (z_order - z_order[0]) * normal[2]
    ds.GridFrameOffsetVector = [f"{v:.6f}" for v in offsets]
    ds.NumberOfFrames = array.shape[0]
    ds.FrameIncrementPointer = 0x3004000C
    ds.Rows, ds.Columns = array.shape[1], array.shape[2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 32, 32, 31, 0
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = "GY", "PHYSICAL", summation_type
    scaling = max(float(array.max()), 1e-6) / 4.0e9
    ds.DoseGridScaling = f"{scaling:.10e}"
    ds.PixelData = np.round(np.clip(array, 0, None) / scaling).astype("<u4").tobytes()
    return ds


_ORIENTATIONS: dict[str, tuple[np.ndarray, np.ndarray]] = {
    "HFS": (np.array([1, 0, 0]), np.array([0, 1, 0])),
    "HFP": (np.array([-1, 0, 0]), np.array([0, -1, 0])),
    "FFS": (np.array([-1, 0, 0]), np.array([0, 1, 0])),
    "FFP": (np.array([1, 0, 0]), np.array([0, -1, 0])),
    "HFDL": (np.array([0, -1, 0]), np.array([1, 0, 0])),
    "HFDR": (np.array([0, 1, 0]), np.array([-1, 0, 0])),
}


def linear_dose_dataset(
    dose: LinearDose,
    lower_mm: tuple[float, float, float],
    shape: tuple[int, int, int],
    spacing_mm: float,
    frame_of_reference_uid: str,
    **kwargs: object,
) -> Dataset:
    """An RTDOSE sampling ``dose`` on a grid with first node ``lower_mm`` and ``shape`` (nx, ny, nz)."""
    x, y, z = (lower_mm[k] + spacing_mm * np.arange(shape[k]) for k in range(3))
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    values = dose.dose_at(np.stack([xx, yy, zz], axis=-1))
    return dose_dataset(values, x, y, z, frame_of_reference_uid, **kwargs)  # type: ignore[arg-type]


def _base(sop_class: str, modality: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    uid = generate_uid()
    ds.SOPInstanceUID = uid
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.PatientName, ds.PatientID = "PHANTOM^DVH", "PHANTOM"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Manufacturer = "rtbank analytic phantom"
    return ds

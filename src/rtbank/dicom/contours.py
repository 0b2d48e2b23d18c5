"""ROI geometry from an RT Structure Set: planar contours with holes, grouped by plane, and their slabs.

Conventions
-----------
* Positions are patient coordinates (DICOM LPS) in mm. Only axial contours are used: a
  ``CLOSED_PLANAR`` contour whose z varies by more than 0.05 mm is set aside with a note.
* Contours of one ROI whose z agree within 0.05 mm form one plane. Inside a plane the **even-odd rule**
  decides what is inside: a contour lying inside another contour of the same ROI is a hole, a contour
  inside a hole is an island, and so on (keyhole contours need no special case).
* Each plane stands for a **slab**. Between two planes of the ROI that are neighbours the boundary is
  midway. At the ROI's first and last plane, and beside a gap in the ROI, the slab ends half a slice
  spacing beyond the plane (**half-slice end caps**), the spacing being the distance to the next plane
  of the structure set in that direction (the CT slice the ROI was not drawn on) or, at the edge of the
  structure set, to the nearest plane on the other side — never more than the ROI's own median
  spacing. Two planes of a ROI are neighbours when no other plane of the structure set lies between
  them, or when they are at most 1.5 × the ROI's median spacing apart.
* Real-world files are read defensively: empty ROIs, ``POINT`` markers, duplicate consecutive points,
  contours with fewer than three distinct points and open contours are kept out of the volume and
  counted in :attr:`Roi.notes`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from pydicom.dataset import Dataset
from pydicom.tag import Tag

PLANE_TOLERANCE_MM = 0.05
_CONTOUR_DATA = Tag(0x3006, 0x0050)


@dataclass(frozen=True)
class ContourPlane:
    """The closed contours of one ROI on one axial plane.

    Attributes
    ----------
    z_mm : float
        Plane position (mm).
    polygons : tuple of numpy.ndarray
        Each ``(n, 2)`` array holds one closed contour's x, y vertices (mm), not repeating the first.
    """

    z_mm: float
    polygons: tuple[np.ndarray, ...]

    @cached_property
    def nesting_signs(self) -> np.ndarray:
        """+1 for each polygon inside an even number of the others (outline), -1 for a hole."""
        depth = np.zeros(len(self.polygons), dtype=int)
        if len(self.polygons) > 1:
            probes = np.array([p[0] for p in self.polygons])
            for j, other in enumerate(self.polygons):
                inside = points_in_polygon(probes, other)
                inside[j] = False
                depth += inside
        return np.where(depth % 2 == 0, 1, -1)

    @cached_property
    def area_mm2(self) -> float:
        """Area inside the plane's contours by the even-odd rule (mm²)."""
        areas = np.array([abs(polygon_area(p)) for p in self.polygons])
        return float(max(np.sum(areas * self.nesting_signs), 0.0)) if len(areas) else 0.0

    @property
    def centroid_mm(self) -> tuple[float, float]:
        """Area centroid (x, y) of the region inside the contours (mm)."""
        signs = self.nesting_signs
        total, mx, my = 0.0, 0.0, 0.0
        for sign, p in zip(signs, self.polygons, strict=True):
            a = abs(polygon_area(p))
            cx, cy = _polygon_centroid(p)
            total, mx, my = total + sign * a, mx + sign * a * cx, my + sign * a * cy
        if total <= 0:
            pts = np.concatenate(self.polygons)
            return float(pts[:, 0].mean()), float(pts[:, 1].mean())
        return mx / total, my / total


@dataclass(frozen=True)
class Slab:
    """A plane of a ROI with the z interval [z_lo_mm, z_hi_mm) it stands for."""

    plane: ContourPlane
    z_lo_mm: float
    z_hi_mm: float

    @property
    def thickness_mm(self) -> float:
        return self.z_hi_mm - self.z_lo_mm


@dataclass(frozen=True)
class Roi:
    """One ROI of a structure set.

    Attributes
    ----------
    number, name : int, str
        ROI Number and ROI Name.
    interpreted_type : str
        RT ROI Interpreted Type (``PTV``, ``ORGAN``, ``EXTERNAL``, …), "" if absent.
    color : tuple of int or None
        ROI Display Color (R, G, B).
    frame_of_reference_uid : str
        Referenced Frame of Reference UID of the ROI ("" if absent).
    planes : tuple of ContourPlane
        Closed planar contours grouped by plane, by increasing z.
    points_mm : tuple of numpy.ndarray
        ``POINT`` contours (x, y, z in mm).
    notes : tuple of str
        What was set aside while reading (open, degenerate or non-axial contours).
    """

    number: int
    name: str
    interpreted_type: str = ""
    color: tuple[int, int, int] | None = None
    frame_of_reference_uid: str = ""
    planes: tuple[ContourPlane, ...] = ()
    points_mm: tuple[np.ndarray, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when the ROI encloses no volume (no closed planar contour)."""
        return not self.planes

    @property
    def plane_z_mm(self) -> np.ndarray:
        return np.array([p.z_mm for p in self.planes])


@dataclass(frozen=True)
class StructureSet:
    """ROIs of an RT Structure Set in one place.

    Attributes
    ----------
    rois : tuple of Roi
        In the order of the Structure Set ROI Sequence.
    frame_of_reference_uids : tuple of str
        Frames of Reference the structure set refers to.
    sop_instance_uid : str
    """

    rois: tuple[Roi, ...]
    frame_of_reference_uids: tuple[str, ...] = ()
    sop_instance_uid: str = ""
    _all_planes: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)

    def __post_init__(self) -> None:
        zs = np.concatenate([r.plane_z_mm for r in self.rois]) if self.rois else np.zeros(0)
        object.__setattr__(self, "_all_planes", _cluster(np.sort(zs)))

    @classmethod
    def from_dataset(cls, ds: Dataset) -> StructureSet:
        """Read the ROIs of an RTSTRUCT dataset.

        Raises
        ------
        ValueError
            If the dataset has no Structure Set ROI Sequence.
        """
        if "StructureSetROISequence" not in ds:
            raise ValueError(f"RTSTRUCT {ds.get('SOPInstanceUID', '?')} has no Structure Set ROI Sequence")
        contours = {
            int(c.ReferencedROINumber): c
            for c in ds.get("ROIContourSequence", [])
            if c.get("ReferencedROINumber") not in (None, "")
        }
        types = {
            int(o.ReferencedROINumber): str(o.get("RTROIInterpretedType", "") or "")
            for o in ds.get("RTROIObservationsSequence", [])
            if o.get("ReferencedROINumber") not in (None, "")
        }
        rois = []
        for item in ds.StructureSetROISequence:
            number = int(item.ROINumber)
            rois.append(_read_roi(item, contours.get(number), types.get(number, "")))
        fors = [
            str(f.FrameOfReferenceUID)
            for f in ds.get("ReferencedFrameOfReferenceSequence", [])
            if f.get("FrameOfReferenceUID")
        ]
        fors += [r.frame_of_reference_uid for r in rois if r.frame_of_reference_uid]
        return cls(
            rois=tuple(rois),
            frame_of_reference_uids=tuple(dict.fromkeys(fors)),
            sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        )

    def roi(self, key: int | str) -> Roi:
        """The ROI with this number, or this name (exact first, then ignoring case)."""
        for r in self.rois:
            if (isinstance(key, int) and r.number == key) or r.name == key:
                return r
        for r in self.rois:
            if isinstance(key, str) and r.name.casefold() == key.casefold():
                return r
        raise KeyError(f"no ROI {key!r} in the structure set")

    @property
    def plane_positions_mm(self) -> np.ndarray:
        """All plane positions of all ROIs (mm, increasing): in practice the CT slices contoured on."""
        return self._all_planes

    def slabs(self, roi: Roi, default_thickness_mm: float | None = None) -> list[Slab]:
        """The slab each plane of ``roi`` stands for (see the module conventions).

        Parameters
        ----------
        roi : Roi
        default_thickness_mm : float, optional
            Thickness of a single-plane ROI when the structure set gives no spacing at all.

        Raises
        ------
        ValueError
            For a single-plane ROI in a single-plane structure set without ``default_thickness_mm``.
        """
        return roi_slabs(roi, self.plane_positions_mm, default_thickness_mm)


def roi_slabs(
    roi: Roi, all_planes_mm: np.ndarray | None = None, default_thickness_mm: float | None = None
) -> list[Slab]:
    """Slabs of a ROI's planes with half-slice end caps; see the module docstring."""
    if not roi.planes:
        return []
    z = roi.plane_z_mm
    grid = _cluster(
        np.sort(np.concatenate([z, np.asarray(all_planes_mm if all_planes_mm is not None else [])]))
    )
    gaps = np.diff(z)
    typical = float(np.median(gaps)) if len(gaps) else None
    slabs = []
    for k, plane in enumerate(roi.planes):
        below = _side(z, k, -1, grid, typical, default_thickness_mm, roi.name)
        above = _side(z, k, +1, grid, typical, default_thickness_mm, roi.name)
        slabs.append(Slab(plane, plane.z_mm - below, plane.z_mm + above))
    return slabs


def roi_volume_cc(slabs: Iterable[Slab]) -> float:
    """Volume of the slab model (cm³): Σ plane area × slab thickness."""
    return sum(s.plane.area_mm2 * s.thickness_mm for s in slabs) / 1000.0


def polygon_area(xy: np.ndarray) -> float:
    """Signed shoelace area of a closed polygon (mm²); positive when counter-clockwise."""
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd test of points (N×2) against one polygon, with the half-open rule of the DVH sampler."""
    px, py = points[:, 0][:, None], points[:, 1][:, None]
    x0, y0 = polygon[:, 0][None, :], polygon[:, 1][None, :]
    x1, y1 = np.roll(polygon[:, 0], -1)[None, :], np.roll(polygon[:, 1], -1)[None, :]
    straddles = (y0 <= py) != (y1 <= py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    return np.count_nonzero(straddles & (px < x_cross), axis=1) % 2 == 1


# --------------------------------------------------------------------- reading helpers
def _read_roi(item: Dataset, contour_item: Dataset | None, interpreted_type: str) -> Roi:
    number, name = int(item.ROINumber), str(item.get("ROIName", "") or "")
    color = None
    notes: list[str] = []
    by_plane: list[tuple[float, np.ndarray]] = []
    points: list[np.ndarray] = []
    if contour_item is not None:
        raw_color = contour_item.get("ROIDisplayColor")
        if raw_color is not None and len(raw_color) == 3:
            color = tuple(int(v) for v in raw_color)
        for c in contour_item.get("ContourSequence", []):
            _read_contour(c, by_plane, points, notes)
    planes = _group_planes(by_plane)
    counted = {n: notes.count(n) for n in dict.fromkeys(notes)}
    return Roi(
        number=number,
        name=name,
        interpreted_type=interpreted_type,
        color=color,  # type: ignore[arg-type]
        frame_of_reference_uid=str(item.get("ReferencedFrameOfReferenceUID", "") or ""),
        planes=planes,
        points_mm=tuple(points),
        notes=tuple(f"{n} ({k}×)" if k > 1 else n for n, k in counted.items()),
    )


def _read_contour(
    c: Dataset, by_plane: list[tuple[float, np.ndarray]], points: list[np.ndarray], notes: list[str]
) -> None:
    kind = str(c.get("ContourGeometricType", "") or "").upper()
    data = _contour_data(c)
    if data is None or len(data) < 3 or len(data) % 3 or not np.all(np.isfinite(data)):
        notes.append("contour without valid Contour Data skipped")
        return
    xyz = data.reshape(-1, 3)
    if kind == "POINT":
        points.append(xyz[0])
        return
    if kind != "CLOSED_PLANAR":
        notes.append(f"{kind or 'untyped'} contour skipped (only CLOSED_PLANAR encloses volume)")
        return
    if np.ptp(xyz[:, 2]) > PLANE_TOLERANCE_MM:
        notes.append("non-axial contour skipped")
        return
    xy = _clean(xyz[:, :2])
    if len(xy) < 3:
        notes.append("contour with fewer than 3 distinct points skipped")
        return
    by_plane.append((float(xyz[:, 2].mean()), xy))


def _contour_data(c: Dataset) -> np.ndarray | None:
    """Contour Data as floats; parsed straight from the file's bytes when it can (pydicom's DS objects
    cost ~10 µs per number, and a body contour set has hundreds of thousands)."""
    element = c.get_item(_CONTOUR_DATA)
    if element is None:
        return None
    value = element.value
    if isinstance(value, bytes | bytearray):
        text = value.decode("ascii", errors="replace").strip(" \x00")
        try:
            return np.array(text.split("\\"), dtype=float) if text else np.zeros(0)
        except ValueError:
            pass  # let pydicom parse (and report) the odd value
    try:
        return np.asarray([float(v) for v in np.atleast_1d(c.ContourData)], dtype=float)
    except (TypeError, ValueError):
        return None


def _clean(xy: np.ndarray) -> np.ndarray:
    """Drop consecutive duplicate points and a repeated closing point."""
    keep = np.ones(len(xy), dtype=bool)
    keep[1:] = np.any(np.abs(np.diff(xy, axis=0)) > 1e-9, axis=1)
    xy = xy[keep]
    if len(xy) > 1 and np.all(np.abs(xy[0] - xy[-1]) <= 1e-9):
        xy = xy[:-1]
    return xy


def _group_planes(by_plane: list[tuple[float, np.ndarray]]) -> tuple[ContourPlane, ...]:
    if not by_plane:
        return ()
    by_plane = sorted(by_plane, key=lambda item: item[0])
    planes: list[ContourPlane] = []
    group: list[tuple[float, np.ndarray]] = [by_plane[0]]
    for z, xy in by_plane[1:]:
        if z - group[0][0] <= PLANE_TOLERANCE_MM:
            group.append((z, xy))
        else:
            planes.append(ContourPlane(float(np.mean([g[0] for g in group])), tuple(g[1] for g in group)))
            group = [(z, xy)]
    planes.append(ContourPlane(float(np.mean([g[0] for g in group])), tuple(g[1] for g in group)))
    return tuple(planes)


def _cluster(sorted_z: np.ndarray) -> np.ndarray:
    if len(sorted_z) == 0:
        return sorted_z
    starts = np.concatenate([[True], np.diff(sorted_z) > PLANE_TOLERANCE_MM])
    labels = np.cumsum(starts) - 1
    return np.bincount(labels, weights=sorted_z) / np.bincount(labels)


def _side(
    z: np.ndarray,
    k: int,
    direction: int,
    grid: np.ndarray,
    typical: float | None,
    default: float | None,
    name: str,
) -> float:
    """Half-thickness of plane k's slab towards ``direction`` (-1 down, +1 up), in mm."""
    here = z[k]
    j = k + direction
    if 0 <= j < len(z):
        gap = abs(z[j] - here)
        between = np.count_nonzero(
            (grid > min(here, z[j]) + PLANE_TOLERANCE_MM) & (grid < max(here, z[j]) - PLANE_TOLERANCE_MM)
        )
        if between == 0 or (typical is not None and gap <= 1.5 * typical + PLANE_TOLERANCE_MM):
            return gap / 2
    beyond = (
        grid[grid > here + PLANE_TOLERANCE_MM] if direction > 0 else grid[grid < here - PLANE_TOLERANCE_MM]
    )
    if len(beyond):  # the next slice the ROI was not drawn on
        step: float | None = float(abs((beyond[0] if direction > 0 else beyond[-1]) - here))
    else:  # the edge of the structure set: the local slice spacing on the other side
        others = grid[np.abs(grid - here) > PLANE_TOLERANCE_MM]
        step = float(np.min(np.abs(others - here))) if len(others) else None
    if step is not None:
        return min(step, typical) / 2 if typical is not None else step / 2
    if typical is not None:
        return typical / 2
    if default is not None:
        return default / 2
    raise ValueError(f"ROI {name!r} has a single plane and the structure set gives no slice spacing")


def _polygon_centroid(xy: np.ndarray) -> tuple[float, float]:
    x, y = xy[:, 0], xy[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    a = cross.sum() / 2
    if a == 0:
        return float(x.mean()), float(y.mean())
    return float(((x + xn) * cross).sum() / (6 * a)), float(((y + yn) * cross).sum() / (6 * a))

"""What is drawn over an image plane: ROI contours and isodose lines, as polylines in patient mm.

Contours
--------
On an axial plane each ROI shows its contour plane nearest to the slice, when that plane lies within the
matching tolerance: half the local slice spacing of the image (so a structure set drawn on these slices
shows every plane on its own slice, and one drawn on other slices shows on the nearest). On sagittal and
coronal planes a ROI is the union of its slabs (each contour plane extended over the z interval it stands
for, with half-slice end caps, as in the DVH model) cut by the plane; its outline is traced on the plane's
pixel grid, so it is exact to half a pixel.

Isodose lines
-------------
The dose is resampled onto the plane's pixel centres (trilinear, :mod:`rtbank.dicom.dosegrid`), and
marching squares (contourpy) traces each level. Lines stop where the dose grid ends.
"""

from __future__ import annotations

from collections.abc import Sequence

import contourpy
import numpy as np

from rtbank.dicom.contours import Roi, Slab, StructureSet
from rtbank.dicom.dosegrid import DoseGrid
from rtbank.dicom.imaging.planes import Plane, View

# DoseGrid array axes are (z, y, x): patient axis a lives on array axis 2 - a.
_DOSE_AXIS = {0: 2, 1: 1, 2: 0}


def contour_tolerance_mm(slice_positions_mm: np.ndarray, k: int) -> float:
    """Half the local slice spacing around slice ``k`` (the smaller gap to a neighbour); 0.5 mm alone."""
    z = np.asarray(slice_positions_mm, dtype=float)
    gaps = [abs(z[k] - z[n]) for n in (k - 1, k + 1) if 0 <= n < len(z)]
    return min(gaps) / 2 if gaps else 0.5


def axial_contours(roi: Roi, z_mm: float, tolerance_mm: float) -> list[np.ndarray]:
    """Closed polygons (n + 1, 2; x, y mm, first point repeated) of the ROI plane matching slice ``z_mm``."""
    if not roi.planes:
        return []
    zs = roi.plane_z_mm
    nearest = int(np.argmin(np.abs(zs - z_mm)))
    if abs(zs[nearest] - z_mm) > tolerance_mm + 1e-6:
        return []
    return [np.vstack([p, p[:1]]) for p in roi.planes[nearest].polygons]


def section_contours(slabs: Sequence[Slab], target: Plane) -> list[np.ndarray]:
    """Outline (polylines of (u, v) mm) of a ROI's slabs cut by a sagittal or coronal plane."""
    if target.view == View.AXIAL:
        raise ValueError("axial planes take axial_contours")
    mask = section_mask(slabs, target)
    if not mask.any():
        return []
    return _trace(mask.astype(np.float32), target, 0.5)


def section_mask(slabs: Sequence[Slab], target: Plane) -> np.ndarray:
    """Pixels of the plane inside the ROI (even-odd within each contour plane), (rows, columns) bool."""
    u = target.u.positions_mm
    z_rows = target.v.positions_mm  # v is z on sagittal and coronal planes
    mask = np.zeros(target.shape, dtype=bool)
    line_axis = 0 if target.fixed_axis == 0 else 1  # x = const (sagittal) or y = const (coronal)
    for slab in slabs:
        rows = np.nonzero((z_rows >= slab.z_lo_mm) & (z_rows < slab.z_hi_mm))[0]
        if not len(rows):
            continue
        inside = np.zeros(len(u), dtype=bool)
        for polygon in slab.plane.polygons:
            for a, b in _chord(polygon, line_axis, target.fixed_mm):
                inside ^= (u >= a) & (u < b)
        if inside.any():
            mask[rows] |= inside
    return mask


def dose_on_plane(
    dose: DoseGrid, target: Plane, rows: slice = slice(None), columns: slice = slice(None)
) -> np.ndarray:
    """Trilinear dose (Gy, float32) at the plane's pixel centres; NaN where the grid defines none.

    ``rows``/``columns`` select part of the plane (e.g. the dose grid's footprint).
    """
    u = target.u.positions_mm[columns]
    v = target.v.positions_mm[rows]
    d = dose.dose_gy
    lo, hi, t = dose.axis_weights(target.fixed_axis, np.array([target.fixed_mm]))
    if np.isnan(t[0]):
        return np.full((len(v), len(u)), np.nan, dtype=np.float32)
    fixed = _DOSE_AXIS[target.fixed_axis]
    plane = np.take(d, lo[0], axis=fixed) * np.float32(1 - t[0]) + np.take(d, hi[0], axis=fixed) * np.float32(
        t[0]
    )
    # ``plane`` keeps the remaining dose axes in (z, y, x) order; arrange as (v, u).
    remaining = [a for a in (2, 1, 0) if a != target.fixed_axis]  # patient axes in array order
    if remaining.index(target.v.axis) != 0:
        plane = plane.T
    plane = _interpolate(plane, dose, target.v.axis, v, axis=0)
    plane = _interpolate(plane, dose, target.u.axis, u, axis=1)
    return plane.astype(np.float32)


def dose_footprint(dose: DoseGrid, target: Plane) -> tuple[slice, slice] | None:
    """Rows and columns of the plane where the dose grid may define a dose; None if it misses the plane."""
    bounds = dose.bounds_mm
    lo, hi = bounds[target.fixed_axis]
    if not lo - 1e-6 <= target.fixed_mm <= hi + 1e-6:
        return None
    spans = []
    for axis in (target.v, target.u):
        pos = axis.positions_mm
        a_lo, a_hi = bounds[axis.axis]
        inside = np.nonzero((pos >= a_lo - 1e-6) & (pos <= a_hi + 1e-6))[0]
        if not len(inside):
            return None
        spans.append(slice(int(inside[0]), int(inside[-1]) + 1))
    return spans[0], spans[1]


def isodose_lines(dose: DoseGrid, target: Plane, levels_gy: Sequence[float]) -> dict[float, list[np.ndarray]]:
    """Polylines ((n, 2) arrays of (u, v) mm) of each dose level on the plane, by marching squares."""
    out: dict[float, list[np.ndarray]] = {float(level): [] for level in levels_gy}
    footprint = dose_footprint(dose, target)
    if footprint is None or not levels_gy:
        return out
    rows, columns = footprint
    values = dose_on_plane(dose, target, rows, columns)
    finite = np.isfinite(values)
    if not finite.any():
        return out
    u = target.u.positions_mm[columns]
    v = target.v.positions_mm[rows]
    z = np.ma.masked_array(np.where(finite, values, 0.0), mask=~finite)
    top = float(np.nanmax(values))
    generator = contourpy.contour_generator(u, v, z, name="serial", line_type=contourpy.LineType.Separate)
    for level in out:
        if level <= top and level > 0:
            out[level] = [np.asarray(line) for line in generator.lines(level) if len(line) > 1]
    return out


# --------------------------------------------------------------------- helpers
def _trace(values: np.ndarray, target: Plane, level: float) -> list[np.ndarray]:
    """contourpy on a (rows, columns) array of the plane, padded so outlines close at the edges."""
    u, v = target.u.positions_mm, target.v.positions_mm
    pu = np.concatenate([[u[0] - target.u.step_mm], u, [u[-1] + target.u.step_mm]])
    pv = np.concatenate([[v[0] - target.v.step_mm], v, [v[-1] + target.v.step_mm]])
    padded = np.pad(values, 1)
    generator = contourpy.contour_generator(
        pu, pv, padded, name="serial", line_type=contourpy.LineType.Separate
    )
    return [np.asarray(line) for line in generator.lines(level) if len(line) > 1]


def _chord(polygon: np.ndarray, line_axis: int, at_mm: float) -> list[tuple[float, float]]:
    """Where the line (coordinate ``line_axis`` == ``at_mm``) runs inside one closed polygon (even-odd)."""
    a = polygon[:, line_axis]
    b = polygon[:, 1 - line_axis]
    a1, b1 = np.roll(a, -1), np.roll(b, -1)
    straddles = (a <= at_mm) != (a1 <= at_mm)  # half-open rule: a vertex on the line counts once
    if not straddles.any():
        return []
    t = (at_mm - a[straddles]) / (a1[straddles] - a[straddles])
    crossings = np.sort(b[straddles] + t * (b1[straddles] - b[straddles]))
    return [(float(crossings[n]), float(crossings[n + 1])) for n in range(0, len(crossings) - 1, 2)]


def _interpolate(
    plane: np.ndarray, dose: DoseGrid, patient_axis: int, at: np.ndarray, axis: int
) -> np.ndarray:
    lo, hi, t = dose.axis_weights(patient_axis, at)
    outside = np.isnan(t)
    t = np.nan_to_num(t).astype(np.float32)
    shape = [1, 1]
    shape[axis] = len(at)
    t_b = t.reshape(shape)
    out = np.take(plane, lo, axis=axis) * (1 - t_b) + np.take(plane, hi, axis=axis) * t_b
    if outside.any():
        if axis == 0:
            out[outside, :] = np.nan
        else:
            out[:, outside] = np.nan
    return out


def structure_set_slabs(
    structure_set: StructureSet, default_thickness_mm: float = 2.0
) -> dict[int, list[Slab]]:
    """Slabs of every non-empty ROI by ROI number; a single-plane ROI in a structure set that gives no
    slice spacing gets ``default_thickness_mm`` (pass the image slice spacing)."""
    out: dict[int, list[Slab]] = {}
    for roi in structure_set.rois:
        if roi.is_empty:
            continue
        try:
            out[roi.number] = structure_set.slabs(roi)
        except ValueError:
            out[roi.number] = structure_set.slabs(roi, default_thickness_mm=default_thickness_mm)
    return out

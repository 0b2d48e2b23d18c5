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
from dataclasses import dataclass

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


@dataclass(frozen=True, eq=False)
class RoiSections:
    """A ROI's slabs prepared for cutting by sagittal and coronal planes: every contour edge of every slab
    in flat arrays, so a cut is a few vectorised operations whatever the number of planes.

    Within a contour plane the even-odd rule holds across all its polygons, so along a line a pixel is
    inside when an odd number of the plane's edge crossings lie at or before it.
    """

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    slab_of_edge: np.ndarray
    z_lo_mm: np.ndarray
    z_hi_mm: np.ndarray

    @classmethod
    def from_slabs(cls, slabs: Sequence[Slab]) -> RoiSections:
        parts, owners = [], []
        for n, slab in enumerate(slabs):
            for polygon in slab.plane.polygons:
                parts.append(np.hstack([polygon, np.roll(polygon, -1, axis=0)]))
                owners.append(np.full(len(polygon), n, dtype=np.intp))
        edges = np.vstack(parts) if parts else np.zeros((0, 4))
        return cls(
            edges[:, 0],
            edges[:, 1],
            edges[:, 2],
            edges[:, 3],
            np.concatenate(owners) if owners else np.zeros(0, dtype=np.intp),
            np.array([s.z_lo_mm for s in slabs]),
            np.array([s.z_hi_mm for s in slabs]),
        )

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in (self.x0, self.y0, self.x1, self.y1, self.slab_of_edge)))

    def mask(self, target: Plane) -> np.ndarray:
        """Pixels of a sagittal or coronal plane inside the ROI, (rows, columns) bool."""
        mask = np.zeros(target.shape, dtype=bool)
        if target.fixed_axis == 0:  # x = const: crossings along y
            a0, a1, b0, b1 = self.x0, self.x1, self.y0, self.y1
        else:  # y = const: crossings along x
            a0, a1, b0, b1 = self.y0, self.y1, self.x0, self.x1
        at = target.fixed_mm
        cut = (a0 <= at) != (a1 <= at)  # half-open rule: a vertex on the line counts once
        if not cut.any():
            return mask
        t = (at - a0[cut]) / (a1[cut] - a0[cut])
        crossing = b0[cut] + t * (b1[cut] - b0[cut])
        slab = self.slab_of_edge[cut]
        u = target.u.positions_mm
        if target.u.step_mm <= 0:
            raise ValueError("section masks need a plane whose u axis increases")
        # Each crossing toggles inside/outside from the first pixel centre at or beyond it on (even-odd).
        columns = np.searchsorted(u, crossing, side="left")
        count = len(self.z_lo_mm)
        toggles = np.zeros((count, len(u) + 1), dtype=np.int32)
        np.add.at(toggles, (slab, columns), 1)
        inside = (np.cumsum(toggles, axis=1)[:, :-1] % 2).astype(bool)
        z = target.v.positions_mm
        row_slab = np.searchsorted(self.z_hi_mm, z, side="right")  # first slab ending above the row
        valid = row_slab < count
        valid[valid] &= z[valid] >= self.z_lo_mm[row_slab[valid]]
        mask[valid] = inside[row_slab[valid]]
        return mask


def section_contours(sections: RoiSections | Sequence[Slab], target: Plane) -> list[np.ndarray]:
    """Outline (polylines of (u, v) mm) of a ROI's slabs cut by a sagittal or coronal plane."""
    if target.view == View.AXIAL:
        raise ValueError("axial planes take axial_contours")
    if not isinstance(sections, RoiSections):
        sections = RoiSections.from_slabs(sections)
    mask = sections.mask(target)
    if not mask.any():
        return []
    rows, columns = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    window = (slice(max(rows[0] - 1, 0), rows[-1] + 2), slice(max(columns[0] - 1, 0), columns[-1] + 2))
    return _trace(mask[window].astype(np.float32), target, 0.5, window)


def section_mask(slabs: Sequence[Slab], target: Plane) -> np.ndarray:
    """Pixels of the plane inside the ROI (even-odd within each contour plane), (rows, columns) bool."""
    return RoiSections.from_slabs(slabs).mask(target)


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
def _trace(
    values: np.ndarray, target: Plane, level: float, window: tuple[slice, slice] = (slice(None), slice(None))
) -> list[np.ndarray]:
    """contourpy on (part of) a plane's pixels, padded so outlines close at the edges."""
    u, v = target.u.positions_mm[window[1]], target.v.positions_mm[window[0]]
    pu = np.concatenate([[u[0] - target.u.step_mm], u, [u[-1] + target.u.step_mm]])
    pv = np.concatenate([[v[0] - target.v.step_mm], v, [v[-1] + target.v.step_mm]])
    padded = np.pad(values, 1)
    generator = contourpy.contour_generator(
        pu, pv, padded, name="serial", line_type=contourpy.LineType.Separate
    )
    return [np.asarray(line) for line in generator.lines(level) if len(line) > 1]


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

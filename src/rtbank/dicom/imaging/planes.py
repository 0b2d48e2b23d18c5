"""Display planes: axial slices and sagittal/coronal reconstructions of a canonical volume.

A :class:`Plane` is a grid of pixel centres in patient coordinates. Screen columns run along ``u`` and
screen rows (top to bottom) along ``v``; the display follows the radiological convention in patient
coordinates, whatever the patient position:

========  ===============  =========================  ==========================
view      fixed            u (left → right on screen)  v (top → bottom on screen)
========  ===============  =========================  ==========================
axial     z of slice k     +x (patient right → left)   +y (anterior → posterior)
coronal   y of row j       +x (patient right → left)   −z (superior → inferior)
sagittal  x of column i    +y (anterior → posterior)   −z (superior → inferior)
========  ===============  =========================  ==========================

Axial planes are the acquired slices (index = canonical z node). Reconstructions use the volume's
in-plane nodes and a uniform z spacing (the median slice spacing), so a lost slice is bridged by linear
interpolation on screen rather than stretching the picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from rtbank.dicom.imaging.volume import ImageVolume, VolumeGeometry

AXIS_NAMES = ("x", "y", "z")


class View(StrEnum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


# view -> (fixed patient axis, u axis, v axis, v runs downwards in z)
_LAYOUT = {View.AXIAL: (2, 0, 1), View.CORONAL: (1, 0, 2), View.SAGITTAL: (0, 1, 2)}


@dataclass(frozen=True)
class PlaneAxis:
    """Pixel centres along one patient axis: ``start_mm + step_mm * n`` for n < count (step may be < 0)."""

    axis: int
    start_mm: float
    step_mm: float
    count: int

    @property
    def positions_mm(self) -> np.ndarray:
        return self.start_mm + self.step_mm * np.arange(self.count)


@dataclass(frozen=True)
class Plane:
    """A plane of pixel centres perpendicular to a patient axis."""

    view: View
    index: int
    fixed_axis: int
    fixed_mm: float
    u: PlaneAxis
    v: PlaneAxis

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) = (v count, u count)."""
        return self.v.count, self.u.count

    def points_mm(self) -> np.ndarray:
        """Patient coordinates of every pixel centre, shape (rows, columns, 3)."""
        out = np.empty((self.v.count, self.u.count, 3))
        out[..., self.fixed_axis] = self.fixed_mm
        out[..., self.u.axis] = self.u.positions_mm[None, :]
        out[..., self.v.axis] = self.v.positions_mm[:, None]
        return out

    def to_pixel(self, points_mm: np.ndarray) -> np.ndarray:
        """Fractional (column, row) of patient points (N, 3); the fixed coordinate is ignored."""
        pts = np.atleast_2d(np.asarray(points_mm, dtype=float))
        col = (pts[:, self.u.axis] - self.u.start_mm) / self.u.step_mm
        row = (pts[:, self.v.axis] - self.v.start_mm) / self.v.step_mm
        return np.column_stack([col, row])

    def in_plane(self, points_mm: np.ndarray) -> np.ndarray:
        """The (u, v) coordinates (mm) of patient points (N, 3)."""
        pts = np.atleast_2d(np.asarray(points_mm, dtype=float))
        return pts[:, [self.u.axis, self.v.axis]]

    def describe(self) -> dict[str, Any]:
        """JSON-ready description: enough for a client to map pixels and (u, v) mm both ways."""
        return {
            "view": self.view.value,
            "index": self.index,
            "fixed": {"axis": AXIS_NAMES[self.fixed_axis], "mm": round(self.fixed_mm, 4)},
            "u": _axis_json(self.u),
            "v": _axis_json(self.v),
        }


def plane_count(geometry: VolumeGeometry, view: View) -> int:
    """How many planes of ``view`` a canonical geometry has."""
    _require_canonical(geometry)
    fixed = _LAYOUT[View(view)][0]
    return (geometry.i, geometry.j, geometry.k)[fixed].count


def plane(geometry: VolumeGeometry, view: View | str, index: int) -> Plane:
    """Plane ``index`` of ``view`` through a canonical geometry.

    Raises
    ------
    ValueError
        For an index outside the volume or a geometry that is not canonical.
    """
    view = View(view)
    _require_canonical(geometry)
    fixed, u_axis, v_axis = _LAYOUT[view]
    axes = (geometry.i, geometry.j, geometry.k)
    count = axes[fixed].count
    if not 0 <= index < count:
        raise ValueError(f"{view.value} plane {index} is outside the volume (0…{count - 1})")
    u = _node_axis(axes[u_axis], u_axis)
    v = _node_axis(axes[v_axis], v_axis) if view == View.AXIAL else _downward_z(geometry)
    return Plane(view, index, fixed, float(axes[fixed].positions_mm[index]), u, v)


def nearest_index(geometry: VolumeGeometry, view: View | str, position_mm: float) -> int:
    """The plane of ``view`` nearest to a position along its fixed axis."""
    fixed = _LAYOUT[View(view)][0]
    nodes = (geometry.i, geometry.j, geometry.k)[fixed].positions_mm
    return int(np.argmin(np.abs(nodes - position_mm)))


def extract(volume: ImageVolume, target: Plane) -> np.ndarray:
    """The volume's values on a plane of its own canonical grid, (rows, columns).

    Axial planes are copied exactly; reconstructions interpolate linearly along z only. The dtype is kept
    (int16 values are rounded after interpolation).
    """
    vox = volume.voxels
    if target.view == View.AXIAL:
        return vox[target.index].copy()
    z_axis = volume.geometry.k
    lower, upper, t = _linear(z_axis.positions_mm, target.v.positions_mm)
    if target.view == View.CORONAL:
        a, b = vox[lower, target.index, :], vox[upper, target.index, :]
    else:
        a, b = vox[lower, :, target.index], vox[upper, :, target.index]
    mixed = a * (1 - t[:, None]).astype(np.float32) + b * t[:, None].astype(np.float32)
    return (
        np.rint(mixed).astype(vox.dtype) if np.issubdtype(vox.dtype, np.integer) else mixed.astype(np.float32)
    )


def sample_onto(volume: ImageVolume, target: Plane, to_volume_frame: np.ndarray | None = None) -> np.ndarray:
    """Another volume's values on ``target`` (float32, NaN where it has no data), trilinear.

    ``to_volume_frame`` (4 × 4) maps the plane's patient coordinates into the volume's frame of reference
    (from a Spatial Registration); None when both share a frame.
    """
    pts = target.points_mm().reshape(-1, 3)
    if to_volume_frame is not None:
        pts = apply_affine(to_volume_frame, pts)
    return volume.sample(pts).reshape(target.shape)


def apply_affine(matrix: np.ndarray, points_mm: np.ndarray) -> np.ndarray:
    """Points (N, 3) through a 4 × 4 homogeneous matrix."""
    m = np.asarray(matrix, dtype=float)
    return points_mm @ m[:3, :3].T + m[:3, 3]


# --------------------------------------------------------------------- helpers
def _require_canonical(geometry: VolumeGeometry) -> None:
    if not geometry.is_canonical:
        raise ValueError("display planes need a volume whose rows and columns follow patient axes")


def _node_axis(axis: Any, patient_axis: int) -> PlaneAxis:
    p = axis.positions_mm
    step = float(p[1] - p[0]) if len(p) > 1 else 2 * axis.rim_mm
    return PlaneAxis(patient_axis, float(p[0]), step, len(p))


def _downward_z(geometry: VolumeGeometry) -> PlaneAxis:
    z = geometry.k.positions_mm
    step = geometry.k.typical_step_mm
    count = int(round((z[-1] - z[0]) / step)) + 1 if len(z) > 1 else 1
    return PlaneAxis(2, float(z[-1]), -step, count)


def _linear(nodes: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices either side and the upper weight for positions inside [nodes[0], nodes[-1]] (clipped)."""
    if len(nodes) == 1:
        zero = np.zeros(len(at), dtype=np.intp)
        return zero, zero, np.zeros(len(at))
    lower = np.clip(np.searchsorted(nodes, at, side="right") - 1, 0, len(nodes) - 2)
    t = np.clip((at - nodes[lower]) / (nodes[lower + 1] - nodes[lower]), 0.0, 1.0)
    return lower, lower + 1, t


def _axis_json(axis: PlaneAxis) -> dict[str, Any]:
    return {
        "axis": AXIS_NAMES[axis.axis],
        "start_mm": round(axis.start_mm, 4),
        "step_mm": round(axis.step_mm, 6),
        "count": axis.count,
    }

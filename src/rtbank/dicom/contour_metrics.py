"""Agreement between two delineations of one structure: Dice, 95 % Hausdorff distance, mean surface
distance and volume ratio (no Django).

Method
------
* Each ROI is read into the slab model of :mod:`rtbank.dicom.contours` — planar contours, the even-odd
  rule for holes, slabs with half-slice end caps — the same geometry the DVH engine integrates dose over.
* The ROIs being compared are rasterised on **one common isotropic grid** (default 0.5 mm, coarsened so
  that the grid never exceeds ``max_voxels``) covering all of them with a margin. A voxel is inside when
  its centre lies in a slab of the ROI and inside that plane's contours (even-odd rule, half-open like
  :func:`rtbank.dicom.contours.points_in_polygon`). The same ROI therefore always gives the same mask:
  identical delineations score Dice 1 and distance 0 exactly.
* **Dice** = 2 |A ∩ B| / (|A| + |B|) over voxels.
* **Surface** voxels are inside voxels with at least one of their 6 face neighbours outside. The directed
  distances from every surface voxel centre of A to the nearest surface voxel centre of B (and back) are
  exact Euclidean distances in mm (nearest neighbours in a k-d tree, ``scipy.spatial.cKDTree``; the same
  values a distance transform of B's surface would give, without transforming the whole grid).
* **95 % Hausdorff distance** = max(P95(A→B), P95(B→A)), the larger of the two directed 95th percentiles.
* **Mean surface distance** = (mean(A→B) + mean(B→A)) / 2, the mean of the two directed means.
* **Volume ratio** = test volume / reference volume, from the slab model (the DVH engine's volume) when two
  ROIs are compared, from voxel counts when one side is a voxel mask (e.g. a consensus).

Surface distances carry the grid's discretisation: expect errors up to about one grid spacing (the
:attr:`Agreement.spacing_mm` of the result). Empty delineations give ``nan`` where a value is undefined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from rtbank.dicom.contours import ContourPlane, Roi, Slab, roi_slabs, roi_volume_cc

DEFAULT_SPACING_MM = 0.5
DEFAULT_MAX_VOXELS = 4_000_000
MARGIN_VOXELS = 2
_SIX_NEIGHBOURS = ndimage.generate_binary_structure(3, 1)


@dataclass(frozen=True)
class Grid:
    """An isotropic voxel grid in patient coordinates (mm).

    Attributes
    ----------
    origin_mm : tuple of float
        x, y, z of the centre of voxel ``[0, 0, 0]``.
    spacing_mm : float
        Voxel edge length.
    shape : tuple of int
        ``(nz, ny, nx)``: masks are indexed ``[z, y, x]``.
    """

    origin_mm: tuple[float, float, float]
    spacing_mm: float
    shape: tuple[int, int, int]

    def axis_mm(self, axis: int) -> np.ndarray:
        """Voxel centre positions along x (0), y (1) or z (2), in mm."""
        count = self.shape[2 - axis]
        return self.origin_mm[axis] + self.spacing_mm * np.arange(count)

    @property
    def voxel_cc(self) -> float:
        return self.spacing_mm**3 / 1000.0


@dataclass(frozen=True)
class Agreement:
    """How well a test delineation agrees with a reference one.

    Attributes
    ----------
    dice : float
        0 … 1 (``nan`` when both are empty).
    hausdorff95_mm, mean_surface_distance_mm : float
        See the module docstring (``nan`` when either is empty).
    volume_ratio : float
        Test volume / reference volume (``nan`` when the reference is empty).
    test_volume_cc, reference_volume_cc : float
    spacing_mm : float
        Grid spacing used.
    """

    dice: float
    hausdorff95_mm: float
    mean_surface_distance_mm: float
    volume_ratio: float
    test_volume_cc: float
    reference_volume_cc: float
    spacing_mm: float


def slabs_of(roi: Roi, all_planes_mm: np.ndarray | None = None) -> list[Slab]:
    """The ROI's slabs (``all_planes_mm``: every plane of its structure set, for the end caps)."""
    return roi_slabs(roi, all_planes_mm)


def common_grid(
    shapes: Sequence[Sequence[Slab]],
    spacing_mm: float = DEFAULT_SPACING_MM,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> Grid:
    """One isotropic grid covering every slab of ``shapes`` with a margin.

    The spacing grows (never shrinks) until the grid holds at most ``max_voxels`` voxels.

    Raises
    ------
    ValueError
        When no shape has a slab (nothing to cover).
    """
    slabs = [s for shape in shapes for s in shape]
    if not slabs:
        raise ValueError("no contours to compare: every delineation is empty")
    points = np.concatenate([p for s in slabs for p in s.plane.polygons])
    lo = np.array([points[:, 0].min(), points[:, 1].min(), min(s.z_lo_mm for s in slabs)])
    hi = np.array([points[:, 0].max(), points[:, 1].max(), max(s.z_hi_mm for s in slabs)])
    extent = hi - lo
    spacing = float(spacing_mm)
    while True:
        counts = np.ceil(extent / spacing).astype(int) + 1 + 2 * MARGIN_VOXELS
        if int(np.prod(counts)) <= max_voxels:
            break
        spacing *= max(1.05, (float(np.prod(counts)) / max_voxels) ** (1 / 3))
    origin = lo - MARGIN_VOXELS * spacing + spacing / 2
    return Grid(
        (float(origin[0]), float(origin[1]), float(origin[2])),
        spacing,
        (int(counts[2]), int(counts[1]), int(counts[0])),
    )


def rasterise(slabs: Sequence[Slab], grid: Grid) -> np.ndarray:
    """A boolean mask ``[z, y, x]``: voxel centres inside the slab model."""
    mask = np.zeros(grid.shape, dtype=bool)
    if not slabs:
        return mask
    ordered = sorted(slabs, key=lambda s: s.z_lo_mm)
    z_lo = np.array([s.z_lo_mm for s in ordered])
    xs, ys = grid.axis_mm(0), grid.axis_mm(1)
    filled: dict[int, np.ndarray] = {}
    for k, z in enumerate(grid.axis_mm(2)):
        j = int(np.searchsorted(z_lo, z, side="right")) - 1
        if j < 0 or z >= ordered[j].z_hi_mm:
            continue
        if j not in filled:
            filled[j] = fill_plane(ordered[j].plane, xs, ys)
        mask[k] = filled[j]
    return mask


def fill_plane(plane: ContourPlane, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Even-odd fill of one plane's contours at the points ``(xs[i], ys[j])`` → mask ``[j, i]``.

    A point is inside when an odd number of contour edges cross the half-line to its right, the
    half-open rule of :func:`rtbank.dicom.contours.points_in_polygon`, evaluated a row at a time: on a row
    the sorted crossings ``c0 < c1 < …`` pair up into the inside intervals ``[c0, c1), [c2, c3), …``.
    """
    mask = np.zeros((len(ys), len(xs)), dtype=bool)
    if not plane.polygons or len(xs) == 0 or len(ys) == 0:
        return mask
    x0 = np.concatenate([p[:, 0] for p in plane.polygons])
    y0 = np.concatenate([p[:, 1] for p in plane.polygons])
    x1 = np.concatenate([np.roll(p[:, 0], -1) for p in plane.polygons])
    y1 = np.concatenate([np.roll(p[:, 1], -1) for p in plane.polygons])
    rows = np.nonzero((ys >= min(y0.min(), y1.min())) & (ys <= max(y0.max(), y1.max())))[0]
    if len(rows) == 0:
        return mask
    py = ys[rows][:, None]
    straddles = (y0[None, :] <= py) != (y1[None, :] <= py)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = x0[None, :] + (py - y0[None, :]) * (x1 - x0)[None, :] / (y1 - y0)[None, :]
    crossing = np.sort(np.where(straddles, crossing, np.inf), axis=1)
    starts, ends = crossing[:, 0::2], crossing[:, 1::2]
    pairs = min(starts.shape[1], ends.shape[1])
    starts, ends = starts[:, :pairs], ends[:, :pairs]
    valid = np.isfinite(starts) & np.isfinite(ends)
    step, first = xs[1] - xs[0] if len(xs) > 1 else 1.0, xs[0]
    # Column i is inside [start, end) when start <= x_i < end.
    begin = np.clip(np.ceil((np.where(valid, starts, first) - first) / step - 1e-9), 0, len(xs)).astype(int)
    stop = np.clip(np.ceil((np.where(valid, ends, first) - first) / step - 1e-9), 0, len(xs)).astype(int)
    change = np.zeros((len(rows), len(xs) + 1), dtype=np.int32)
    row_index = np.broadcast_to(np.arange(len(rows))[:, None], begin.shape)
    np.add.at(change, (row_index[valid], begin[valid]), 1)
    np.add.at(change, (row_index[valid], stop[valid]), -1)
    mask[rows] = np.cumsum(change[:, :-1], axis=1) > 0
    return mask


def majority(masks: Sequence[np.ndarray], fraction: float = 0.5) -> np.ndarray:
    """Voxels inside at least ``fraction`` of the masks (a simple voting consensus).

    Raises
    ------
    ValueError
        Without masks.
    """
    if not masks:
        raise ValueError("a consensus needs at least one delineation")
    votes = np.sum(np.stack(masks), axis=0)
    return votes >= math.ceil(fraction * len(masks) - 1e-9)


class Delineation:
    """A mask on a grid, with its surface and distance map computed once (compared many times).

    Parameters
    ----------
    mask : numpy.ndarray
        Boolean ``[z, y, x]`` on ``grid``.
    grid : Grid
    volume_cc : float, optional
        The delineation's volume when known better than the voxel count (the slab model's).
    """

    def __init__(self, mask: np.ndarray, grid: Grid, volume_cc: float | None = None) -> None:
        self.mask = mask
        self.grid = grid
        self.voxels = int(mask.sum())
        self.volume_cc = float(volume_cc) if volume_cc is not None else self.voxels * grid.voxel_cc

    @cached_property
    def surface(self) -> np.ndarray:
        return surface(self.mask)

    @cached_property
    def surface_points_mm(self) -> np.ndarray:
        """Centres (x, y, z in mm) of the surface voxels."""
        zyx = np.argwhere(self.surface)
        return np.asarray(self.grid.origin_mm) + zyx[:, ::-1] * self.grid.spacing_mm

    @cached_property
    def _tree(self) -> cKDTree:
        return cKDTree(self.surface_points_mm)

    def distances_from(self, points_mm: np.ndarray) -> np.ndarray:
        """Distance (mm) from each point to the nearest surface voxel centre of this delineation."""
        distances, _ = self._tree.query(points_mm)
        return np.asarray(distances, dtype=float)


def agreement(test: Delineation, reference: Delineation) -> Agreement:
    """Agreement of two delineations on the same grid (see the module docstring)."""
    if test.grid != reference.grid:
        raise ValueError("the delineations lie on different grids")
    n_test, n_ref = test.voxels, reference.voxels
    overlap = int(np.logical_and(test.mask, reference.mask).sum())
    dice = 2.0 * overlap / (n_test + n_ref) if n_test + n_ref else math.nan
    ratio = test.volume_cc / reference.volume_cc if reference.volume_cc > 0 else math.nan
    spacing = test.grid.spacing_mm
    if n_test == 0 or n_ref == 0:
        return Agreement(dice, math.nan, math.nan, ratio, test.volume_cc, reference.volume_cc, spacing)
    forward = reference.distances_from(test.surface_points_mm)
    backward = test.distances_from(reference.surface_points_mm)
    hd95 = max(float(np.percentile(forward, 95)), float(np.percentile(backward, 95)))
    msd = (float(forward.mean()) + float(backward.mean())) / 2.0
    return Agreement(dice, hd95, msd, ratio, test.volume_cc, reference.volume_cc, spacing)


def compare_masks(
    test: np.ndarray,
    reference: np.ndarray,
    grid: Grid,
    *,
    test_volume_cc: float | None = None,
    reference_volume_cc: float | None = None,
) -> Agreement:
    """Agreement of two masks on ``grid`` (volumes from voxel counts unless given)."""
    return agreement(
        Delineation(test, grid, test_volume_cc), Delineation(reference, grid, reference_volume_cc)
    )


def compare_rois(
    test: Roi,
    reference: Roi,
    *,
    test_planes_mm: np.ndarray | None = None,
    reference_planes_mm: np.ndarray | None = None,
    spacing_mm: float = DEFAULT_SPACING_MM,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> Agreement:
    """Agreement of a test ROI with a reference ROI (``*_planes_mm``: all planes of each structure set).

    Raises
    ------
    ValueError
        When both ROIs are empty.
    """
    test_slabs = slabs_of(test, test_planes_mm)
    reference_slabs = slabs_of(reference, reference_planes_mm)
    grid = common_grid([test_slabs, reference_slabs], spacing_mm, max_voxels)
    return compare_masks(
        rasterise(test_slabs, grid),
        rasterise(reference_slabs, grid),
        grid,
        test_volume_cc=float(roi_volume_cc(test_slabs)),
        reference_volume_cc=float(roi_volume_cc(reference_slabs)),
    )


def surface(mask: np.ndarray) -> np.ndarray:
    """Inside voxels with a face neighbour outside (the grid's edge counts as outside)."""
    return mask & ~ndimage.binary_erosion(mask, structure=_SIX_NEIGHBOURS, border_value=0)

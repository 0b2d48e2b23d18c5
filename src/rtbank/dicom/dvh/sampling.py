"""Where the DVH engine puts its dose samples: the geometric model shared by volume and dose.

Each plane of a ROI stands for a slab (:func:`rtbank.dicom.contours.roi_slabs`, half-slice end caps).
Inside a slab the engine lays a regular lattice of cells, ``step_x × step_y`` in plane and ``sub-slab``
thick, aligned with the dose grid: the in-plane steps divide the dose pixel spacing by whole numbers, so
every dose node is a lattice point and the trilinear dose is exactly linear between neighbouring
lattice points.

* **Area.** Along each lattice row the inside of the contours (even-odd rule) is found exactly, as
  intervals between edge crossings; a cell's weight is the exact length of those intervals inside it
  times the row height. A row at height *y* counts an edge running from *y0* to *y1* when
  ``y0 <= y < y1`` (half-open), so an edge that falls on a row or a cell border is counted once.
  The plane's weights are then rescaled to the exact polygon area (shoelace, holes subtracted), so the
  volume is exact for the slab model; planes smaller than a cell get one sample at their centroid.
* **Dose.** Trilinear, evaluated at the centroid of the covered part of each cell (exact along the
  row), at the centre of each sub-slab (midpoint rule in z).
* **Resolution.** Chosen per ROI from its volume so that it gets about ``target_samples`` samples and
  no step is finer than ``min_step_mm``. The in-plane step is the dose pixel spacing divided by a whole
  number (small ROIs: the trilinear dose is then exactly bilinear between lattice points) or, for ROIs
  so large that even the dose spacing gives far more samples, multiplied by one (whole body).
* **Coverage.** Each slab is cut to the box where the dose grid defines a dose (nodes ± half a voxel):
  its polygons are clipped to the box in plane (Sutherland–Hodgman, exact areas) and its z range to
  the box's; what lies outside is uncovered volume, reported beside the contour volume and left out of
  the histogram.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rtbank.dicom.contours import ContourPlane, Slab, polygon_area
from rtbank.dicom.dosegrid import DoseGrid

DEFAULT_TARGET_SAMPLES = 50_000
MIN_STEP_MM = 0.1
SCANLINES = 4  # per lattice row; even, so none lies on a lattice row or a cell border
_TRUSTED_CELLS = 16.0  # a plane smaller than this many cells is normalised to its polygon area


@dataclass(frozen=True)
class Resolution:
    """Sampling lattice of one ROI (mm)."""

    step_x_mm: float
    step_y_mm: float
    sub_slab_mm: float


@dataclass(frozen=True)
class DoseSamples:
    """Dose samples of one ROI.

    Attributes
    ----------
    dose_gy : numpy.ndarray
        Dose at each covered sample (Gy).
    volume_mm3 : numpy.ndarray
        Volume each sample stands for (mm³).
    spread_gy : numpy.ndarray
        Half the range of the trilinear dose across each sample's cell (Gy): the sample stands for a
        uniform spread of doses ``dose ± spread`` with the variance of the dose across its cell.
    uncovered_mm3 : float
        Volume of the samples outside the dose grid (mm³).
    resolution : Resolution
    notes : tuple of str
        Planes whose contours disagree with themselves (e.g. self-intersecting outlines).
    boundary_range_gy : tuple of float or None
        Lowest and highest dose at the contour vertices on both faces of their slabs (inside the grid):
        the extremes of a smooth dose lie on the boundary, where the samples (at cell centroids) do not.
    """

    dose_gy: np.ndarray
    volume_mm3: np.ndarray
    spread_gy: np.ndarray
    uncovered_mm3: float
    resolution: Resolution
    notes: tuple[str, ...] = ()
    boundary_range_gy: tuple[float, float] | None = None

    @property
    def covered_mm3(self) -> float:
        return float(self.volume_mm3.sum())


def choose_resolution(
    volume_mm3: float,
    grid: DoseGrid,
    target_samples: int = DEFAULT_TARGET_SAMPLES,
    min_step_mm: float = MIN_STEP_MM,
) -> Resolution:
    """Lattice steps for a ROI of ``volume_mm3`` on ``grid`` (see the module docstring)."""
    step = max(min_step_mm, (max(volume_mm3, 0.0) / target_samples) ** (1 / 3))
    sx, sy, _ = grid.spacing_mm
    return Resolution(_divide(sx, step), _divide(sy, step), step)


def sample_slabs(slabs: Sequence[Slab], grid: DoseGrid, resolution: Resolution | None = None) -> DoseSamples:
    """Dose samples of the slabs of one ROI.

    Parameters
    ----------
    slabs : sequence of Slab
        From :func:`rtbank.dicom.contours.roi_slabs`.
    grid : DoseGrid
        Dose in Gy.
    resolution : Resolution, optional
        Default: :func:`choose_resolution` for the slabs' volume.
    """
    if resolution is None:
        volume = sum(s.plane.area_mm2 * s.thickness_mm for s in slabs)
        resolution = choose_resolution(volume, grid)
    parts = [_sample_slab(slab, grid, resolution) for slab in slabs]
    dose, weight, spread = (_join([getattr(p, k) for p in parts]) for k in ("dose", "weight", "spread"))
    covered = ~np.isnan(dose)
    uncovered = sum(p.uncovered_mm3 for p in parts) + float(weight[~covered].sum())
    vertices = [p.boundary for p in parts if len(p.boundary)]
    edge = grid.dose_at(np.concatenate(vertices)) if vertices else np.zeros(0)
    edge = edge[~np.isnan(edge)]
    extremes = (float(edge.min()), float(edge.max())) if len(edge) else None
    notes = tuple(p.note for p in parts if p.note)
    return DoseSamples(
        dose[covered], weight[covered], spread[covered], uncovered, resolution, notes, extremes
    )


def _join(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


def _divide(spacing: float, step: float) -> float:
    """The dose spacing divided, or for large ROIs multiplied, by a whole number, nearest ``step``."""
    if not math.isfinite(spacing) or spacing <= 0:
        return step
    if step >= 2 * spacing:
        return spacing * math.floor(step / spacing)
    return spacing / max(1, round(spacing / step))


class _SlabSamples(NamedTuple):
    dose: np.ndarray
    weight: np.ndarray
    spread: np.ndarray
    uncovered_mm3: float = 0.0
    note: str = ""
    boundary: np.ndarray = np.zeros((0, 3))  # contour vertices on the slab's faces (x, y, z mm)


def _sample_slab(slab: Slab, grid: DoseGrid, res: Resolution) -> _SlabSamples:
    """Samples of the part of one slab inside the dose grid, and the volume of the rest (mm³)."""
    exact = slab.plane.area_mm2
    (x_low, x_high), (y_low, y_high), (z_low, z_high) = grid.bounds_mm
    z0, z1 = max(slab.z_lo_mm, z_low), min(slab.z_hi_mm, z_high)
    if z1 <= z0:  # the whole slab lies beyond the dose grid
        return _SlabSamples(*_NONE, uncovered_mm3=exact * slab.thickness_mm)
    polygons, area = _clip_plane(slab.plane, (x_low, x_high, y_low, y_high))
    uncovered = max(exact * slab.thickness_mm - area * (z1 - z0), 0.0)
    if not polygons:
        return _SlabSamples(*_NONE, uncovered_mm3=uncovered)
    n_sub = max(1, math.ceil((z1 - z0) / res.sub_slab_mm - 1e-9))
    sub = (z1 - z0) / n_sub
    faces = z0 + np.arange(n_sub + 1) * sub
    xy = np.concatenate(polygons)
    boundary = np.concatenate([np.column_stack([xy, np.full(len(xy), z)]) for z in (z0, z1)])
    ox, oy, dx, dy = float(grid.x_mm[0]), float(grid.y_mm[0]), res.step_x_mm, res.step_y_mm
    cells = row_coverage(polygons, ox, dx, oy, dy)
    sampled = float(cells.fraction.sum()) * dx * dy
    if sampled <= 0.0:  # smaller than a cell: one sample per sub-slab at the centroid
        if area <= 0.0:
            return _SlabSamples(*_NONE, uncovered_mm3=uncovered)
        cx, cy = ContourPlane(slab.plane.z_mm, tuple(polygons)).centroid_mm
        at_faces = grid.dose_at(np.column_stack([np.full(n_sub + 1, cx), np.full(n_sub + 1, cy), faces]))
        dose = (at_faces[:-1] + at_faces[1:]) / 2
        spread = np.abs(np.diff(at_faces)) / 2
        return _SlabSamples(dose, np.full(n_sub, area * sub), spread, uncovered, "", boundary)
    note, scale = "", area / sampled
    if max(area, sampled) / (dx * dy) >= _TRUSTED_CELLS and (area <= 0 or abs(scale - 1) > 0.1):
        note = (
            f"plane z={slab.plane.z_mm:g} mm: polygon area {area:.1f} mm² differs from the even-odd "
            f"area {sampled:.1f} mm² (crossing contours?); the even-odd area is used"
        )
        scale = 1.0
    dose, spread = _dose_at_cells(cells, grid, ox, dx, oy, dy, faces)
    weight = np.tile(cells.fraction * (dx * dy * sub * scale), n_sub)
    return _SlabSamples(dose.ravel(), weight, spread.ravel(), uncovered, note, boundary)


_NONE = (np.zeros(0), np.zeros(0), np.zeros(0))


def _clip_plane(
    plane: ContourPlane, box: tuple[float, float, float, float]
) -> tuple[list[np.ndarray], float]:
    """The plane's polygons clipped to the dose grid's x-y extent, and the area inside (mm², even-odd).

    Holes keep the nesting of the unclipped contours (a clipped hole's vertices may lie on the box).
    """
    x_low, x_high, y_low, y_high = box
    everything_inside = all(
        p[:, 0].min() >= x_low
        and p[:, 0].max() <= x_high
        and p[:, 1].min() >= y_low
        and p[:, 1].max() <= y_high
        for p in plane.polygons
    )
    if everything_inside:
        return list(plane.polygons), plane.area_mm2
    clipped, area = [], 0.0
    for sign, polygon in zip(plane.nesting_signs, plane.polygons, strict=True):
        part = polygon
        for axis, limit, keep_above in (
            (0, x_low, True),
            (0, x_high, False),
            (1, y_low, True),
            (1, y_high, False),
        ):
            part = _clip_half_plane(part, axis, limit, keep_above)
            if len(part) < 3:
                break
        if len(part) >= 3:
            clipped.append(part)
            area += sign * abs(polygon_area(part))
    return clipped, max(area, 0.0)


def _clip_half_plane(polygon: np.ndarray, axis: int, limit: float, keep_above: bool) -> np.ndarray:
    """Sutherland–Hodgman: the part of a polygon on one side of ``p[axis] = limit``."""
    start, end = polygon, np.roll(polygon, -1, axis=0)
    inside_start = start[:, axis] >= limit if keep_above else start[:, axis] <= limit
    inside_end = end[:, axis] >= limit if keep_above else end[:, axis] <= limit
    crossing = inside_start != inside_end
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(crossing, (limit - start[:, axis]) / (end[:, axis] - start[:, axis]), 0.0)
    meet = start + t[:, None] * (end - start)
    meet[crossing, axis] = limit
    keep = np.column_stack([inside_start, crossing])
    return np.stack([start, meet], axis=1)[keep]


@dataclass(frozen=True)
class CellCoverage:
    """Lattice cells of one plane that the contours cover.

    ``row``/``col`` are lattice indices (cell centre at ``origin + index × step``), ``fraction`` the
    covered share of the cell (0…1], ``offset_x``/``offset_y`` the centroid of the covered part relative
    to the cell centre, in steps (−½…½), ``extent_y`` the share of the cell's scanlines that meet it.
    """

    row: np.ndarray
    col: np.ndarray
    fraction: np.ndarray
    offset_x: np.ndarray
    offset_y: np.ndarray
    extent_y: np.ndarray


def row_coverage(polygons: Sequence[np.ndarray], ox: float, dx: float, oy: float, dy: float) -> CellCoverage:
    """Even-odd coverage of lattice cells: exact along x, :data:`SCANLINES` scanlines per row in y.

    The scanlines sit at the centres of equal sub-bands of each row (never on a lattice row or on a
    cell border, where grid-aligned edges lie); an edge from y0 to y1 crosses a scanline at y when
    ``min(y0, y1) <= y < max(y0, y1)`` (half-open), so an edge or vertex lying exactly on a scanline is
    counted once. The covered share of a cell is the mean over its scanlines, its centroid the
    coverage-weighted mean of the scanlines' pieces.
    """
    empty = CellCoverage(*(np.zeros(0, dtype=int),) * 2, *(np.zeros(0),) * 4)
    if not polygons:
        return empty
    start = np.concatenate(polygons)
    end = np.concatenate([np.roll(p, -1, axis=0) for p in polygons])
    shifts = (np.arange(SCANLINES) + 0.5) / SCANLINES - 0.5
    # all scanlines at once: scanline q lies at oy + shifts[0]·dy + q·dy/SCANLINES, in row q // SCANLINES
    scanline, a, b = _intervals(start, end, ox, dx, oy + shifts[0] * dy, dy / SCANLINES)
    if len(scanline) == 0:
        return empty
    row = np.floor_divide(scanline, SCANLINES)
    r0, c0 = int(row.min()), int(np.floor(a).min())
    rows, cols = int(row.max()) - r0 + 1, int(np.floor(b).max()) - c0 + 2
    line, moment = np.zeros((rows * SCANLINES, cols)), np.zeros((rows * SCANLINES, cols))
    _add_intervals(line, moment, scanline - r0 * SCANLINES, a - c0, b - c0)
    per_line = line.reshape(rows, SCANLINES, cols)
    frac = per_line.sum(axis=1)
    moment_x = moment.reshape(rows, SCANLINES, cols).sum(axis=1)
    moment_y = np.einsum("s,rsc->rc", shifts, per_line)
    lines = np.count_nonzero(per_line > 1e-9, axis=1)
    hit_r, hit_c = np.nonzero(frac > 1e-9)
    t = frac[hit_r, hit_c]
    offset_x = np.clip(moment_x[hit_r, hit_c] / t, -0.5, 0.5)
    offset_y = moment_y[hit_r, hit_c] / t
    return CellCoverage(
        hit_r + r0,
        hit_c + c0,
        np.minimum(t / SCANLINES, 1.0),
        offset_x,
        offset_y,
        lines[hit_r, hit_c] / SCANLINES,
    )


def _intervals(
    start: np.ndarray, end: np.ndarray, ox: float, dx: float, oy: float, dy: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inside intervals along the scanlines ``y = oy + j × dy``, in cell units (cell i spans [i, i+1)).

    An edge crosses scanline j when ``min(y0, y1) <= y_j < max(y0, y1)``; each scanline meets an even
    number of edges, and sorted crossings pair into inside intervals (even-odd rule).
    """
    fy0, fy1 = (start[:, 1] - oy) / dy, (end[:, 1] - oy) / dy
    j_first = np.ceil(np.minimum(fy0, fy1)).astype(np.int64)
    count = np.maximum(np.ceil(np.maximum(fy0, fy1)).astype(np.int64) - j_first, 0)
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    edge = np.repeat(np.arange(len(count)), count)
    row = j_first[edge] + (np.arange(total) - np.repeat(np.cumsum(count) - count, count))
    t = (row - fy0[edge]) / (fy1[edge] - fy0[edge])
    u = (start[edge, 0] + t * (end[edge, 0] - start[edge, 0]) - ox) / dx + 0.5
    order = np.lexsort((u, row))
    row, u = row[order], u[order]
    return row[0::2], u[0::2], u[1::2]


def _add_intervals(
    frac: np.ndarray, moment: np.ndarray, rows: np.ndarray, a: np.ndarray, b: np.ndarray
) -> None:
    """Add inside intervals [a, b] (cell units from the first column) to covered length and x moment."""
    ia, ib = np.floor(a).astype(np.int64), np.floor(b).astype(np.int64)
    same = ia == ib
    _add_piece(frac, moment, rows[same], ia[same], a[same] - ia[same], b[same] - ia[same])
    split = ~same
    rs, ias, ibs = rows[split], ia[split], ib[split]
    _add_piece(frac, moment, rs, ias, a[split] - ias, np.ones(len(rs)))
    _add_piece(frac, moment, rs, ibs, np.zeros(len(rs)), b[split] - ibs)
    inner = ibs > ias + 1
    full = np.zeros(frac.shape)
    np.add.at(full, (rs[inner], ias[inner] + 1), 1.0)
    np.add.at(full, (rs[inner], ibs[inner]), -1.0)
    frac += np.cumsum(full, axis=1)


def _add_piece(
    frac: np.ndarray, moment: np.ndarray, r: np.ndarray, c: np.ndarray, s: np.ndarray, e: np.ndarray
) -> None:
    """Add the covered piece [s, e] (0…1 within cell c) to the cell's length and centred x moment."""
    np.add.at(frac, (r, c), e - s)
    np.add.at(moment, (r, c), ((e - 0.5) ** 2 - (s - 0.5) ** 2) / 2)


def _dose_at_cells(
    cells: CellCoverage, grid: DoseGrid, ox: float, dx: float, oy: float, dy: float, faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Trilinear dose at the covered cells' centroids, and its spread, per sub-slab: (n_sub, cells) each.

    The spread is half the width of the uniform distribution with the variance of the (locally linear)
    dose across the covered part of the cell: ``½ √(ΔDx² + ΔDy² + ΔDz²)``.
    """
    zs = np.concatenate([(faces[:-1] + faces[1:]) / 2, faces])
    n_sub = len(faces) - 1
    lattice = _lattice_dose(cells, grid, ox, dx, oy, dy, zs)
    cols = lattice.shape[2]
    flat = lattice.reshape(len(zs), -1)
    centres, at_faces = flat[:n_sub], flat[n_sub:]
    # flat index of each cell in the lattice (which has a one-node margin)
    base = (cells.row - int(cells.row.min()) + 1) * cols + (cells.col - int(cells.col.min()) + 1)
    sx = np.where(cells.offset_x >= 0, 1, -1)
    sy = np.where(cells.offset_y >= 0, cols, -cols)
    fx, fy = np.abs(cells.offset_x), np.abs(cells.offset_y)
    centre = centres[:, base]
    partial = bool(np.isnan(centres).any())

    def at(offset: np.ndarray | int) -> np.ndarray:
        # a neighbour outside the dose grid: keep the cell-centre dose rather than lose the sample
        values = centres[:, base + offset]
        return np.where(np.isnan(values), centre, values) if partial else values

    dose = (centre * (1 - fx) + at(sx) * fx) * (1 - fy) + (at(sy) * (1 - fx) + at(sy + sx) * fx) * fy
    extent_y = np.maximum(cells.extent_y, 1e-9)
    extent_x = np.minimum(cells.fraction / extent_y, 1.0)
    across_x = (at(1) - at(-1)) / 2 * extent_x
    across_y = (at(cols) - at(-cols)) / 2 * extent_y
    across_z = at_faces[1:, base] - at_faces[:-1, base]
    if partial or np.isnan(across_z).any():
        across_z = np.where(np.isnan(across_z), 0.0, across_z)
    spread = 0.5 * np.sqrt(across_x**2 + across_y**2 + across_z**2)
    return dose, np.where(np.isnan(dose), 0.0, spread) if partial else spread


def _lattice_dose(
    cells: CellCoverage, grid: DoseGrid, ox: float, dx: float, oy: float, dy: float, zs: np.ndarray
) -> np.ndarray:
    """Trilinear dose at the lattice nodes around the covered cells (one node margin): (z, rows, cols).

    Separable: each z plane of the dose block is interpolated as ``Wy · plane · Wxᵀ`` with two sparse-ish
    weight matrices (two non-zeros a row; NaN rows outside the grid).
    """
    rows = np.arange(int(cells.row.min()) - 1, int(cells.row.max()) + 2)
    cols = np.arange(int(cells.col.min()) - 1, int(cells.col.max()) + 2)
    yi0, yi1, ty = grid.axis_weights(1, oy + rows * dy)
    xi0, xi1, tx = grid.axis_weights(0, ox + cols * dx)
    zi0, zi1, tz = grid.axis_weights(2, zs)
    y_lo, y_hi = int(yi0.min()), int(yi1.max()) + 1
    x_lo, x_hi = int(xi0.min()), int(xi1.max()) + 1
    block = grid.dose_gy[:, y_lo:y_hi, x_lo:x_hi]
    tz3 = tz[:, None, None]
    plane = block[zi0] * (1 - tz3) + block[zi1] * tz3  # NaN where z is outside the grid
    return (
        _weights(yi0 - y_lo, yi1 - y_lo, ty, y_hi - y_lo)
        @ plane
        @ _weights(xi0 - x_lo, xi1 - x_lo, tx, x_hi - x_lo).T
    )


def _weights(lower: np.ndarray, upper: np.ndarray, t: np.ndarray, size: int) -> np.ndarray:
    """Interpolation matrix: row k has 1 − t at ``lower[k]`` and t at ``upper[k]`` (NaN rows outside)."""
    matrix = np.zeros((len(t), size))
    k = np.arange(len(t))
    np.add.at(matrix, (k, lower), 1 - t)
    np.add.at(matrix, (k, upper), t)
    return matrix

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
* **Resolution.** Chosen per ROI from its volume so that it gets about ``target_samples`` samples,
  never coarser than the dose grid in plane nor finer than ``min_step_mm``.
* **Coverage.** A sample where the dose grid defines no dose (beyond the outer half voxel) is counted
  as uncovered volume and left out of the histogram.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rtbank.dicom.contours import Slab
from rtbank.dicom.dosegrid import DoseGrid

DEFAULT_TARGET_SAMPLES = 100_000
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
    doses, weights, spreads, notes, edges = [], [], [], [], []
    uncovered = 0.0
    for slab in slabs:
        d, w, h, note = _sample_slab(slab, grid, resolution)
        covered = ~np.isnan(d)
        doses.append(d[covered])
        weights.append(w[covered])
        spreads.append(h[covered])
        uncovered += float(w[~covered].sum())
        if note:
            notes.append(note)
        if covered.any():
            edges.append(_vertex_doses(slab, grid))
    edge = np.concatenate(edges) if edges else np.zeros(0)
    edge = edge[~np.isnan(edge)]
    extremes = (float(edge.min()), float(edge.max())) if len(edge) else None
    return DoseSamples(
        _join(doses), _join(weights), _join(spreads), uncovered, resolution, tuple(notes), extremes
    )


def _join(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


def _vertex_doses(slab: Slab, grid: DoseGrid) -> np.ndarray:
    xy = np.concatenate(slab.plane.polygons)
    points = np.concatenate(
        [np.column_stack([xy, np.full(len(xy), z)]) for z in (slab.z_lo_mm, slab.z_hi_mm)]
    )
    return grid.dose_at(points)


def _divide(spacing: float, step: float) -> float:
    if not math.isfinite(spacing) or spacing <= 0:
        return step
    return spacing / max(1, math.ceil(spacing / step - 1e-9))


def _sample_slab(
    slab: Slab, grid: DoseGrid, res: Resolution
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Dose, volume (mm³) and dose spread of the samples of one slab, and a note on crossing contours."""
    ox, oy = float(grid.x_mm[0]), float(grid.y_mm[0])
    dx, dy = res.step_x_mm, res.step_y_mm
    n_sub = max(1, math.ceil(slab.thickness_mm / res.sub_slab_mm - 1e-9))
    sub = slab.thickness_mm / n_sub
    faces = slab.z_lo_mm + np.arange(n_sub + 1) * sub
    exact = slab.plane.area_mm2
    cells = row_coverage(slab.plane.polygons, ox, dx, oy, dy)
    sampled = float(cells.fraction.sum()) * dx * dy
    note = ""
    if sampled <= 0.0:
        if exact <= 0.0:
            return np.zeros(0), np.zeros(0), np.zeros(0), ""
        cx, cy = slab.plane.centroid_mm
        xy = np.column_stack([np.full(n_sub + 1, cx), np.full(n_sub + 1, cy)])
        at_faces = grid.dose_at(np.column_stack([xy, faces]))
        dose = (at_faces[:-1] + at_faces[1:]) / 2
        return dose, np.full(n_sub, exact * sub), np.abs(np.diff(at_faces)) / 2, ""
    scale = exact / sampled
    if exact / (dx * dy) >= _TRUSTED_CELLS and abs(scale - 1) > 0.1:
        note = (
            f"plane z={slab.plane.z_mm:g} mm: polygon area {exact:.1f} mm² differs from the even-odd "
            f"area {sampled:.1f} mm² (crossing contours?); the even-odd area is used"
        )
        scale = 1.0
    dose, spread = _dose_at_cells(cells, grid, ox, dx, oy, dy, faces)
    weight = np.tile(cells.fraction * (dx * dy * sub * scale), n_sub)
    return dose.ravel(), weight, spread.ravel(), note


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
    scans = [_intervals(start, end, ox, dx, oy + shift * dy, dy) for shift in shifts]
    found = [sc for sc in scans if len(sc[0])]
    if not found:
        return empty
    r0 = int(min(sc[0].min() for sc in found))
    c0 = int(min(np.floor(sc[1]).min() for sc in found))
    shape = (
        int(max(sc[0].max() for sc in found)) - r0 + 1,
        int(max(np.floor(sc[2]).max() for sc in found)) - c0 + 2,
    )
    frac, moment_x, moment_y, lines = (np.zeros(shape) for _ in range(4))
    for shift, (rows, a, b) in zip(shifts, scans, strict=True):
        line = np.zeros(shape)
        _add_intervals(line, moment_x, rows - r0, a - c0, b - c0)
        frac += line
        moment_y += shift * line
        lines += line > 1e-9
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
    centres, at_faces = lattice[:n_sub], lattice[n_sub:]
    r, c = cells.row - int(cells.row.min()) + 1, cells.col - int(cells.col.min()) + 1
    sx = np.where(cells.offset_x >= 0, 1, -1)
    sy = np.where(cells.offset_y >= 0, 1, -1)
    fx, fy = np.abs(cells.offset_x), np.abs(cells.offset_y)
    centre = centres[:, r, c]
    partial = bool(np.isnan(centres).any())

    def at(rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        # a neighbour outside the dose grid: keep the cell-centre dose rather than lose the sample
        values = centres[:, rr, cc]
        return np.where(np.isnan(values), centre, values) if partial else values

    dose = (centre * (1 - fx) + at(r, c + sx) * fx) * (1 - fy) + (
        at(r + sy, c) * (1 - fx) + at(r + sy, c + sx) * fx
    ) * fy
    extent_y = np.maximum(cells.extent_y, 1e-9)
    extent_x = np.minimum(cells.fraction / extent_y, 1.0)
    across_x = (at(r, c + 1) - at(r, c - 1)) / 2 * extent_x
    across_y = (at(r + 1, c) - at(r - 1, c)) / 2 * extent_y
    top, bottom = at_faces[1:, r, c], at_faces[:-1, r, c]
    across_z = top - bottom
    spread = 0.5 * np.sqrt(across_x**2 + across_y**2 + across_z**2)
    if partial or np.isnan(across_z).any():
        across_z = np.where(np.isnan(across_z), 0.0, across_z)
        spread = np.where(np.isnan(dose), 0.0, 0.5 * np.sqrt(across_x**2 + across_y**2 + across_z**2))
    return dose, spread


def _lattice_dose(
    cells: CellCoverage, grid: DoseGrid, ox: float, dx: float, oy: float, dy: float, zs: np.ndarray
) -> np.ndarray:
    """Trilinear dose at the lattice nodes around the covered cells (one node margin): (z, rows, cols)."""
    rows = np.arange(int(cells.row.min()) - 1, int(cells.row.max()) + 2)
    cols = np.arange(int(cells.col.min()) - 1, int(cells.col.max()) + 2)
    yi0, yi1, ty = grid.axis_weights(1, oy + rows * dy)
    xi0, xi1, tx = grid.axis_weights(0, ox + cols * dx)
    zi0, zi1, tz = grid.axis_weights(2, zs)
    y_lo, y_hi = int(min(yi0.min(), yi1.min())), int(max(yi0.max(), yi1.max())) + 1
    x_lo, x_hi = int(min(xi0.min(), xi1.min())), int(max(xi0.max(), xi1.max())) + 1
    block = grid.dose_gy[:, y_lo:y_hi, x_lo:x_hi]
    tz3 = tz[:, None, None]
    plane = block[zi0] * (1 - tz3) + block[zi1] * tz3  # NaN where z is outside the grid
    yi0, yi1, xi0, xi1 = yi0 - y_lo, yi1 - y_lo, xi0 - x_lo, xi1 - x_lo
    low_rows, high_rows = plane[:, yi0], plane[:, yi1]
    tx2 = tx[None, None, :]
    low = low_rows[:, :, xi0] * (1 - tx2) + low_rows[:, :, xi1] * tx2
    high = high_rows[:, :, xi0] * (1 - tx2) + high_rows[:, :, xi1] * tx2
    ty2 = ty[None, :, None]
    return low * (1 - ty2) + high * ty2

"""RT Dose grids in patient coordinates: reading, trilinear interpolation, summation and scaling.

A :class:`DoseGrid` holds the dose in Gy on an axis-aligned grid in the patient coordinate system
(DICOM LPS, mm), whatever the patient position the TPS wrote it in: head-first or feet-first, supine,
prone or decubitus grids are all stored with increasing x, y and z. Truly oblique grids (rows or
columns not along a patient axis) are rejected with a :class:`ValueError`.

Conventions
-----------
* ``dose_gy[k, j, i]`` is the dose at ``(x_mm[i], y_mm[j], z_mm[k])``; x and y are uniformly spaced,
  z may be irregular (Grid Frame Offset Vector).
* Each value stands for a voxel centred on its node. Inside the hull of the nodes the dose is
  trilinear; in the outer half voxel the edge value is kept (no extrapolation); beyond that the
  dose is undefined (NaN). :meth:`DoseGrid.covers` tells which points have a defined dose.
* Every transformation (summing beam doses, scaling a per-fraction dose to the plan) returns a new grid
  and appends a sentence to :attr:`DoseGrid.history`, so a result can state how its dose was built.

This module is shared by the DVH engine and the plan viewer (isodose lines from :meth:`plane_at_z`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from pydicom.dataset import Dataset

# Dose Summation Types whose dose is for one fraction (PS3.3 C.8.8.3): scale by the planned fractions.
PER_FRACTION_SUMMATIONS = frozenset({"FRACTION", "FRACTION_SESSION", "BEAM_SESSION", "BRACHY_SESSION"})
# Whole-treatment doses of a complete plan (preferred over summing beams).
PLAN_SUMMATIONS = frozenset({"PLAN", "MULTI_PLAN", "PLAN_OVERVIEW", "RECORD"})
BEAM_SUMMATIONS = frozenset({"BEAM", "BEAM_SESSION", "CONTROL_POINT"})

_COSINE_TOLERANCE = 1e-3  # ~0.06 degrees: rounding in real files, not a tilt
_POSITION_TOLERANCE_MM = 0.05


@dataclass(frozen=True)
class DoseGrid:
    """A 3-D dose distribution on an axis-aligned grid in patient coordinates.

    Attributes
    ----------
    dose_gy : numpy.ndarray
        Dose in Gy, shape ``(nz, ny, nx)``, float32.
    x_mm, y_mm, z_mm : numpy.ndarray
        Node positions in mm (patient LPS), strictly increasing; x and y uniform.
    frame_of_reference_uid : str
        The Frame of Reference the positions refer to ("" when the file had none).
    summation_type : str
        Dose Summation Type (``PLAN``, ``BEAM``, ``FRACTION``, …) of the dose held now.
    units : str
        Dose Units: ``GY`` (``RELATIVE`` only when read with ``allow_relative``).
    dose_type : str
        ``PHYSICAL``, ``EFFECTIVE`` (RBE-weighted) or ``ERROR``.
    history : tuple of str
        How this dose was obtained, one sentence per step, starting with the source file.
    referenced_plan_uid : str
        SOP Instance UID of the RT Plan the dose belongs to ("" if none).
    referenced_fraction_group : int or None
        Referenced Fraction Group Number, if the dose names one.
    referenced_beam_numbers : tuple of int
        Beams a ``BEAM`` dose was calculated for.
    slice_thickness_mm : float or None
        Thickness of a single-frame grid (from Slice Thickness); unused with several frames.
    """

    dose_gy: np.ndarray
    x_mm: np.ndarray
    y_mm: np.ndarray
    z_mm: np.ndarray
    frame_of_reference_uid: str = ""
    summation_type: str = "PLAN"
    units: str = "GY"
    dose_type: str = "PHYSICAL"
    history: tuple[str, ...] = ()
    referenced_plan_uid: str = ""
    referenced_fraction_group: int | None = None
    referenced_beam_numbers: tuple[int, ...] = ()
    sop_instance_uid: str = ""
    slice_thickness_mm: float | None = None
    _rims: tuple[tuple[float, float], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        nz, ny, nx = self.dose_gy.shape
        if (len(self.x_mm), len(self.y_mm), len(self.z_mm)) != (nx, ny, nz):
            raise ValueError(
                f"dose array shape {self.dose_gy.shape} does not match the axes "
                f"({len(self.z_mm)}, {len(self.y_mm)}, {len(self.x_mm)})"
            )
        for name, axis in (("x", self.x_mm), ("y", self.y_mm), ("z", self.z_mm)):
            if len(axis) > 1 and not np.all(np.diff(axis) > 0):
                raise ValueError(f"dose grid {name} positions must increase strictly")
        rims = tuple(
            _rim(axis, self.slice_thickness_mm if name == "z" else None)
            for name, axis in (("x", self.x_mm), ("y", self.y_mm), ("z", self.z_mm))
        )
        object.__setattr__(self, "_rims", rims)

    # ----------------------------------------------------------------- reading
    @classmethod
    def from_dataset(cls, ds: Dataset, *, allow_relative: bool = False) -> DoseGrid:
        """Read an RT Dose dataset.

        Parameters
        ----------
        ds : pydicom.dataset.Dataset
            An RTDOSE with pixel data, Dose Grid Scaling and Dose Units ``GY``.
        allow_relative : bool
            Accept Dose Units ``RELATIVE`` too (isodose display); ``dose_gy`` then holds the relative
            values and :attr:`units` says so. DVH metrics in Gy need ``GY``.

        Returns
        -------
        DoseGrid
            The dose in Gy, axes reordered to increasing patient x, y, z.

        Raises
        ------
        ValueError
            If the grid is oblique or not axial, units are not Gy, pixel data are missing, or the
            Grid Frame Offset Vector is inconsistent with the number of frames.
        """
        uid = str(ds.get("SOPInstanceUID", "?"))
        if "PixelData" not in ds:
            raise ValueError(f"RTDOSE {uid} has no pixel data (a DVH-only RT Dose?)")
        units = str(ds.get("DoseUnits", "")).upper()
        if units != "GY" and not (allow_relative and units == "RELATIVE"):
            raise ValueError(f"RTDOSE {uid}: Dose Units {units or 'missing'!r}; only GY doses can be used")
        row_cos, col_cos = _axial_cosines(ds, uid)
        spacing = [float(v) for v in ds.PixelSpacing]  # [between rows, between columns]
        ipp = np.array([float(v) for v in ds.ImagePositionPatient])
        frames = _frames(ds)
        normal = np.cross(row_cos, col_cos)
        z = _frame_z(ds, ipp, normal, frames, uid)
        pixels = np.asarray(ds.pixel_array).reshape(frames, int(ds.Rows), int(ds.Columns))
        dose = pixels.astype(np.float32) * np.float32(float(ds.DoseGridScaling))
        # axes: frame -> z, row -> along col_cos, column -> along row_cos
        col_axis = int(np.argmax(np.abs(row_cos)))  # 0: x, 1: y
        step_col, step_row = spacing[1], spacing[0]
        col_pos = ipp[col_axis] + row_cos[col_axis] * step_col * np.arange(ds.Columns)
        row_pos = ipp[1 - col_axis] + col_cos[1 - col_axis] * step_row * np.arange(ds.Rows)
        if col_axis == 1:  # columns run along y: make the last axis x
            dose = dose.transpose(0, 2, 1)
            x, y = row_pos, col_pos
        else:
            x, y = col_pos, row_pos
        dose, x = _increasing(dose, x, axis=2)
        dose, y = _increasing(dose, y, axis=1)
        dose, z = _increasing(dose, z, axis=0)
        plan_uid, group, beams = _references(ds)
        thickness = ds.get("SliceThickness")
        return cls(
            dose_gy=np.ascontiguousarray(dose),
            x_mm=x,
            y_mm=y,
            z_mm=z,
            frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
            summation_type=str(ds.get("DoseSummationType", "PLAN")).upper(),
            units=units,
            dose_type=str(ds.get("DoseType", "PHYSICAL")).upper(),
            history=(
                f"RTDOSE {uid} ({str(ds.get('DoseSummationType', 'PLAN')).upper()}, "
                f"{str(ds.get('DoseType', 'PHYSICAL')).upper()})",
            ),
            referenced_plan_uid=plan_uid,
            referenced_fraction_group=group,
            referenced_beam_numbers=beams,
            sop_instance_uid=uid,
            slice_thickness_mm=float(thickness) if thickness not in (None, "") and frames == 1 else None,
        )

    # ----------------------------------------------------------------- geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(nz, ny, nx)``."""
        nz, ny, nx = self.dose_gy.shape
        return nz, ny, nx

    @property
    def spacing_mm(self) -> tuple[float, float, float | None]:
        """Node spacing (x, y, z) in mm; z is None when the frames are irregularly spaced."""
        sx = float(self.x_mm[1] - self.x_mm[0]) if len(self.x_mm) > 1 else float("nan")
        sy = float(self.y_mm[1] - self.y_mm[0]) if len(self.y_mm) > 1 else float("nan")
        dz = np.diff(self.z_mm)
        sz = float(dz[0]) if len(dz) and np.allclose(dz, dz[0], atol=1e-3) else None
        return sx, sy, sz

    @property
    def bounds_mm(self) -> tuple[tuple[float, float], ...]:
        """Per axis (x, y, z), the interval in which the dose is defined (nodes ± the outer half voxel)."""
        return tuple(
            (float(a[0] - lo), float(a[-1] + hi))
            for a, (lo, hi) in zip((self.x_mm, self.y_mm, self.z_mm), self._rims, strict=True)
        )

    @property
    def max_gy(self) -> float:
        """Highest dose value in the grid (Gy)."""
        return float(self.dose_gy.max()) if self.dose_gy.size else 0.0

    # ----------------------------------------------------------------- interpolation
    def covers(self, points_mm: np.ndarray) -> np.ndarray:
        """Whether each point (N×3, mm) lies where the dose is defined."""
        pts = np.atleast_2d(np.asarray(points_mm, dtype=float))
        inside = np.ones(len(pts), dtype=bool)
        for k, (lo, hi) in enumerate(self.bounds_mm):
            inside &= (pts[:, k] >= lo - 1e-9) & (pts[:, k] <= hi + 1e-9)
        return inside

    def axis_weights(self, axis: int, coords_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Linear-interpolation indices and weights along one axis.

        Parameters
        ----------
        axis : int
            0 for x, 1 for y, 2 for z.
        coords_mm : numpy.ndarray
            Positions along that axis (mm).

        Returns
        -------
        lower, upper : numpy.ndarray of int
            Node indices either side (equal in the outer half voxel and on single-node axes).
        t : numpy.ndarray of float
            Weight of ``upper`` (0…1); NaN where the position is outside the grid.
        """
        nodes = (self.x_mm, self.y_mm, self.z_mm)[axis]
        lo_rim, hi_rim = self._rims[axis]
        c = np.asarray(coords_mm, dtype=float)
        n = len(nodes)
        if n == 1:
            lower = np.zeros(c.shape, dtype=np.intp)
            t = np.zeros(c.shape)
        else:
            lower = np.clip(np.searchsorted(nodes, c, side="right") - 1, 0, n - 2)
            t = np.clip((c - nodes[lower]) / (nodes[lower + 1] - nodes[lower]), 0.0, 1.0)
        outside = (c < nodes[0] - lo_rim - 1e-9) | (c > nodes[-1] + hi_rim + 1e-9)
        t = np.where(outside, np.nan, t)
        upper = np.minimum(lower + 1, n - 1)
        return lower, upper, t

    def dose_at(self, points_mm: np.ndarray) -> np.ndarray:
        """Trilinear dose at points in patient coordinates.

        Parameters
        ----------
        points_mm : numpy.ndarray
            Shape ``(N, 3)`` (or ``(3,)``): x, y, z in mm.

        Returns
        -------
        numpy.ndarray
            Dose in Gy, shape ``(N,)``; NaN for points where the grid does not define a dose.
        """
        pts = np.atleast_2d(np.asarray(points_mm, dtype=float))
        (x0, x1, tx), (y0, y1, ty), (z0, z1, tz) = (self.axis_weights(a, pts[:, a]) for a in range(3))
        d = self.dose_gy
        c00 = d[z0, y0, x0] * (1 - tx) + d[z0, y0, x1] * tx
        c01 = d[z0, y1, x0] * (1 - tx) + d[z0, y1, x1] * tx
        c10 = d[z1, y0, x0] * (1 - tx) + d[z1, y0, x1] * tx
        c11 = d[z1, y1, x0] * (1 - tx) + d[z1, y1, x1] * tx
        return ((c00 * (1 - ty) + c01 * ty) * (1 - tz) + (c10 * (1 - ty) + c11 * ty) * tz).astype(float)

    def plane_at_z(self, z_mm: float) -> np.ndarray | None:
        """The axial dose plane at ``z_mm`` (Gy, ``(ny, nx)``), linear between frames; None outside."""
        z0, z1, tz = self.axis_weights(2, np.array([z_mm]))
        if np.isnan(tz[0]):
            return None
        t = float(tz[0])
        return self.dose_gy[z0[0]] * np.float32(1 - t) + self.dose_gy[z1[0]] * np.float32(t)

    # ----------------------------------------------------------------- transformations
    def scaled(self, factor: float, reason: str, summation_type: str | None = None) -> DoseGrid:
        """A copy with the dose multiplied by ``factor``; ``reason`` is recorded in the history."""
        return replace(
            self,
            dose_gy=self.dose_gy * np.float32(factor),
            summation_type=summation_type or self.summation_type,
            history=(*self.history, f"scaled × {factor:g}: {reason}"),
        )

    def same_geometry(self, other: DoseGrid) -> bool:
        """Whether both grids have the same nodes (within 0.01 mm)."""
        return self.shape == other.shape and all(
            np.allclose(a, b, atol=0.01)
            for a, b in ((self.x_mm, other.x_mm), (self.y_mm, other.y_mm), (self.z_mm, other.z_mm))
        )

    def resampled_like(self, target: DoseGrid) -> np.ndarray:
        """This dose trilinearly resampled onto ``target``'s nodes (Gy); 0 where undefined here."""
        zz, yy, xx = np.meshgrid(target.z_mm, target.y_mm, target.x_mm, indexing="ij")
        values = self.dose_at(np.column_stack([xx.ravel(), yy.ravel(), zz.ravel()]))
        return np.nan_to_num(values, nan=0.0).reshape(target.shape).astype(np.float32)


def sum_doses(grids: Sequence[DoseGrid]) -> DoseGrid:
    """Sum doses (e.g. the BEAM doses of one plan) onto the first grid's nodes.

    Parameters
    ----------
    grids : sequence of DoseGrid
        Doses in the same Frame of Reference and of the same Dose Type.

    Returns
    -------
    DoseGrid
        The summed dose; its history names every part and any resampling. A grid on other nodes is
        resampled trilinearly; where it defines no dose it contributes 0 Gy.

    Raises
    ------
    ValueError
        With no grids, or grids from different Frames of Reference or of different Dose Types.
    """
    if not grids:
        raise ValueError("no dose grids to sum")
    first = grids[0]
    if len(grids) == 1:
        return first
    for g in grids[1:]:
        if g.frame_of_reference_uid != first.frame_of_reference_uid:
            raise ValueError(
                f"cannot sum RTDOSE {g.sop_instance_uid} (frame of reference "
                f"{g.frame_of_reference_uid}) with {first.sop_instance_uid} "
                f"({first.frame_of_reference_uid})"
            )
        if g.dose_type != first.dose_type:
            raise ValueError(f"cannot sum a {g.dose_type} dose with a {first.dose_type} dose")
    total = first.dose_gy.astype(np.float32).copy()
    steps = []
    for g in grids[1:]:
        if g.same_geometry(first):
            total += g.dose_gy
        else:
            total += g.resampled_like(first)
            steps.append(f"RTDOSE {g.sop_instance_uid} resampled (trilinear) onto the first grid")
    kinds = sorted({g.summation_type for g in grids})
    beams = tuple(sorted({b for g in grids for b in g.referenced_beam_numbers}))
    summation = "PLAN" if kinds == ["BEAM"] else ("FRACTION" if kinds == ["BEAM_SESSION"] else kinds[0])
    parts = ", ".join(g.sop_instance_uid for g in grids)
    beam_text = f" (beams {', '.join(map(str, beams))})" if beams else ""
    return replace(
        first,
        dose_gy=total,
        summation_type=summation,
        referenced_beam_numbers=beams,
        history=(*steps, f"summed {len(grids)} {'/'.join(kinds)} doses{beam_text}: {parts}"),
    )


def planned_fractions(plan: Dataset, fraction_group: int | None = None) -> int:
    """Number of Fractions Planned of an RT (Ion) Plan.

    Parameters
    ----------
    plan : pydicom.dataset.Dataset
        The RTPLAN.
    fraction_group : int, optional
        The Fraction Group Number the dose refers to; default: the plan's only (or first) group.

    Raises
    ------
    ValueError
        If the plan has no fraction group (or not the one asked for) with a number of fractions.
    """
    groups = list(plan.get("FractionGroupSequence", []))
    if fraction_group is not None:
        groups = [g for g in groups if int(g.get("FractionGroupNumber", -1)) == fraction_group] or groups
    for g in groups:
        if g.get("NumberOfFractionsPlanned") not in (None, ""):
            return int(g.NumberOfFractionsPlanned)
    raise ValueError(f"RTPLAN {plan.get('SOPInstanceUID', '?')} states no Number of Fractions Planned")


def fraction_dose_looks_total(grid: DoseGrid, plan: Dataset) -> bool:
    """Whether a dose labelled per fraction holds more than 5× what the plan's beams give per fraction.

    Some exports label a whole-treatment dose ``FRACTION``; scaling it by the number of fractions would
    multiply it twice. The plan's Beam Dose values (Gy per fraction at each beam's dose point) give the
    order of magnitude of one fraction; a per-fraction maximum five times their sum is suspect.
    """
    if grid.summation_type not in PER_FRACTION_SUMMATIONS:
        return False
    groups = list(plan.get("FractionGroupSequence", []))
    if grid.referenced_fraction_group is not None:
        groups = [
            g for g in groups if g.get("FractionGroupNumber") == grid.referenced_fraction_group
        ] or groups
    beam_dose = sum(
        float(b.get("BeamDose") or 0) for b in (groups[0].get("ReferencedBeamSequence", []) if groups else [])
    )
    return beam_dose > 0 and grid.max_gy > 5 * beam_dose


def to_total_dose(grid: DoseGrid, fractions: int | None) -> DoseGrid:
    """Scale a per-fraction dose to the whole treatment; other doses are returned unchanged.

    Parameters
    ----------
    grid : DoseGrid
        A dose of any Dose Summation Type.
    fractions : int or None
        Planned number of fractions; None leaves a per-fraction dose per fraction.
    """
    if grid.summation_type not in PER_FRACTION_SUMMATIONS or not fractions:
        return grid
    total_type = "PLAN" if grid.summation_type in {"FRACTION", "FRACTION_SESSION"} else "BEAM"
    return grid.scaled(
        fractions, f"{grid.summation_type} dose × {fractions} planned fractions", summation_type=total_type
    )


def combine_plan_doses(grids: Sequence[DoseGrid], fractions: int | None = None) -> DoseGrid:
    """The whole-treatment dose of one plan from the RT Doses at hand.

    A plan dose (``PLAN``/``MULTI_PLAN``) is used as it is and any beam doses beside it are left out;
    otherwise beam or fraction doses are summed; per-fraction doses are scaled by ``fractions``.
    Each step is recorded in the result's history.

    Raises
    ------
    ValueError
        With no grids, several plan doses, or parts that cannot be summed.
    """
    if not grids:
        raise ValueError("no RTDOSE given")
    plan_doses = [g for g in grids if g.summation_type in PLAN_SUMMATIONS]
    if len(plan_doses) > 1:
        raise ValueError(
            f"{len(plan_doses)} plan doses given ("
            + ", ".join(g.sop_instance_uid for g in plan_doses)
            + "); pass one"
        )
    if plan_doses:
        chosen = plan_doses[0]
        others = [g for g in grids if g is not chosen]
        if others:
            chosen = replace(
                chosen,
                history=(
                    *chosen.history,
                    f"{len(others)} other dose(s) left out: the PLAN dose already contains them",
                ),
            )
        return to_total_dose(chosen, fractions)
    return to_total_dose(sum_doses([to_total_dose(g, fractions) for g in grids]), None)


# --------------------------------------------------------------------- helpers
def _rim(axis: np.ndarray, thickness: float | None) -> tuple[float, float]:
    if len(axis) > 1:
        return float(axis[1] - axis[0]) / 2, float(axis[-1] - axis[-2]) / 2
    half = (thickness or 0.0) / 2
    return half, half


def _axial_cosines(ds: Dataset, uid: str) -> tuple[np.ndarray, np.ndarray]:
    iop = np.array([float(v) for v in ds.ImageOrientationPatient], dtype=float)
    row, col = iop[:3], iop[3:]
    snapped_row, snapped_col = np.round(row), np.round(col)
    axial = (
        np.allclose(row, snapped_row, atol=_COSINE_TOLERANCE)
        and np.allclose(col, snapped_col, atol=_COSINE_TOLERANCE)
        and abs(snapped_row[2]) == 0
        and abs(snapped_col[2]) == 0
        and np.sum(np.abs(snapped_row)) == 1
        and np.sum(np.abs(snapped_col)) == 1
        and np.dot(snapped_row, snapped_col) == 0
    )
    if not axial:
        values = ", ".join(f"{v:g}" for v in iop)
        raise ValueError(
            f"RTDOSE {uid}: dose grid is not axial (ImageOrientationPatient [{values}]); "
            "only grids whose rows and columns follow the patient x and y axes are supported, "
            "resample oblique doses to an axial grid first"
        )
    return snapped_row, snapped_col


def _frames(ds: Dataset) -> int:
    frames = ds.get("NumberOfFrames")
    return int(frames) if frames not in (None, "") else 1


def _frame_z(ds: Dataset, ipp: np.ndarray, normal: np.ndarray, frames: int, uid: str) -> np.ndarray:
    """Frame z positions (mm): relative offsets along the plane normal, or absolute z (PS3.3 C.8.8.3.2)."""
    gfov = ds.get("GridFrameOffsetVector")
    if gfov is None or gfov == "":
        if frames > 1:
            raise ValueError(f"RTDOSE {uid}: {frames} frames but no Grid Frame Offset Vector")
        return np.array([ipp[2]])
    offsets = np.atleast_1d(np.array([float(v) for v in np.atleast_1d(gfov)], dtype=float))
    if len(offsets) != frames:
        raise ValueError(
            f"RTDOSE {uid}: Grid Frame Offset Vector has {len(offsets)} values for {frames} frames"
        )
    if offsets[0] == 0.0:
        z = ipp[2] + normal[2] * offsets
    else:
        if abs(offsets[0] - ipp[2]) > _POSITION_TOLERANCE_MM:
            raise ValueError(
                f"RTDOSE {uid}: Grid Frame Offset Vector starts at {offsets[0]:g} mm, neither 0 "
                f"(relative) nor the Image Position z {ipp[2]:g} mm (absolute)"
            )
        z = offsets.copy()
    if len(np.unique(np.round(z, 4))) != len(z):
        raise ValueError(f"RTDOSE {uid}: two frames at the same position in the Grid Frame Offset Vector")
    return z


def _increasing(dose: np.ndarray, coords: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(coords, kind="stable")
    if np.all(order == np.arange(len(coords))):
        return dose, coords.astype(float)
    return np.take(dose, order, axis=axis), coords[order].astype(float)


def _references(ds: Dataset) -> tuple[str, int | None, tuple[int, ...]]:
    plan_uid, group, beams = "", None, []
    for ref in ds.get("ReferencedRTPlanSequence", []):
        plan_uid = str(ref.get("ReferencedSOPInstanceUID", ""))
        for fg in ref.get("ReferencedFractionGroupSequence", []):
            if fg.get("ReferencedFractionGroupNumber") not in (None, ""):
                group = int(fg.ReferencedFractionGroupNumber)
            beams += [
                int(b.ReferencedBeamNumber)
                for b in fg.get("ReferencedBeamSequence", [])
                if b.get("ReferencedBeamNumber") not in (None, "")
            ]
    return plan_uid, group, tuple(beams)

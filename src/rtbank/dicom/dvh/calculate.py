"""DVHs of the ROIs of a structure set on a dose grid, and the metric report of each ROI.

Flags a result can carry (codes, stable for scripts and the database):

``empty``
    the ROI has no closed planar contour; no volume, no metrics.
``not_in_dose_grid`` / ``partially_in_dose_grid``
    none / only part of the ROI lies where the dose grid defines a dose. Metrics describe the covered
    part (``covered_volume_cc``); ``volume_cc`` is the whole contoured volume.
``frame_of_reference_mismatch``
    the ROI is drawn in another Frame of Reference than the dose; not calculated.
``contours_skipped``
    some contours were left out while reading (open, degenerate, non-axial; see ``notes``).
``crossing_contours``
    on some plane the contours cross each other; the even-odd area was used.
``slice_thickness_assumed``
    a single-plane ROI in a structure set without slice spacing: the dose grid's z spacing was used.
``per_fraction_dose``
    the dose is for one fraction (the number of fractions was not known).
``per_fraction_dose_suspect`` (added by ``rtbank dvh``)
    a dose labelled per fraction holds more than 5× the plan's Beam Dose per fraction: the file may
    hold the whole treatment, and scaling it by the fractions would count them twice.
``undefined:<metric>``
    that metric has no value: e.g. ``D0.03cc`` of a ROI smaller than 0.03 cm³, or an ``EQD2:`` metric
    without α/β for the ROI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtbank.dicom.contours import Roi, StructureSet
from rtbank.dicom.dosegrid import PER_FRACTION_SUMMATIONS, DoseGrid
from rtbank.dicom.dvh.histogram import DoseVolumeHistogram
from rtbank.dicom.dvh.metrics import DEFAULT_METRICS, MetricSpec, alpha_beta_for, convert, evaluate
from rtbank.dicom.dvh.sampling import DEFAULT_TARGET_SAMPLES, Resolution, choose_resolution, sample_slabs
from rtbank.dicom.dvh.version import ENGINE_VERSION


@dataclass(frozen=True)
class RoiDvh:
    """The DVH of one ROI.

    Attributes
    ----------
    roi : Roi
    volume_cc : float
        Contoured volume of the slab model (cm³).
    covered_volume_cc : float
        Part of it inside the dose grid (cm³); the histogram's 100 %.
    histogram : DoseVolumeHistogram
        Empty when nothing is covered.
    flags : tuple of str
        Codes from this module's docstring.
    notes : tuple of str
        Human-readable details behind the flags.
    resolution : Resolution or None
        Sampling lattice used.
    """

    roi: Roi
    volume_cc: float
    covered_volume_cc: float
    histogram: DoseVolumeHistogram
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    resolution: Resolution | None = None

    def metrics(
        self,
        specs: Sequence[MetricSpec] = DEFAULT_METRICS,
        *,
        fractions: int | None = None,
        alpha_beta: Mapping[str, float] | None = None,
    ) -> tuple[dict[str, float | None], list[str]]:
        """Metric values by canonical name (Gy, %, cc; None when undefined) and the ``undefined:`` flags.

        Parameters
        ----------
        specs : sequence of MetricSpec
        fractions : int, optional
            Number of fractions, for ``EQD2:``/``BED:`` metrics.
        alpha_beta : mapping, optional
            α/β in Gy by ROI name or pattern (see :func:`~rtbank.dicom.dvh.metrics.alpha_beta_for`).
        """
        ab = alpha_beta_for(self.roi.name, alpha_beta or {})
        values: dict[str, float | None] = {}
        flags = []
        for spec in specs:
            hist = convert(self.histogram, spec.quantity, fractions, ab)
            value = evaluate(spec, hist) if hist is not None else math.nan
            values[spec.name] = None if math.isnan(value) else value
            if math.isnan(value) and not self.histogram.is_empty:
                flags.append(f"undefined:{spec.name}")
        return values, flags


def check_frame_of_reference(structure_set: StructureSet, grid: DoseGrid) -> None:
    """Refuse a dose that is not in the structure set's Frame of Reference (or not in Gy).

    Raises
    ------
    ValueError
        Naming both Frames of Reference, when both are known and differ.
    """
    if grid.units != "GY":
        raise ValueError(f"RTDOSE {grid.sop_instance_uid}: Dose Units {grid.units}; DVH metrics need GY")
    ours = set(structure_set.frame_of_reference_uids)
    if grid.frame_of_reference_uid and ours and grid.frame_of_reference_uid not in ours:
        raise ValueError(
            f"frame of reference mismatch: RTSTRUCT {structure_set.sop_instance_uid} is in "
            f"{', '.join(sorted(ours))} but RTDOSE {grid.sop_instance_uid} is in "
            f"{grid.frame_of_reference_uid}; register the dose to the structure set first"
        )


def dvh_for_roi(
    structure_set: StructureSet,
    roi: Roi | int | str,
    grid: DoseGrid,
    *,
    target_samples: int = DEFAULT_TARGET_SAMPLES,
) -> RoiDvh:
    """The DVH of one ROI of ``structure_set`` on ``grid``.

    Parameters
    ----------
    structure_set : StructureSet
    roi : Roi, int or str
        The ROI, its number or its name.
    grid : DoseGrid
        Dose in Gy, same Frame of Reference (checked per ROI when the ROI names one).
    target_samples : int
        About how many dose samples the ROI gets (accuracy against time).
    """
    roi = roi if isinstance(roi, Roi) else structure_set.roi(roi)
    flags, notes = [], list(roi.notes)
    if roi.notes:
        flags.append("contours_skipped")
    if grid.summation_type in PER_FRACTION_SUMMATIONS:
        flags.append("per_fraction_dose")
    empty = DoseVolumeHistogram(np.zeros(0), np.zeros(0))
    if (
        roi.frame_of_reference_uid
        and grid.frame_of_reference_uid
        and roi.frame_of_reference_uid != grid.frame_of_reference_uid
    ):
        return RoiDvh(roi, math.nan, math.nan, empty, (*flags, "frame_of_reference_mismatch"), tuple(notes))
    if roi.is_empty:
        return RoiDvh(roi, 0.0, 0.0, empty, (*flags, "empty"), tuple(notes))
    try:
        slabs = structure_set.slabs(roi)
    except ValueError:
        thickness = grid.spacing_mm[2] or 3.0
        slabs = structure_set.slabs(roi, default_thickness_mm=thickness)
        flags.append("slice_thickness_assumed")
        notes.append(f"single plane: slab thickness {thickness:g} mm assumed from the dose grid")
    volume_mm3 = sum(s.plane.area_mm2 * s.thickness_mm for s in slabs)
    resolution = choose_resolution(volume_mm3, grid, target_samples)
    samples = sample_slabs(slabs, grid, resolution)
    if samples.notes:
        flags.append("crossing_contours")
        notes.extend(samples.notes)
    covered = samples.covered_mm3
    total = covered + samples.uncovered_mm3
    if total > 0 and samples.uncovered_mm3 > 0:
        flags.append("not_in_dose_grid" if covered == 0 else "partially_in_dose_grid")
    hist = DoseVolumeHistogram.from_samples(
        samples.dose_gy, samples.volume_mm3, samples.spread_gy, samples.boundary_range_gy
    )
    return RoiDvh(roi, total / 1000, covered / 1000, hist, tuple(flags), tuple(notes), resolution)


def dvhs_for_structure_set(
    structure_set: StructureSet,
    grid: DoseGrid,
    rois: Sequence[Roi] | None = None,
    *,
    target_samples: int = DEFAULT_TARGET_SAMPLES,
) -> list[RoiDvh]:
    """DVHs of ``rois`` (default: every ROI with contours) after checking the Frame of Reference."""
    check_frame_of_reference(structure_set, grid)
    chosen = rois if rois is not None else [r for r in structure_set.rois if not r.is_empty]
    return [dvh_for_roi(structure_set, r, grid, target_samples=target_samples) for r in chosen]


def report(
    result: RoiDvh,
    grid: DoseGrid,
    specs: Sequence[MetricSpec] = DEFAULT_METRICS,
    *,
    fractions: int | None = None,
    alpha_beta: Mapping[str, float] | None = None,
    digits: int = 4,
) -> dict[str, Any]:
    """One ROI's result as plain data (the ``rtbank dvh --json`` object).

    Keys: ``roi``, ``number``, ``type``, ``volume_cc``, ``covered_volume_cc``, ``metrics`` (by canonical
    name: Gy, % or cc; null when undefined), ``flags``, ``notes``, ``dose_summation``, ``dose_type``,
    ``dose_steps``, ``fractions``, ``engine_version``.
    """
    values, metric_flags = result.metrics(specs, fractions=fractions, alpha_beta=alpha_beta)
    return {
        "roi": result.roi.name,
        "number": result.roi.number,
        "type": result.roi.interpreted_type,
        "volume_cc": _round(result.volume_cc, digits),
        "covered_volume_cc": _round(result.covered_volume_cc, digits),
        "metrics": {name: _round(v, digits) for name, v in values.items()},
        "flags": [*result.flags, *metric_flags],
        "notes": list(result.notes),
        "dose_summation": grid.summation_type,
        "dose_type": grid.dose_type,
        "dose_steps": list(grid.history),
        "fractions": fractions,
        "engine_version": ENGINE_VERSION,
    }


def _round(value: float | None, digits: int) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(float(value), digits)

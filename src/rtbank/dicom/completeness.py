"""Is an image series, and an RT dataset, complete? Pure functions over plain geometry and facts.

Image series (CT, MR, PET)
--------------------------
Slices are ordered by their position along the slice normal (row direction × column direction of
Image Orientation (Patient)), never by Instance Number, which scanners and exports renumber freely.
Then, with ``s`` the median distance between neighbouring distinct positions:

``gap``
    two neighbours more than 1.5 × ``s`` apart (slices are probably missing; the estimate is
    ``round(distance / s) − 1``);
``duplicate_position``
    two slices at the same position along the normal (within 0.05 mm, or 1 % of ``s``);
``inconsistent_orientation`` / ``inconsistent_matrix`` / ``inconsistent_pixel_spacing``
    slices whose orientation (beyond 0.001 in a direction cosine), rows × columns or pixel spacing
    (beyond 0.001 mm) differ from the first slice's;
``misaligned``
    slices not stacked on one axis: their positions in the image plane differ by more than 0.1 mm
    (gantry tilt, shifted reconstructions);
``no_geometry``
    some slice lacks Image Position or Image Orientation (Patient): the series cannot be checked.

RT datasets
-----------
:func:`check_rt_dataset` flags a plan without its structure set, dose, planning images or referenced
images, and targets the dose grid does not cover; :func:`records_without_plan` finds treatment records
that point to a plan that is not there. Flags are stable codes (for the database and for filters).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

GAP_FACTOR = 1.5
DUPLICATE_TOLERANCE_MM = 0.05
COSINE_TOLERANCE = 1e-3
SPACING_TOLERANCE_MM = 1e-3
IN_PLANE_TOLERANCE_MM = 0.1
TARGET_TYPES = frozenset({"PTV", "CTV", "GTV"})


class SeriesFlag(StrEnum):
    NO_GEOMETRY = "no_geometry"
    GAP = "gap"
    DUPLICATE = "duplicate_position"
    ORIENTATION = "inconsistent_orientation"
    MATRIX = "inconsistent_matrix"
    PIXEL_SPACING = "inconsistent_pixel_spacing"
    MISALIGNED = "misaligned"


@dataclass(frozen=True)
class SliceGeometry:
    """What the check needs of one image (patient coordinates, mm)."""

    uid: str
    position_mm: Sequence[float] | None
    orientation: Sequence[float] | None
    pixel_spacing_mm: Sequence[float] | None = None
    rows: int | None = None
    columns: int | None = None


@dataclass(frozen=True)
class Gap:
    """Neighbouring slices too far apart: ``after_uid`` at ``from_mm``, ``before_uid`` at ``to_mm``."""

    after_uid: str
    before_uid: str
    from_mm: float
    to_mm: float
    missing: int  # estimated number of missing slices

    def to_dict(self) -> dict[str, object]:
        return {
            "after": self.after_uid,
            "before": self.before_uid,
            "from_mm": round(self.from_mm, 3),
            "to_mm": round(self.to_mm, 3),
            "missing": self.missing,
        }


@dataclass(frozen=True)
class SeriesReport:
    """The result of :func:`check_image_series`.

    Attributes
    ----------
    ordered_uids : tuple of str
        The slices along the normal (increasing position); slices without geometry are left out.
    positions_mm : tuple of float
        Their positions along the normal.
    median_spacing_mm : float or None
        Median distance between neighbouring distinct positions (None with fewer than two).
    """

    slices: int
    ordered_uids: tuple[str, ...] = ()
    positions_mm: tuple[float, ...] = ()
    median_spacing_mm: float | None = None
    gaps: tuple[Gap, ...] = ()
    duplicates: tuple[tuple[str, str], ...] = ()
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.flags

    @property
    def missing_slices(self) -> int:
        return sum(g.missing for g in self.gaps)


def slice_normal(orientation: Sequence[float]) -> np.ndarray:
    """Unit normal (row direction × column direction) of an Image Orientation (Patient).

    Raises
    ------
    ValueError
        When the orientation does not have six values or its directions are parallel.
    """
    values = np.asarray(orientation, dtype=float)
    if values.shape != (6,):
        raise ValueError(f"Image Orientation (Patient) needs 6 values, got {len(values)}")
    normal = np.cross(values[:3], values[3:])
    length = float(np.linalg.norm(normal))
    if length < 1e-6:
        raise ValueError("Image Orientation (Patient) has parallel row and column directions")
    return normal / length


def check_image_series(slices: Sequence[SliceGeometry], *, gap_factor: float = GAP_FACTOR) -> SeriesReport:
    """Order ``slices`` along the slice normal and flag gaps, duplicates and inconsistent geometry."""
    usable = [s for s in slices if _has_geometry(s)]
    flags: list[str] = []
    notes: list[str] = []
    if len(usable) < len(slices):
        flags.append(SeriesFlag.NO_GEOMETRY)
        notes.append(f"{len(slices) - len(usable)} of {len(slices)} slices have no position or orientation")
    if not usable:
        return SeriesReport(len(slices), flags=tuple(flags), notes=tuple(notes))
    reference = usable[0]
    try:
        normal = slice_normal(reference.orientation or ())
    except ValueError as exc:
        return SeriesReport(len(slices), flags=(*flags, SeriesFlag.NO_GEOMETRY), notes=(*notes, str(exc)))
    flags += _inconsistencies(usable, reference, normal, notes)
    positions = np.array([float(np.dot(np.asarray(s.position_mm, dtype=float), normal)) for s in usable])
    order = np.argsort(positions, kind="stable")
    uids = tuple(usable[i].uid for i in order)
    z = positions[order]
    duplicates, gaps, median = _spacing(uids, z, gap_factor)
    if duplicates:
        flags.append(SeriesFlag.DUPLICATE)
        notes.append(f"{len(duplicates)} slice(s) at an already occupied position")
    if gaps:
        flags.append(SeriesFlag.GAP)
        notes.append(
            f"{len(gaps)} gap(s) wider than {gap_factor:g} × the median spacing {median:.3g} mm "
            f"(about {sum(g.missing for g in gaps)} slice(s) missing)"
        )
    return SeriesReport(
        len(slices),
        uids,
        tuple(float(v) for v in z),
        median,
        tuple(gaps),
        tuple(duplicates),
        tuple(dict.fromkeys(flags)),
        tuple(notes),
    )


def _has_geometry(s: SliceGeometry) -> bool:
    return (
        s.position_mm is not None
        and len(s.position_mm) == 3
        and s.orientation is not None
        and len(s.orientation) == 6
    )


def _inconsistencies(
    usable: list[SliceGeometry], reference: SliceGeometry, normal: np.ndarray, notes: list[str]
) -> list[str]:
    flags: list[str] = []
    ref_orientation = np.asarray(reference.orientation, dtype=float)
    odd = [
        s
        for s in usable
        if np.max(np.abs(np.asarray(s.orientation, dtype=float) - ref_orientation)) > COSINE_TOLERANCE
    ]
    if odd:
        flags.append(SeriesFlag.ORIENTATION)
        notes.append(f"{len(odd)} slice(s) oriented differently from slice {reference.uid}")
    if len({(s.rows, s.columns) for s in usable}) > 1:
        flags.append(SeriesFlag.MATRIX)
        notes.append("slices of different rows × columns")
    spacings = [np.asarray(s.pixel_spacing_mm, dtype=float) for s in usable if s.pixel_spacing_mm is not None]
    if spacings and any(
        len(sp) != len(spacings[0]) or np.max(np.abs(sp - spacings[0])) > SPACING_TOLERANCE_MM
        for sp in spacings
    ):
        flags.append(SeriesFlag.PIXEL_SPACING)
        notes.append("slices of different pixel spacing")
    in_plane = np.array([np.asarray(s.position_mm, dtype=float) for s in usable])
    in_plane = in_plane - np.outer(in_plane @ normal, normal)  # remove the component along the normal
    spread = float(np.max(np.ptp(in_plane, axis=0))) if len(in_plane) > 1 else 0.0
    if spread > IN_PLANE_TOLERANCE_MM:
        flags.append(SeriesFlag.MISALIGNED)
        notes.append(f"slice positions differ by {spread:.3g} mm within the image plane (not one stack)")
    return flags


def _spacing(
    uids: tuple[str, ...], z: np.ndarray, gap_factor: float
) -> tuple[list[tuple[str, str]], list[Gap], float | None]:
    steps = np.diff(z)
    distinct = steps[steps > DUPLICATE_TOLERANCE_MM]
    median = float(np.median(distinct)) if len(distinct) else None
    tolerance = max(DUPLICATE_TOLERANCE_MM, 0.01 * median) if median else DUPLICATE_TOLERANCE_MM
    duplicates = [(uids[i], uids[i + 1]) for i, step in enumerate(steps) if step <= tolerance]
    gaps = []
    if median:
        for i, step in enumerate(steps):
            if step > gap_factor * median:
                gaps.append(
                    Gap(
                        uids[i],
                        uids[i + 1],
                        float(z[i]),
                        float(z[i + 1]),
                        max(int(round(step / median)) - 1, 1),
                    )
                )
    return duplicates, gaps, median


# ------------------------------------------------------------------------------------------ RT datasets
class DatasetFlag(StrEnum):
    NO_STRUCTURE_SET = "no_structure_set"  # the plan references none
    STRUCTURE_SET_MISSING = "structure_set_missing"  # referenced, not received
    NO_DOSE = "no_dose"
    NO_PLANNING_IMAGES = "no_planning_images"
    REFERENCED_IMAGES_MISSING = "referenced_images_missing"
    PLANNING_IMAGES_INCOMPLETE = "planning_images_incomplete"  # the planning series has gaps, duplicates …
    TARGET_NOT_COVERED = "target_not_covered"  # a target lies (partly) outside the dose grid
    RECORD_WITHOUT_PLAN = "record_without_plan"


@dataclass(frozen=True)
class RtDatasetFacts:
    """What is known of one plan's dataset.

    Attributes
    ----------
    structure_set_referenced, structure_set_present : bool
    dose_present : bool
    planning_images_present : bool
    referenced_images_missing : int
        Images the structure set's contours reference that are not there.
    planning_series_complete : bool or None
        The planning series' own check (None when unknown).
    uncovered_targets : tuple of str or None
        Target ROIs the dose grid does not (fully) cover; None when no DVH was computed yet.
    needs_patient_data : bool
        False for machine QA plans, which have no patient images, structures or dose to expect.
    """

    structure_set_referenced: bool
    structure_set_present: bool
    dose_present: bool
    planning_images_present: bool
    referenced_images_missing: int = 0
    planning_series_complete: bool | None = None
    uncovered_targets: tuple[str, ...] | None = None
    needs_patient_data: bool = True
    notes: list[str] = field(default_factory=list)


def check_rt_dataset(facts: RtDatasetFacts) -> list[str]:
    """The :class:`DatasetFlag` codes of one plan's dataset (empty: complete)."""
    if not facts.needs_patient_data:
        return []
    flags = []
    if not facts.structure_set_referenced:
        flags.append(DatasetFlag.NO_STRUCTURE_SET)
    elif not facts.structure_set_present:
        flags.append(DatasetFlag.STRUCTURE_SET_MISSING)
    if not facts.dose_present:
        flags.append(DatasetFlag.NO_DOSE)
    if facts.structure_set_present and not facts.planning_images_present:
        flags.append(DatasetFlag.NO_PLANNING_IMAGES)
    if facts.referenced_images_missing:
        flags.append(DatasetFlag.REFERENCED_IMAGES_MISSING)
    if facts.planning_images_present and facts.planning_series_complete is False:
        flags.append(DatasetFlag.PLANNING_IMAGES_INCOMPLETE)
    if facts.uncovered_targets:
        flags.append(DatasetFlag.TARGET_NOT_COVERED)
    return [str(f) for f in flags]


def is_target(name: str, interpreted_type: str = "") -> bool:
    """A PTV, CTV or GTV: by RT ROI Interpreted Type, or by a name starting with one of them."""
    if interpreted_type.strip().upper() in TARGET_TYPES:
        return True
    return name.strip().upper()[:3] in TARGET_TYPES


def records_without_plan(record_plans: Mapping[str, str], present_plans: Iterable[str]) -> list[str]:
    """Treatment records (by UID) whose referenced plan is not among ``present_plans`` (sorted).

    ``record_plans`` maps each record's SOP Instance UID to the plan UID it references ("" for none;
    a record that references no plan is not counted here).
    """
    present = set(present_plans)
    return sorted(uid for uid, plan in record_plans.items() if plan and plan not in present)

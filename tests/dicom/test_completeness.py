"""Completeness: image series ordered along the slice normal with gaps, duplicates and geometry flagged;
RT datasets flagged for missing parts."""

from __future__ import annotations

import numpy as np
import pytest

from rtbank.dicom.completeness import (
    DatasetFlag,
    RtDatasetFacts,
    SeriesFlag,
    SliceGeometry,
    check_image_series,
    check_rt_dataset,
    is_target,
    records_without_plan,
    slice_normal,
)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def stack(zs, *, orientation=AXIAL, origin=(-250.0, -250.0), spacing=(1.0, 1.0), size=(512, 512)):
    """Axial slices at ``zs`` (mm), numbered in reverse so Instance Number order would be wrong."""
    return [
        SliceGeometry(f"uid{i}", (origin[0], origin[1], float(z)), orientation, spacing, *size)
        for i, z in enumerate(zs)
    ]


def test_a_regular_series_is_complete_and_ordered_by_position_not_by_number() -> None:
    zs = [6.0, 0.0, 9.0, 3.0, 12.0]
    report = check_image_series(stack(zs))
    assert report.complete and report.flags == ()
    assert report.ordered_uids == ("uid1", "uid3", "uid0", "uid2", "uid4")
    assert report.positions_mm == (0.0, 3.0, 6.0, 9.0, 12.0)
    assert report.median_spacing_mm == pytest.approx(3.0)


def test_a_missing_slice_is_a_gap_with_an_estimate_of_what_is_missing() -> None:
    zs = [0, 3, 6, 15, 18, 21, 24]  # 9 and 12 missing
    report = check_image_series(stack(zs))
    assert report.flags == (SeriesFlag.GAP,)
    (gap,) = report.gaps
    assert (gap.from_mm, gap.to_mm, gap.missing) == (6.0, 15.0, 2)
    assert report.missing_slices == 2


def test_a_spacing_up_to_one_and_a_half_times_the_median_is_no_gap() -> None:
    report = check_image_series(stack([0, 2, 4, 6, 9, 11, 13]))  # 3 mm = 1.5 × 2 mm
    assert SeriesFlag.GAP not in report.flags
    report = check_image_series(stack([0, 2, 4, 6, 9.2, 11.2, 13.2]))
    assert SeriesFlag.GAP in report.flags


def test_two_slices_at_one_position_are_duplicates() -> None:
    slices = stack([0, 3, 6, 9])
    slices.append(SliceGeometry("again", (-250.0, -250.0, 6.01), AXIAL, (1.0, 1.0), 512, 512))
    report = check_image_series(slices)
    assert report.flags == (SeriesFlag.DUPLICATE,)
    assert report.duplicates == (("uid2", "again"),)
    assert not report.gaps  # the median spacing ignores the duplicate


@pytest.mark.parametrize(
    "orientation",
    [
        (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0),  # head first prone: the normal is +z still
        (1.0, 0.0, 0.0, 0.0, -1.0, 0.0),  # a feet-first style flip: the normal is -z
    ],
)
def test_the_order_follows_the_normal_whatever_the_patient_position(orientation) -> None:
    report = check_image_series(stack([9.0, 0.0, 3.0, 6.0], orientation=orientation))
    normal = slice_normal(orientation)
    assert report.complete
    zs = [9.0, 0.0, 3.0, 6.0]
    expected = [f"uid{i}" for i in np.argsort([z * normal[2] for z in zs])]
    assert list(report.ordered_uids) == expected


def test_a_sagittal_series_is_ordered_along_x() -> None:
    sagittal = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # rows along y, columns along -z: normal along -x
    slices = [
        SliceGeometry(f"s{i}", (float(x), -100.0, 100.0), sagittal, (1.0, 1.0), 256, 256)
        for i, x in enumerate([4, 0, 8, 20, 12])
    ]
    report = check_image_series(slices)
    assert report.flags == (SeriesFlag.GAP,)  # 12 -> 20 with a 4 mm median
    assert report.ordered_uids[0] == "s3"  # largest x first: the normal points to -x


def test_inconsistent_geometry_is_flagged() -> None:
    slices = stack([0, 3, 6, 9])
    slices[2] = SliceGeometry("uid2", (-250.0, -250.0, 6.0), AXIAL, (0.9, 0.9), 512, 512)
    slices[3] = SliceGeometry("uid3", (-250.0, -250.0, 9.0), AXIAL, (1.0, 1.0), 256, 256)
    report = check_image_series(slices)
    assert set(report.flags) == {SeriesFlag.PIXEL_SPACING, SeriesFlag.MATRIX}


def test_a_tilted_slice_and_a_shifted_slice_are_flagged() -> None:
    tilted = (1.0, 0.0, 0.0, 0.0, 0.995, 0.0998)
    slices = stack([0, 3, 6, 9])
    slices[1] = SliceGeometry("uid1", (-250.0, -250.0, 3.0), tilted, (1.0, 1.0), 512, 512)
    assert SeriesFlag.ORIENTATION in check_image_series(slices).flags
    shifted = stack([0, 3, 6, 9])
    shifted[3] = SliceGeometry("uid3", (-245.0, -250.0, 9.0), AXIAL, (1.0, 1.0), 512, 512)
    report = check_image_series(shifted)
    assert report.flags == (SeriesFlag.MISALIGNED,)


def test_slices_without_position_cannot_be_checked() -> None:
    slices = stack([0, 3, 6])
    slices.append(SliceGeometry("nopos", None, AXIAL))
    report = check_image_series(slices)
    assert SeriesFlag.NO_GEOMETRY in report.flags and report.slices == 4 and len(report.ordered_uids) == 3
    assert check_image_series([SliceGeometry("x", None, None)]).flags == (SeriesFlag.NO_GEOMETRY,)


def test_a_single_slice_is_complete() -> None:
    report = check_image_series(stack([5.0]))
    assert report.complete and report.median_spacing_mm is None


COMPLETE = dict(
    structure_set_referenced=True,
    structure_set_present=True,
    dose_present=True,
    planning_images_present=True,
    planning_series_complete=True,
    uncovered_targets=(),
)


def test_a_complete_rt_dataset_has_no_flags() -> None:
    assert check_rt_dataset(RtDatasetFacts(**COMPLETE)) == []


@pytest.mark.parametrize(
    "change,flag",
    [
        ({"structure_set_referenced": False, "structure_set_present": False}, DatasetFlag.NO_STRUCTURE_SET),
        ({"structure_set_present": False}, DatasetFlag.STRUCTURE_SET_MISSING),
        ({"dose_present": False}, DatasetFlag.NO_DOSE),
        ({"planning_images_present": False}, DatasetFlag.NO_PLANNING_IMAGES),
        ({"referenced_images_missing": 1}, DatasetFlag.REFERENCED_IMAGES_MISSING),
        ({"planning_series_complete": False}, DatasetFlag.PLANNING_IMAGES_INCOMPLETE),
        ({"uncovered_targets": ("PTV_70",)}, DatasetFlag.TARGET_NOT_COVERED),
    ],
)
def test_each_missing_part_of_an_rt_dataset_is_flagged(change: dict, flag: DatasetFlag) -> None:
    assert check_rt_dataset(RtDatasetFacts(**{**COMPLETE, **change})) == [flag]


def test_machine_qa_plans_need_no_patient_data() -> None:
    facts = RtDatasetFacts(False, False, False, False, needs_patient_data=False)
    assert check_rt_dataset(facts) == []


def test_records_pointing_to_a_missing_plan_are_found() -> None:
    records = {"r1": "p1", "r2": "p2", "r3": "", "r4": "p2"}
    assert records_without_plan(records, ["p1"]) == ["r2", "r4"]


@pytest.mark.parametrize(
    "name,kind,expected",
    [
        ("PTV_70", "", True),
        ("ptv 50/25", "ORGAN", True),
        ("Boost", "PTV", True),
        ("GTVp", "", True),
        ("SpinalCord", "ORGAN", False),
        ("zPTV_ring", "CONTROL", False),
    ],
)
def test_targets_are_recognised_by_type_or_name(name: str, kind: str, expected: bool) -> None:
    assert is_target(name, kind) is expected

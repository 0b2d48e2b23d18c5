"""The engine's geometric rules on small exact cases: the half-open boundary, holes, coverage, tiny ROIs."""

from __future__ import annotations

import numpy as np
import pytest

from rtbank.dicom.contours import StructureSet
from rtbank.dicom.dosegrid import DoseGrid
from rtbank.dicom.dvh import check_frame_of_reference, dvh_for_roi, dvhs_for_structure_set, parse_metrics
from rtbank.dicom.dvh.phantoms import dose_dataset
from tests.dicom.test_contours import FOR_UID, square, structure_set

NODES = np.arange(-40.0, 40.1, 2.0)


def linear_grid(gx: float = 0.5, gy: float = -0.25, gz: float = 0.0, base: float = 30.0) -> DoseGrid:
    zz, yy, xx = np.meshgrid(NODES, NODES, NODES, indexing="ij")
    return DoseGrid.from_dataset(
        dose_dataset(base + gx * xx + gy * yy + gz * zz, NODES, NODES, NODES, FOR_UID)
    )


def box(x0: float, y0: float, size: float, z_planes: list[float]) -> list[tuple[str, list[float]]]:
    return [("CLOSED_PLANAR", square(x0, y0, size, z)) for z in z_planes]


def test_grid_aligned_edges_are_counted_once() -> None:
    """Edges on dose nodes (and so on lattice rows and cell borders): exact volume, mean and extremes,
    and two halves sharing an edge add up to the whole."""
    planes = [0.0, 2.0, 4.0, 6.0]
    rois = {
        "Whole": box(-10, -10, 20, planes),
        "Left": [("CLOSED_PLANAR", [-10, -10, z, 0, -10, z, 0, 10, z, -10, 10, z]) for z in planes],
        "Right": [("CLOSED_PLANAR", [0, -10, z, 10, -10, z, 10, 10, z, 0, 10, z]) for z in planes],
    }
    ss = StructureSet.from_dataset(structure_set(rois))
    grid = linear_grid()
    whole, left, right = (dvh_for_roi(ss, name, grid) for name in ("Whole", "Left", "Right"))
    assert whole.volume_cc == pytest.approx(20 * 20 * 8 / 1000)
    assert left.volume_cc + right.volume_cc == pytest.approx(whole.volume_cc)
    assert whole.histogram.mean_gy == pytest.approx(30.0)
    assert left.histogram.mean_gy == pytest.approx(30 - 2.5)
    assert whole.histogram.min_gy == pytest.approx(30 - 5 - 2.5)
    assert whole.histogram.max_gy == pytest.approx(30 + 5 + 2.5)
    # 1 Gy per 2 mm in x over 20 mm, 0.5 Gy per 2 mm in y: V(≥ 30 Gy) is exactly half
    assert whole.histogram.volume_pct_at_dose(30.0) == pytest.approx(50.0, abs=0.01)


def test_a_hole_removes_volume_and_dose() -> None:
    ring = [("CLOSED_PLANAR", square(-10, -10, 20, z)) for z in (0.0, 2.0)] + [
        ("CLOSED_PLANAR", square(0, -5, 10, z, clockwise=True)) for z in (0.0, 2.0)
    ]
    ss = StructureSet.from_dataset(structure_set({"Ring": ring}))
    result = dvh_for_roi(ss, "Ring", linear_grid(gx=1.0, gy=0.0))
    assert result.volume_cc == pytest.approx((400 - 100) * 4 / 1000)
    # centroid x of a 20×20 square minus the 10×10 square centred at x = 5: (0·400 − 5·100) / 300
    assert result.histogram.mean_gy == pytest.approx(30 + (-500 / 300))


def test_a_roi_partly_outside_the_dose_grid_is_flagged_and_reports_both_volumes() -> None:
    ss = StructureSet.from_dataset(structure_set({"Edge": box(21, -10, 40, [0.0, 2.0])}))
    result = dvh_for_roi(ss, "Edge", linear_grid())
    assert "partially_in_dose_grid" in result.flags
    assert result.volume_cc == pytest.approx(40 * 40 * 4 / 1000)
    # the grid's nodes end at x = 40; its outer half voxel reaches 41 mm
    assert result.covered_volume_cc == pytest.approx((41 - 21) * 40 * 4 / 1000)
    assert result.histogram.total_cc == pytest.approx(result.covered_volume_cc)


def test_a_roi_outside_the_dose_grid_has_no_metrics() -> None:
    ss = StructureSet.from_dataset(structure_set({"Far": box(100, 100, 10, [0.0, 2.0])}))
    result = dvh_for_roi(ss, "Far", linear_grid())
    values, _ = result.metrics(parse_metrics("Dmean,D95%,V20Gy[%]"))
    assert "not_in_dose_grid" in result.flags and result.covered_volume_cc == 0.0
    assert set(values.values()) == {None}


def test_a_roi_smaller_than_the_d_cc_volume_says_so() -> None:
    ss = StructureSet.from_dataset(structure_set({"Tiny": box(0, 0, 2, [0.0, 2.0])}))  # 0.016 cc
    result = dvh_for_roi(ss, "Tiny", linear_grid())
    values, flags = result.metrics(parse_metrics("D0.03cc,D0.01cc,D99%"))
    assert values["D0.03cc"] is None and flags == ["undefined:D0.03cc"]
    assert values["D0.01cc"] is not None and values["D99%"] > 0


def test_a_plane_smaller_than_a_sampling_cell_still_counts() -> None:
    speck = [("CLOSED_PLANAR", [0.01, 0.01, 0.0, 0.05, 0.01, 0.0, 0.05, 0.05, 0.0])]
    ss = StructureSet.from_dataset(structure_set({"Big": box(-20, -20, 40, [0.0, 2.0]), "Speck": speck}))
    result = dvh_for_roi(ss, "Speck", linear_grid())
    assert result.volume_cc == pytest.approx(0.5 * 0.04 * 0.04 * 2 / 1000)
    assert result.histogram.mean_gy == pytest.approx(30 + 0.5 * 0.0367 - 0.25 * 0.0233, abs=1e-3)


def test_crossing_contours_are_flagged_and_use_the_even_odd_area() -> None:
    bow_tie = [("CLOSED_PLANAR", [-10, -10, z, 10, 10, z, 10, -10, z, -10, 10, z]) for z in (0.0, 2.0)]
    ss = StructureSet.from_dataset(structure_set({"BowTie": bow_tie}))
    result = dvh_for_roi(ss, "BowTie", linear_grid())
    assert "crossing_contours" in result.flags
    assert result.volume_cc == pytest.approx(200 * 4 / 1000, rel=0.02)


def test_every_roi_is_refused_on_a_dose_from_another_frame_of_reference() -> None:
    ss = StructureSet.from_dataset(structure_set({"Box": box(0, 0, 10, [0.0])}))
    zz, yy, xx = np.meshgrid(NODES, NODES, NODES, indexing="ij")
    other = DoseGrid.from_dataset(dose_dataset(30 + 0 * xx, NODES, NODES, NODES, "1.2.3.4.5"))
    with pytest.raises(ValueError, match="frame of reference mismatch"):
        check_frame_of_reference(ss, other)
    with pytest.raises(ValueError, match="frame of reference mismatch"):
        dvhs_for_structure_set(ss, other)


def test_a_hole_cut_by_the_dose_grid_edge_keeps_its_nesting() -> None:
    ring = [("CLOSED_PLANAR", square(21, -20, 40, z)) for z in (0.0, 2.0)] + [
        ("CLOSED_PLANAR", square(36, -5, 10, z)) for z in (0.0, 2.0)
    ]
    ss = StructureSet.from_dataset(structure_set({"Ring": ring}))
    result = dvh_for_roi(ss, "Ring", linear_grid())
    assert result.volume_cc == pytest.approx((1600 - 100) * 4 / 1000)
    # inside the grid (x <= 41 mm): 20 × 40 of the square minus 5 × 10 of the hole
    assert result.covered_volume_cc == pytest.approx((800 - 50) * 4 / 1000)

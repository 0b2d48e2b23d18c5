"""Contour agreement metrics against shapes whose answers are known in closed form.

Spheres and cylinders are written as planar contours (many-sided polygons on axial planes), exactly as a
planning system would, so the slab model and the rasteriser are tested together. The expected values are
computed here from geometry, independently of the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtbank.dicom.contour_metrics import (
    Grid,
    common_grid,
    compare_masks,
    compare_rois,
    fill_plane,
    majority,
    rasterise,
    slabs_of,
)
from rtbank.dicom.contours import ContourPlane, Roi

SIDES = 256


def circle(cx: float, cy: float, r: float) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, SIDES, endpoint=False)
    return np.column_stack([cx + r * np.cos(angles), cy + r * np.sin(angles)])


def sphere(radius: float, centre: tuple[float, float, float] = (0, 0, 0), dz: float = 1.0) -> Roi:
    cx, cy, cz = centre
    planes = []
    for k in range(-int(radius // dz), int(radius // dz) + 1):
        z = k * dz
        r = math.sqrt(max(radius**2 - z**2, 0.0))
        if r > 0.2:
            planes.append(ContourPlane(cz + z, (circle(cx, cy, r),)))
    return Roi(1, "sphere", planes=tuple(planes))


def cylinder(
    radius: float, z0: float, planes: int, dz: float = 2.0, cx: float = 0.0, hole: float = 0.0
) -> Roi:
    contours = (circle(cx, 0, radius),) + ((circle(cx, 0, hole),) if hole else ())
    return Roi(2, "cylinder", planes=tuple(ContourPlane(z0 + k * dz, contours) for k in range(planes)))


def test_identical_delineations_agree_exactly() -> None:
    roi = sphere(15, (3, -2, 10), dz=2.5)
    result = compare_rois(roi, roi)
    assert result.dice == 1.0
    assert result.hausdorff95_mm == 0.0
    assert result.mean_surface_distance_mm == 0.0
    assert result.volume_ratio == 1.0


def test_concentric_spheres_differ_by_the_radius_difference_everywhere() -> None:
    inner, outer = 20.0, 23.0
    result = compare_rois(sphere(outer), sphere(inner))
    assert result.dice == pytest.approx(2 * inner**3 / (inner**3 + outer**3), abs=0.01)
    assert result.volume_ratio == pytest.approx((outer / inner) ** 3, rel=0.02)
    # every point of one surface is exactly 3 mm from the other: within one voxel of the grid
    assert result.mean_surface_distance_mm == pytest.approx(outer - inner, abs=result.spacing_mm)
    assert result.hausdorff95_mm == pytest.approx(outer - inner, abs=result.spacing_mm)


def _offset_sphere_distances(radius: float, d: float) -> np.ndarray:
    """Distance from each point of a sphere's surface to the same sphere moved by d (area-uniform sample).

    For a point at polar cosine t (uniform in [-1, 1] over the area), |p - c'| = sqrt(R² + d² - 2 R d t).
    """
    t = np.linspace(-1, 1, 200_001)
    return np.abs(np.sqrt(radius**2 + d**2 - 2 * radius * d * t) - radius)


def test_two_offset_spheres_match_the_lens_volume_and_surface_distances() -> None:
    radius, d = 20.0, 6.0
    result = compare_rois(sphere(radius, (d, 0, 0)), sphere(radius))
    lens = math.pi * (4 * radius + d) * (2 * radius - d) ** 2 / 12
    assert result.dice == pytest.approx(lens / (4 / 3 * math.pi * radius**3), abs=0.01)
    distances = _offset_sphere_distances(radius, d)
    assert result.mean_surface_distance_mm == pytest.approx(distances.mean(), abs=0.5)
    assert result.hausdorff95_mm == pytest.approx(np.percentile(distances, 95), abs=0.6)
    assert result.volume_ratio == pytest.approx(1.0, abs=0.01)


def test_cylinders_shifted_along_their_axis_overlap_by_the_remaining_height() -> None:
    planes, dz, shift_planes = 21, 2.0, 2
    reference = cylinder(15, 0.0, planes, dz)
    moved = cylinder(15, shift_planes * dz, planes, dz)
    result = compare_rois(moved, reference)
    height = planes * dz  # slabs with half-slice end caps
    assert result.dice == pytest.approx((height - shift_planes * dz) / height, abs=0.005)
    # the flat ends moved by 4 mm, the side wall not at all
    assert 0 < result.mean_surface_distance_mm < shift_planes * dz
    assert result.hausdorff95_mm == pytest.approx(shift_planes * dz, abs=result.spacing_mm)


def test_cylinders_shifted_sideways_overlap_by_the_lens_area() -> None:
    radius, d = 15.0, 5.0
    result = compare_rois(cylinder(radius, 0, 15, cx=d), cylinder(radius, 0, 15))
    lens = 2 * radius**2 * math.acos(d / (2 * radius)) - d / 2 * math.sqrt(4 * radius**2 - d**2)
    assert result.dice == pytest.approx(lens / (math.pi * radius**2), abs=0.005)
    assert result.hausdorff95_mm <= d + result.spacing_mm


def test_a_hole_is_left_out_of_the_volume() -> None:
    ring = cylinder(20, 0, 10, hole=10)
    disk = cylinder(20, 0, 10)
    result = compare_rois(ring, disk)
    ring_area, disk_area = math.pi * (20**2 - 10**2), math.pi * 20**2
    assert result.dice == pytest.approx(2 * ring_area / (ring_area + disk_area), abs=0.01)
    assert result.volume_ratio == pytest.approx(ring_area / disk_area, rel=0.01)


def test_an_empty_delineation_scores_zero_and_has_no_distance() -> None:
    reference = cylinder(10, 0, 5)
    grid = common_grid([slabs_of(reference)])
    mask = rasterise(slabs_of(reference), grid)
    result = compare_masks(np.zeros_like(mask), mask, grid)
    assert result.dice == 0.0
    assert math.isnan(result.hausdorff95_mm) and math.isnan(result.mean_surface_distance_mm)
    assert result.volume_ratio == 0.0
    with pytest.raises(ValueError, match="empty"):
        compare_rois(Roi(1, "a"), Roi(2, "b"))


def test_the_fill_follows_the_half_open_rule_on_grid_points() -> None:
    square = ContourPlane(0.0, (np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]]),))
    xs = ys = np.arange(-1.0, 6.0)
    mask = fill_plane(square, xs, ys)
    inside = {(float(x), float(y)) for j, y in enumerate(ys) for i, x in enumerate(xs) if mask[j, i]}
    # left and bottom edges inside, right and top edges outside (as points_in_polygon decides)
    assert inside == {(float(x), float(y)) for x in range(0, 4) for y in range(0, 4)}


def test_the_grid_is_coarsened_to_stay_under_the_voxel_budget() -> None:
    big = slabs_of(cylinder(200, 0, 100, dz=3.0))
    grid = common_grid([big], spacing_mm=0.5, max_voxels=500_000)
    assert math.prod(grid.shape) <= 500_000
    assert grid.spacing_mm > 0.5
    mask = rasterise(big, grid)
    assert mask.sum() * grid.voxel_cc == pytest.approx(math.pi * 200**2 * 300 / 1000, rel=0.03)


def test_majority_voting_keeps_voxels_most_delineations_share() -> None:
    grid = Grid((0.0, 0.0, 0.0), 1.0, (1, 1, 4))
    a = np.array([[[1, 1, 0, 0]]], dtype=bool)
    b = np.array([[[1, 0, 1, 0]]], dtype=bool)
    c = np.array([[[1, 1, 0, 1]]], dtype=bool)
    assert majority([a, b, c]).tolist() == [[[True, True, False, False]]]
    assert majority([a, b]).tolist() == [[[True, True, True, False]]], "ties (one of two) count as half"
    assert grid.voxel_cc == pytest.approx(0.001)
    with pytest.raises(ValueError):
        majority([])

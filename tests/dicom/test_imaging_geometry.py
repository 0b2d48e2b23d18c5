"""Viewer geometry without Django: volumes, planes, contours and isodose lines land where they should."""

from __future__ import annotations

import random

import numpy as np
import pytest
from pydicom.dataset import Dataset

from rtbank.dicom.contours import ContourPlane, Roi, StructureSet
from rtbank.dicom.dosegrid import DoseGrid
from rtbank.dicom.imaging import (
    ImageVolume,
    SeriesLayout,
    SliceGeometry,
    View,
    axial_contours,
    contour_tolerance_mm,
    dose_on_plane,
    extract,
    isodose_lines,
    nearest_index,
    plane,
    plane_count,
    section_contours,
    structure_set_slabs,
)
from tests.viewer.phantoms import BOX_HU, BOX_MM, ORIENTATIONS, ct_series

POSITIONS = sorted(ORIENTATIONS)


def box_roi(z_planes: np.ndarray, box: tuple[tuple[float, float], ...] = BOX_MM, number: int = 1) -> Roi:
    (x0, x1), (y0, y1), (z0, z1) = box
    square = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    planes = tuple(ContourPlane(float(z), (square,)) for z in z_planes if z0 <= z <= z1)
    return Roi(number, "PTV", "PTV", (255, 0, 0), planes=planes)


def bright_pixels(image: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    rows, cols = np.nonzero(image == BOX_HU)
    return (int(cols.min()), int(cols.max())), (int(rows.min()), int(rows.max()))


@pytest.mark.parametrize("position", POSITIONS)
def test_it_shows_every_patient_position_in_patient_coordinates(position: str) -> None:
    datasets = ct_series(position)
    random.Random(7).shuffle(datasets)  # file order means nothing
    volume = ImageVolume.from_datasets(datasets)
    assert volume.geometry.is_canonical
    assert np.all(np.diff(volume.geometry.k.positions_mm) > 0)
    k = nearest_index(volume.geometry, View.AXIAL, 0.0)
    target = plane(volume.geometry, View.AXIAL, k)
    assert target.u.step_mm > 0 and target.v.step_mm > 0  # +x to the right, +y (posterior) down
    (c0, c1), (r0, r1) = bright_pixels(extract(volume, target))
    # The box spans x 20..40, y -30..-10 mm; pixel centres are on odd mm (…, 19, 21, …, 39, 41).
    cols = target.to_pixel(np.array([[21.0, 0, 0], [39.0, 0, 0]]))[:, 0]
    rows = target.to_pixel(np.array([[0, -29.0, 0], [0, -11.0, 0]]))[:, 1]
    assert (c0, c1) == tuple(np.rint(cols).astype(int))
    assert (r0, r1) == tuple(np.rint(rows).astype(int))


@pytest.mark.parametrize("position", POSITIONS)
def test_a_contour_at_known_coordinates_lands_on_the_expected_pixels(position: str) -> None:
    volume = ImageVolume.from_datasets(ct_series(position))
    z = volume.geometry.k.positions_mm
    roi = box_roi(z)
    for k in np.nonzero((z >= BOX_MM[2][0]) & (z <= BOX_MM[2][1]))[0]:
        target = plane(volume.geometry, View.AXIAL, int(k))
        (polygon,) = axial_contours(roi, target.fixed_mm, contour_tolerance_mm(z, int(k)))
        pixels = target.to_pixel(np.column_stack([polygon, np.zeros(len(polygon))]))
        # The contour runs on the box edge: half a pixel outside the outermost bright pixel centres.
        (c0, c1), (r0, r1) = bright_pixels(extract(volume, target))
        assert pixels[:, 0].min() == pytest.approx(c0 - 0.5) and pixels[:, 0].max() == pytest.approx(c1 + 0.5)
        assert pixels[:, 1].min() == pytest.approx(r0 - 0.5) and pixels[:, 1].max() == pytest.approx(r1 + 0.5)


def test_slices_are_ordered_by_position_not_instance_number() -> None:
    datasets = ct_series("HFS")
    for n, ds in enumerate(datasets):
        ds.InstanceNumber = (n * 7) % len(datasets) + 1  # scrambled numbering
    volume = ImageVolume.from_datasets(datasets)
    zs = sorted(float(ds.ImagePositionPatient[2]) for ds in datasets)
    assert volume.geometry.k.positions_mm.tolist() == pytest.approx(zs)
    layout = volume.layout
    for k in range(len(zs)):  # single-file reads agree with the assembled volume
        ds = datasets[layout.order[layout.slice_position(k)]]
        assert float(ds.ImagePositionPatient[2]) == pytest.approx(zs[k])


@pytest.mark.parametrize("position", POSITIONS)
def test_a_single_slice_arranged_alone_equals_the_volume_slice(position: str) -> None:
    from rtbank.dicom.imaging import modality_pixels

    datasets = ct_series(position)
    volume = ImageVolume.from_datasets(datasets)
    layout = volume.layout
    for k in (0, 5, len(datasets) - 1):
        ds = datasets[layout.order[layout.slice_position(k)]]
        assert np.array_equal(layout.arrange_slice(modality_pixels(ds)), volume.voxels[k])


def test_the_layout_from_catalog_values_matches_the_files() -> None:
    datasets = ct_series("FFS")
    from_values = SeriesLayout.from_slices(
        [
            SliceGeometry.from_values(
                list(ds.ImagePositionPatient),
                list(ds.ImageOrientationPatient),
                list(ds.PixelSpacing),
                ds.Rows,
                ds.Columns,
            )
            for ds in datasets
        ]
    )
    from_files = ImageVolume.from_datasets(datasets).layout
    assert from_values.order == from_files.order
    for a, b in zip(
        (from_values.geometry.i, from_values.geometry.j, from_values.geometry.k),
        (from_files.geometry.i, from_files.geometry.j, from_files.geometry.k),
        strict=True,
    ):
        assert np.allclose(a.positions_mm, b.positions_mm)


def test_a_lost_slice_leaves_a_gap_and_reconstructions_bridge_it() -> None:
    datasets = ct_series("HFS")
    del datasets[7]
    volume = ImageVolume.from_datasets(datasets)
    z = volume.geometry.k.positions_mm
    assert plane_count(volume.geometry, View.AXIAL) == len(datasets)
    assert np.max(np.diff(z)) == pytest.approx(6.0)
    coronal = plane(volume.geometry, View.CORONAL, nearest_index(volume.geometry, View.CORONAL, -20.0))
    assert coronal.v.step_mm == pytest.approx(-3.0)  # the median spacing, downwards
    assert coronal.v.count == int(round((z[-1] - z[0]) / 3.0)) + 1
    image = extract(volume, coronal)
    assert image.shape == coronal.shape


def test_a_localizer_in_the_series_is_left_out() -> None:
    datasets = ct_series("HFS")
    scout = ct_series("HFS", size=32)[0]
    scout.ImageOrientationPatient = ["1", "0", "0", "0", "0", "-1"]
    volume = ImageVolume.from_datasets([*datasets, scout])
    assert volume.voxels.shape[0] == len(datasets)
    assert any("left out" in note for note in volume.notes)


@pytest.mark.parametrize("view", [View.SAGITTAL, View.CORONAL])
@pytest.mark.parametrize("position", ["HFS", "FFP"])
def test_reconstructions_show_the_box_where_its_contour_outline_is(view: View, position: str) -> None:
    volume = ImageVolume.from_datasets(ct_series(position))
    geometry = volume.geometry
    z = geometry.k.positions_mm
    roi = box_roi(z)
    ss = StructureSet((roi,))
    slabs = structure_set_slabs(ss)[1]
    through = 31.0 if view == View.SAGITTAL else -19.0  # a pixel-centre line through the box
    target = plane(geometry, view, nearest_index(geometry, view, through))
    assert target.fixed_mm == pytest.approx(through)
    assert target.v.step_mm < 0  # superior at the top
    lines = section_contours(slabs, target)
    assert len(lines) == 1
    u_lo, u_hi = BOX_MM[1] if view == View.SAGITTAL else BOX_MM[0]
    points = lines[0]
    # Outline within half a pixel of the box edges along u and of the slab ends (end caps) along z.
    half_u = abs(target.u.step_mm) / 2
    assert points[:, 0].min() == pytest.approx(u_lo, abs=half_u + 1e-6)
    assert points[:, 0].max() == pytest.approx(u_hi, abs=half_u + 1e-6)
    half_v = abs(target.v.step_mm) / 2
    assert points[:, 1].min() == pytest.approx(slabs[0].z_lo_mm, abs=half_v + 1e-6)
    assert points[:, 1].max() == pytest.approx(slabs[-1].z_hi_mm, abs=half_v + 1e-6)
    image = extract(volume, target)
    rows, cols = np.nonzero(image == BOX_HU)
    u = target.u.positions_mm[cols]
    assert u.min() > u_lo and u.max() < u_hi


def gaussian_dose(
    spacing_mm: float = 2.5,
    peak_gy: float = 60.0,
    width_mm: float = 30.0,
    centre: tuple[float, float, float] = (5.0, -8.0, 2.0),
) -> DoseGrid:
    x = np.arange(-70.0, 70.01, spacing_mm)
    y = np.arange(-60.0, 60.01, spacing_mm)
    z = np.arange(-40.0, 40.01, spacing_mm)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    r2 = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (zz - centre[2]) ** 2
    return DoseGrid((peak_gy * np.exp(-r2 / width_mm**2)).astype(np.float32), x, y, z)


@pytest.mark.parametrize("view", list(View))
def test_an_isodose_line_of_an_analytic_dose_lies_within_half_a_voxel(view: View) -> None:
    dose = gaussian_dose()
    centre, peak, width = np.array([5.0, -8.0, 2.0]), 60.0, 30.0
    volume = ImageVolume.from_datasets(
        ct_series("HFS", size=80, pixel_mm=1.7, z_range=(-35, 35), slice_mm=2.0)
    )
    geometry = volume.geometry
    fixed_axis = {View.AXIAL: 2, View.CORONAL: 1, View.SAGITTAL: 0}[view]
    target = plane(geometry, view, nearest_index(geometry, view, float(centre[fixed_axis]) + 3.0))
    for level in (54.0, 42.0, 30.0, 18.0):
        (line, *rest) = isodose_lines(dose, target, [level])[level]
        assert not rest  # one closed ring per level
        assert np.allclose(line[0], line[-1])
        # In 3-D: the in-plane (u, v) plus the fixed coordinate; the true isodose is a sphere.
        pts = np.zeros((len(line), 3))
        pts[:, target.u.axis], pts[:, target.v.axis] = line[:, 0], line[:, 1]
        pts[:, target.fixed_axis] = target.fixed_mm
        radius = np.linalg.norm(pts - centre, axis=1)
        expected = width * np.sqrt(np.log(peak / level))
        assert np.max(np.abs(radius - expected)) < 2.5 / 2  # half a dose voxel


def test_the_dose_on_a_plane_is_the_trilinear_dose_at_its_pixel_centres() -> None:
    dose = gaussian_dose(spacing_mm=4.0)
    geometry = ImageVolume.from_datasets(ct_series("HFP", size=50, pixel_mm=2.3)).geometry
    for view in View:
        target = plane(geometry, view, plane_count(geometry, view) // 2 + 1)
        values = dose_on_plane(dose, target)
        expected = dose.dose_at(target.points_mm().reshape(-1, 3)).reshape(target.shape)
        assert np.allclose(values, expected, equal_nan=True, atol=1e-4)


def test_isodose_lines_stop_at_the_edge_of_the_dose_grid() -> None:
    x = np.arange(-20.0, 20.01, 2.0)
    dose = DoseGrid(np.full((5, 21, 21), 10.0, dtype=np.float32), x, x, np.arange(-4.0, 4.01, 2.0))
    geometry = ImageVolume.from_datasets(ct_series("HFS")).geometry
    target = plane(geometry, View.AXIAL, nearest_index(geometry, View.AXIAL, 0.0))
    assert isodose_lines(dose, target, [5.0]) == {5.0: []}  # uniform dose: no line, not the grid's border
    assert isodose_lines(dose, target, [20.0]) == {20.0: []}


def test_contours_match_slices_within_half_the_slice_spacing() -> None:
    z = np.array([-6.0, -3.0, 0.0, 3.0, 6.0])
    roi = box_roi(np.array([-3.0, 1.4, 5.0]))
    shown = [bool(axial_contours(roi, float(z[k]), contour_tolerance_mm(z, k))) for k in range(len(z))]
    # -6: nearest plane 3 mm away; 0: 1.4 mm (within 1.5); 3: 1.6 mm; 6: 1.0 mm
    assert shown == [False, True, True, False, True]


def test_a_geometry_without_spacing_is_refused() -> None:
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.3"
    with pytest.raises(ValueError, match="lacks Image Position"):
        SliceGeometry.from_dataset(ds)


def test_section_masks_follow_the_even_odd_rule_of_each_contour_plane() -> None:
    """A ring (outer contour with a hole) holding an island, over several planes: the vectorised cut equals
    a pixel-by-pixel point-in-polygon test within each slab."""
    from rtbank.dicom.contours import points_in_polygon
    from rtbank.dicom.imaging import RoiSections

    def circle(cx: float, cy: float, r: float, n: int = 40) -> np.ndarray:
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        return np.column_stack([cx + r * np.cos(t), cy + r * np.sin(t)])

    zs = np.arange(-9.0, 9.01, 3.0)
    planes = tuple(
        ContourPlane(float(z), (circle(5, -3, 25 - abs(z)), circle(5, -3, 12)[::-1], circle(5, -3, 5)))
        for z in zs
    )
    roi = Roi(1, "ring", planes=planes)
    slabs = StructureSet((roi,)).slabs(roi)
    geometry = ImageVolume.from_datasets(ct_series("HFS", size=40, pixel_mm=1.5, z_range=(-15, 15))).geometry
    sections = RoiSections.from_slabs(slabs)
    for view, at in ((View.SAGITTAL, 5.0), (View.SAGITTAL, 12.0), (View.CORONAL, -3.0), (View.CORONAL, 10.0)):
        target = plane(geometry, view, nearest_index(geometry, view, at))
        expected = np.zeros(target.shape, dtype=bool)
        u = target.u.positions_mm
        for slab in slabs:
            rows = (target.v.positions_mm >= slab.z_lo_mm) & (target.v.positions_mm < slab.z_hi_mm)
            xy = (
                np.column_stack([u, np.full(len(u), target.fixed_mm)])
                if view == View.CORONAL
                else np.column_stack([np.full(len(u), target.fixed_mm), u])
            )
            inside = np.zeros(len(u), dtype=bool)
            for polygon in slab.plane.polygons:
                inside ^= points_in_polygon(xy, polygon)
            expected[rows] = inside
        mask = sections.mask(target)
        assert mask.any()
        # Pixel centres exactly on an edge may fall either way; elsewhere the two agree.
        assert np.mean(mask != expected) < 0.002

"""ROI geometry from RT Structure Sets: holes, slabs and end caps, real-world oddities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from rtbank.dicom.contours import ContourPlane, StructureSet, roi_volume_cc

DATA = Path(__file__).resolve().parents[1] / "data"
FOR_UID = "1.2.826.0.1.3680043.8.498.3"


def square(x0: float, y0: float, size: float, z: float, clockwise: bool = False) -> list[float]:
    xy = [(x0, y0), (x0 + size, y0), (x0 + size, y0 + size), (x0, y0 + size)]
    if clockwise:
        xy = xy[::-1]
    return [v for x, y in xy for v in (x, y, z)]


def structure_set(
    rois: dict[str, list[tuple[str, list[float]]]], points: dict[str, list[float]] | None = None
) -> Dataset:
    """An RTSTRUCT: ROI name -> [(geometric type, contour data)]; ``points``: name -> a POINT."""
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.4"
    ds.Modality = "RTSTRUCT"
    ref = Dataset()
    ref.FrameOfReferenceUID = FOR_UID
    ds.ReferencedFrameOfReferenceSequence = [ref]
    ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = [], [], []
    everything = {**rois, **{name: [("POINT", xyz)] for name, xyz in (points or {}).items()}}
    for number, (name, contours) in enumerate(everything.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = number, name, FOR_UID
        ds.StructureSetROISequence.append(roi)
        item = Dataset()
        item.ReferencedROINumber = number
        item.ROIDisplayColor = [number, 2 * number, 3 * number]
        item.ContourSequence = []
        for kind, data in contours:
            c = Dataset()
            c.ContourGeometricType, c.NumberOfContourPoints, c.ContourData = kind, len(data) // 3, data
            item.ContourSequence.append(c)
        ds.ROIContourSequence.append(item)
        obs = Dataset()
        obs.ReferencedROINumber, obs.RTROIInterpretedType = (
            number,
            "PTV" if name.startswith("PTV") else "ORGAN",
        )
        ds.RTROIObservationsSequence.append(obs)
    return ds


def test_an_inner_contour_of_the_same_roi_is_a_hole_and_an_island_inside_it_counts_again() -> None:
    contours = [
        ("CLOSED_PLANAR", square(0, 0, 20, 0)),
        ("CLOSED_PLANAR", square(5, 5, 10, 0, clockwise=True)),
        ("CLOSED_PLANAR", square(8, 8, 4, 0)),
    ]
    roi = StructureSet.from_dataset(structure_set({"Ring": contours})).roi("Ring")
    assert len(roi.planes) == 1 and len(roi.planes[0].polygons) == 3
    assert roi.planes[0].area_mm2 == pytest.approx(400 - 100 + 16)


def test_a_hole_counts_whichever_way_it_is_drawn() -> None:
    same_way = ContourPlane(
        0.0,
        (
            np.array(square(0, 0, 20, 0)).reshape(-1, 3)[:, :2],
            np.array(square(5, 5, 10, 0)).reshape(-1, 3)[:, :2],
        ),
    )
    assert same_way.area_mm2 == pytest.approx(300)


def test_a_keyhole_contour_is_one_polygon_with_its_hole() -> None:
    # outer 20×20 square entered through a zero-width slit at x=10 to an inner 10×10 square
    outer_then_inner = [
        (10, 0),
        (20, 0),
        (20, 20),
        (0, 20),
        (0, 0),
        (10, 0),
        (10, 5),
        (5, 5),
        (5, 15),
        (15, 15),
        (15, 5),
        (10, 5),
    ]
    data = [v for x, y in outer_then_inner for v in (x, y, 0.0)]
    roi = StructureSet.from_dataset(structure_set({"Keyhole": [("CLOSED_PLANAR", data)]})).roi("Keyhole")
    assert roi.planes[0].area_mm2 == pytest.approx(300)


def test_the_end_planes_get_half_a_slice_of_cap() -> None:
    contours = [("CLOSED_PLANAR", square(0, 0, 10, z)) for z in (0.0, 3.0, 6.0)]
    ss = StructureSet.from_dataset(structure_set({"Box": contours}))
    slabs = ss.slabs(ss.roi("Box"))
    assert [(s.z_lo_mm, s.z_hi_mm) for s in slabs] == [(-1.5, 1.5), (1.5, 4.5), (4.5, 7.5)]
    assert roi_volume_cc(slabs) == pytest.approx(100 * 9 / 1000)


def test_a_gap_in_a_roi_gets_end_caps_not_a_bridge() -> None:
    body = [("CLOSED_PLANAR", square(-50, -50, 100, z)) for z in np.arange(0.0, 16.0, 3.0)]
    parts = [("CLOSED_PLANAR", square(0, 0, 10, z)) for z in (0.0, 3.0, 12.0, 15.0)]
    ss = StructureSet.from_dataset(structure_set({"Body": body, "TwoParts": parts}))
    slabs = ss.slabs(ss.roi("TwoParts"))
    assert [(s.z_lo_mm, s.z_hi_mm) for s in slabs] == [(-1.5, 1.5), (1.5, 4.5), (10.5, 13.5), (13.5, 16.5)]


def test_a_roi_drawn_on_every_other_slice_is_still_one_solid() -> None:
    body = [("CLOSED_PLANAR", square(-50, -50, 100, z)) for z in np.arange(0.0, 13.0, 3.0)]
    sparse = [("CLOSED_PLANAR", square(0, 0, 10, z)) for z in (0.0, 6.0, 12.0)]
    ss = StructureSet.from_dataset(structure_set({"Body": body, "Sparse": sparse}))
    slabs = ss.slabs(ss.roi("Sparse"))
    assert [(s.z_lo_mm, s.z_hi_mm) for s in slabs] == [(-1.5, 3.0), (3.0, 9.0), (9.0, 13.5)]


def test_it_reads_real_world_oddities_without_failing() -> None:
    closing_and_duplicate = square(0, 0, 10, 0) + [0.0, 0.0, 0.0]
    closing_and_duplicate[3:3] = closing_and_duplicate[3:6]  # a repeated point
    rois = {
        "Messy": [
            ("CLOSED_PLANAR", closing_and_duplicate),
            ("CLOSED_PLANAR", [1.0, 1.0, 0.0, 2.0, 2.0, 0.0]),
            ("OPEN_PLANAR", square(0, 0, 5, 3.0)),
            ("CLOSED_PLANAR", [0, 0, 0, 5, 0, 1, 5, 5, 2]),
        ],
        "Empty": [],
    }
    ss = StructureSet.from_dataset(structure_set(rois, points={"Iso": [1.0, 2.0, 3.0]}))
    messy = ss.roi("messy")
    assert len(messy.planes) == 1 and len(messy.planes[0].polygons[0]) == 4
    assert messy.planes[0].area_mm2 == pytest.approx(100)
    assert any("fewer than 3" in n for n in messy.notes)
    assert any("OPEN_PLANAR" in n for n in messy.notes)
    assert any("non-axial" in n for n in messy.notes)
    assert ss.roi("Empty").is_empty and ss.slabs(ss.roi("Empty")) == []
    iso = ss.roi("Iso")
    assert iso.is_empty and np.allclose(iso.points_mm[0], [1, 2, 3])


def test_it_reads_colour_type_and_frame_of_reference() -> None:
    ss = StructureSet.from_dataset(structure_set({"PTV": [("CLOSED_PLANAR", square(0, 0, 10, 0))]}))
    roi = ss.roi(1)
    assert (roi.name, roi.interpreted_type, roi.color, roi.frame_of_reference_uid) == (
        "PTV",
        "PTV",
        (1, 2, 3),
        FOR_UID,
    )
    assert ss.frame_of_reference_uids == (FOR_UID,)
    with pytest.raises(KeyError):
        ss.roi("Nothing")


def test_it_groups_contours_of_one_plane_despite_rounding() -> None:
    contours = [("CLOSED_PLANAR", square(0, 0, 10, 1.5)), ("CLOSED_PLANAR", square(20, 0, 10, 1.4999))]
    roi = StructureSet.from_dataset(structure_set({"Two": contours})).roi("Two")
    assert len(roi.planes) == 1 and roi.planes[0].area_mm2 == pytest.approx(200)


def test_vendor_structure_sets_read_completely() -> None:
    rs = next((DATA / "pyplanscoring/raystation_brain_srs_imrt").glob("RS*.dcm"))
    ss = StructureSet.from_dataset(pydicom.dcmread(rs))
    assert len(ss.rois) == 28
    body = ss.roi("BODY")
    assert body.interpreted_type == "EXTERNAL" and len(body.planes) == 229 and not body.notes
    assert sum(1 for r in ss.rois if r.points_mm) == 4  # the isocentre markers
    assert np.allclose(np.diff(ss.plane_positions_mm), 1.0)

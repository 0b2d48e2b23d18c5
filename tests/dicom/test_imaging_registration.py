"""Registered images: Spatial Registration matrices bring another frame's volume onto the planning plane."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from rtbank.dicom.imaging import (
    FrameRegistration,
    ImageVolume,
    View,
    apply_affine,
    extract,
    frame_transform,
    nearest_index,
    plane,
    sample_onto,
)
from tests.conftest import DATA
from tests.viewer.phantoms import BOX_HU, ct_series

CT_FRAME, MR_FRAME = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"


def translation(dx: float, dy: float, dz: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = dx, dy, dz
    return m


def rotation_z(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    m = np.eye(4)
    m[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return m


def registration_dataset(items: list[tuple[str, list[np.ndarray]]], own_frame: str = CT_FRAME) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66.1"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.FrameOfReferenceUID = own_frame
    ds.RegistrationSequence = []
    for frame, matrices in items:
        item = Dataset()
        item.FrameOfReferenceUID = frame
        matrix_reg = Dataset()
        matrix_reg.MatrixSequence = []
        for m in matrices:
            entry = Dataset()
            entry.FrameOfReferenceTransformationMatrixType = "RIGID"
            entry.FrameOfReferenceTransformationMatrix = [f"{v:.6f}" for v in m.ravel()]
            matrix_reg.MatrixSequence.append(entry)
        item.MatrixRegistrationSequence = [matrix_reg]
        ds.RegistrationSequence.append(item)
    return ds


def test_a_moving_image_lands_on_the_planning_anatomy_through_the_registration() -> None:
    # The MR frame sees the same box 12 mm further left and 6 mm higher: MR → CT subtracts that shift.
    ct = ImageVolume.from_datasets(ct_series("HFS"))
    mr = ImageVolume.from_datasets(
        ct_series("HFS", shift_mm=(12.0, 0.0, 6.0), frame_uid=MR_FRAME, slice_mm=2.0, pixel_mm=1.5, size=96)
    )
    reg = FrameRegistration.from_dataset(
        registration_dataset([(CT_FRAME, [np.eye(4)]), (MR_FRAME, [translation(-12.0, 0.0, -6.0)])])
    )
    found = frame_transform([reg], MR_FRAME, CT_FRAME)
    assert found is not None
    mr_to_ct, uid = found
    assert uid == "1.2.3.4"
    ct_to_mr = np.linalg.inv(mr_to_ct)
    target = plane(ct.geometry, View.AXIAL, nearest_index(ct.geometry, View.AXIAL, 0.0))
    fixed = extract(ct, target) == BOX_HU
    moved = sample_onto(mr, target, ct_to_mr)
    # Away from the box edges (where the finer MR grid interpolates) the registered MR shows the CT's box.
    inner = np.abs(moved - BOX_HU) < 1
    assert inner.sum() > 0.6 * fixed.sum()
    assert not (inner & ~fixed).any()
    unregistered = sample_onto(mr, target, None)
    assert not ((np.abs(unregistered - BOX_HU) < 1) & fixed).all()


def test_several_matrices_of_one_item_apply_in_sequence_order() -> None:
    first, second = translation(10, 0, 0), rotation_z(90)
    reg = FrameRegistration.from_dataset(registration_dataset([(MR_FRAME, [first, second])]))
    point = np.array([[1.0, 0.0, 0.0]])
    # translate first (→ 11, 0, 0), then rotate 90° about z (→ 0, 11, 0)
    assert apply_affine(reg.to_registered(MR_FRAME), point) == pytest.approx(np.array([[0.0, 11.0, 0.0]]))
    from_values = FrameRegistration.from_values(
        CT_FRAME, [(MR_FRAME, first.ravel()), (MR_FRAME, second.ravel())]
    )
    assert np.allclose(from_values.to_registered(MR_FRAME), reg.to_registered(MR_FRAME))


def test_frames_relate_through_the_registered_frame_both_ways() -> None:
    a, b = translation(5, 0, 0), rotation_z(30)
    reg = FrameRegistration.from_dataset(registration_dataset([("1.1", [a]), ("1.2", [b])], own_frame="9.9"))
    forward = reg.transform("1.1", "1.2")
    backward = reg.transform("1.2", "1.1")
    assert np.allclose(forward @ backward, np.eye(4))
    assert np.allclose(forward, np.linalg.inv(b) @ a)
    assert reg.transform("1.1", "9.9") is not None  # the registration's own frame needs no item
    assert reg.transform("1.1", "7.7") is None
    assert frame_transform([reg], "7.7", "7.7") is not None  # same frame: identity, no registration
    assert frame_transform([reg], "1.1", "7.7") is None


def test_a_registration_naming_no_frame_of_reference_relates_nothing() -> None:
    # OnkoDICOM writes a matrix without the Frame of Reference UID it applies to: unusable, not a crash.
    ds = pydicom.dcmread(DATA / "onkodicom" / "spatial_reg.dcm")
    reg = FrameRegistration.from_dataset(ds)
    assert reg.matrices == {} and reg.own_frame == ""
    assert frame_transform([reg], MR_FRAME, CT_FRAME) is None


def test_deformable_registrations_and_bad_matrices_are_refused() -> None:
    ds = registration_dataset([(MR_FRAME, [np.eye(4)])])
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66.3"
    with pytest.raises(ValueError, match="deformable"):
        FrameRegistration.from_dataset(ds)
    ds = registration_dataset([(MR_FRAME, [np.eye(4)])])
    ds.RegistrationSequence[0].MatrixRegistrationSequence[0].MatrixSequence[
        0
    ].FrameOfReferenceTransformationMatrix = ["1"] * 12
    with pytest.raises(ValueError, match="16 values"):
        FrameRegistration.from_dataset(ds)

"""References read from C-FIND answers (sequence return keys), so candidates need not be retrieved."""

from __future__ import annotations

from pydicom.dataset import Dataset

from rtbank.dicom import sop
from rtbank.harvest.session import _registration_refs


def _item(**values: object) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def test_it_reads_a_registrations_references_from_its_answer() -> None:
    answer = _item(
        SOPInstanceUID="2.25.1",
        FrameOfReferenceUID="2.25.10",
        RegistrationSequence=[
            _item(FrameOfReferenceUID="2.25.10"),
            _item(
                FrameOfReferenceUID="2.25.20",
                ReferencedImageSequence=[_item(ReferencedSOPInstanceUID="2.25.21")],
            ),
        ],
        StudiesContainingOtherReferencedInstancesSequence=[
            _item(ReferencedSeriesSequence=[_item(SeriesInstanceUID="2.25.22")])
        ],
    )
    refs = {tuple(r) for r in _registration_refs(answer) or []}
    assert refs == {
        ("frame_of_reference", "2.25.10"),
        ("frame_of_reference", "2.25.20"),
        ("image", "2.25.21"),
        ("series", "2.25.22"),
    }
    assert answer.SOPClassUID == sop.SPATIAL_REGISTRATION  # read as a registration without a SOP class


def test_it_does_not_take_a_missing_sequence_for_no_references() -> None:
    """A source that returns no sequences leaves the registration unknown (it is read by C-GET or moved)."""
    answer = _item(
        SOPInstanceUID="2.25.1", FrameOfReferenceUID="2.25.10", SOPClassUID=sop.SPATIAL_REGISTRATION
    )
    assert _registration_refs(answer) is None
    deformable = _item(
        SOPInstanceUID="2.25.2",
        DeformableRegistrationSequence=[_item(SourceFrameOfReferenceUID="2.25.30")],
    )
    assert _registration_refs(deformable) == [["frame_of_reference", "2.25.30"]]

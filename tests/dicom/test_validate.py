"""The receive-path structure check: real files pass, every kind of broken stream is refused."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from rtbank.dicom.validate import (
    MAX_SEQUENCE_DEPTH,
    RejectedDicom,
    check_part10_bytes,
    check_part10_file,
    dataset_offset,
)
from tests.conftest import DATA

PART10_FILES = [p for p in sorted(DATA.rglob("*.dcm")) if p.read_bytes()[128:132] == b"DICM"]


@pytest.mark.parametrize("path", PART10_FILES, ids=lambda p: str(p.relative_to(DATA)))
def test_it_accepts_every_real_vendor_file(path: Path) -> None:
    summary = check_part10_file(path)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert summary.sop_instance_uid == str(ds.SOPInstanceUID)
    assert summary.sop_class_uid == str(ds.SOPClassUID)


def test_it_refuses_every_truncation_of_a_structure_set() -> None:
    data = (
        DATA / "pyplanscoring/raystation_brain_srs_imrt/RS1.2.752.243.1.1.20180405120828292.2900.76357.dcm"
    ).read_bytes()
    start = dataset_offset(data)
    for cut in range(start + 1, len(data), 4999):
        with pytest.raises(RejectedDicom):
            check_part10_bytes(data[:cut])


def _file(ds: Dataset) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _base() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4"
    return ds


def test_it_bounds_sequence_depth() -> None:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))

    def nested(depth: int) -> bytes:
        ds, inner = _base(), Dataset()
        for _ in range(depth):
            outer = Dataset()
            outer.ContentSequence = Sequence([inner])
            inner = outer
        ds.ContentSequence = Sequence([inner])
        return _file(ds)

    check_part10_bytes(nested(MAX_SEQUENCE_DEPTH - 2))
    with pytest.raises(RejectedDicom, match="nested deeper"):
        check_part10_bytes(nested(300))


@pytest.mark.parametrize(
    "uid,words",
    [
        ("1.2.3/../../x", "digits separated by dots"),
        ("1." + "3" * 70, "characters long"),
        ("", "empty"),
    ],
)
def test_it_refuses_unsafe_sop_instance_uids(uid: str, words: str) -> None:
    ds = _base()
    ds.SOPInstanceUID = uid
    with pytest.raises(RejectedDicom, match=words):
        check_part10_bytes(_file(ds))


def test_it_accepts_harmless_uid_irregularities() -> None:
    ds = _base()
    ds.SOPInstanceUID = "1.2.840.0123.04"  # leading zeros: breaks PS3.5, harmless
    assert check_part10_bytes(_file(ds)).sop_instance_uid == "1.2.840.0123.04"


def test_it_refuses_a_dataset_uid_that_differs_from_the_request() -> None:
    with pytest.raises(RejectedDicom, match="differs from the C-STORE request"):
        check_part10_bytes(_file(_base()), expected_sop_instance_uid="1.2.3.5")


def test_it_refuses_non_dicom_bytes() -> None:
    with pytest.raises(RejectedDicom):
        check_part10_bytes(b"\0" * 128 + b"NOPE" + b"x" * 100)
    with pytest.raises(RejectedDicom):
        check_part10_bytes(b"short")

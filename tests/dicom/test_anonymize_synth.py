"""A synthetic patient course (rtbank.dicom.synth: planning CT, MR/PET, RTSTRUCT, RTPLAN, RTDOSE,
treatment records and the REG between the images) anonymised into two copies: every reference that
resolved still resolves, and no UID is kept or shared between copies."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pydicom
import pytest

from rtbank.dicom.anonymize import anonymize_files
from rtbank.dicom.synth.archive import generate_archive
from tests.dicom.test_anonymize_support import _SCRATCH, FULL, KEY, all_uids, uid_values


@cache
def header(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True, force=True)


def _course(files: list[Path]) -> list[Path]:
    """The objects on the frames of reference the registration relates, and the records of their plans."""
    registration = next(header(p) for p in files if header(p).Modality == "REG")
    frames = {str(item.FrameOfReferenceUID) for item in registration.RegistrationSequence}

    def frame(ds: pydicom.Dataset) -> str:
        if "ReferencedFrameOfReferenceSequence" in ds:
            return str(ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID)
        return str(ds.get("FrameOfReferenceUID", ""))

    chosen = [p for p in files if frame(header(p)) in frames]
    plans = {str(header(p).SOPInstanceUID) for p in chosen if header(p).Modality == "RTPLAN"}
    records = [
        p
        for p in files
        if header(p).Modality == "RTRECORD"
        and {str(r.ReferencedSOPInstanceUID) for r in header(p).get("ReferencedRTPlanSequence", [])} & plans
    ]
    return sorted(set(chosen) | set(records))


@cache
def synthetic_run():
    archive = _SCRATCH / "synth"
    generate_archive(archive, 1, seed=11, workers=1)
    inputs = _course(sorted(archive.rglob("*.dcm")))
    report = anonymize_files(inputs, _SCRATCH / "synth-out", 2, FULL, KEY)
    return inputs, report


@pytest.fixture(scope="module")
def run():
    inputs, report = synthetic_run()
    assert report.ok, [f"{r.source}: {r.message}" for r in report.failures]
    return inputs, report


def test_every_reference_of_a_synthetic_course_resolves_in_each_copy(run):
    inputs, report = run
    originals = {str(header(p).SOPInstanceUID): str(header(p).Modality) for p in inputs}
    assert {"CT", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "REG"} <= set(originals.values())
    for index, copy in enumerate(report.copies):
        back = {new: original for original, new in copy.uid_map.items()}
        outputs = {
            str(header(r.outputs[index]).SOPInstanceUID): header(r.outputs[index]) for r in report.results
        }
        resolved = set()
        for ds in outputs.values():
            for path, uid in uid_values(ds):
                if path[-1] == "ReferencedSOPInstanceUID" and back[uid] in originals:
                    target = outputs[uid]
                    assert str(target.Modality) == originals[back[uid]]
                    resolved.add((str(ds.Modality), str(target.Modality)))
        assert {("RTSTRUCT", "CT"), ("RTPLAN", "RTSTRUCT"), ("RTDOSE", "RTPLAN")} <= resolved
        assert ("RTRECORD", "RTPLAN") in resolved
        assert {target for kind, target in resolved if kind == "REG"} & {"CT", "MR", "PT"}, resolved


def test_a_synthetic_course_keeps_no_original_uid_and_copies_share_none(run):
    """(The byte-level search for original UIDs runs on the public files: test_anonymize_integrity.)"""
    inputs, report = run
    input_uids = set().union(*(all_uids(p) for p in inputs))
    per_copy: list[set[str]] = [set(), set()]
    for result in report.results:
        for index, output in enumerate(result.outputs):
            per_copy[index] |= all_uids(output)
    assert len(input_uids) > 100
    assert not per_copy[0] & input_uids and not per_copy[1] & input_uids
    assert per_copy[0] and not per_copy[0] & per_copy[1]
    patients = {str(header(r.outputs[0]).PatientID) for r in report.results}
    assert len(patients) == 1 and patients != {str(header(inputs[0]).PatientID)}

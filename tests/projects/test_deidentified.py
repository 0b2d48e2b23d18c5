"""The de-identification check (no database): what still identifies, under the options a file declares."""

from __future__ import annotations

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from rtbank.projects.deidentified import declared_options, remaining_identifiers, summarise
from tests.conftest import DATA


def plan() -> Dataset:
    ds = pydicom.dcmread(
        DATA / "pyplanscoring/raystation_brain_srs_imrt/RP1.2.752.243.1.1.20180405114728127.3000.13138.dcm"
    )
    return ds


def paths(ds: Dataset) -> set[str]:
    return {o.path for o in remaining_identifiers(ds)}


def declare(ds: Dataset, *codes: str) -> Dataset:
    items = []
    for code in ("113100", *codes):
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code, "DCM", "x"
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    return ds


def test_names_and_dates_of_a_clinical_plan_are_found() -> None:
    found = paths(plan())
    assert {"PatientName", "StudyDate", "InstanceCreationDate"} <= found
    assert "PatientID" not in found  # the pseudonym's place


def test_a_pseudonym_as_patient_name_passes_and_a_real_name_does_not() -> None:
    ds = plan()
    ds.PatientName = ds.PatientID
    assert "PatientName" not in paths(ds)
    ds.PatientName = "ANONYMIZED"
    assert "PatientName" not in paths(ds)
    ds.PatientName = "Doe^Jane"
    assert "PatientName" in paths(ds)


def test_declared_options_allow_what_they_retain() -> None:
    ds = declare(plan(), "113107")  # Retain Longitudinal Temporal Information Modified Dates
    assert declared_options(ds)
    found = paths(ds)
    assert "StudyDate" not in found and "PatientName" in found


def test_names_inside_sequences_and_removed_sequences_are_found() -> None:
    ds = plan()
    ds.PatientName = ds.PatientID
    for keyword in list(ds.dir()):
        if "Date" in keyword:
            delattr(ds, keyword)
    reviewer = Dataset()
    reviewer.ReviewerName = "Smith^Ann"
    ds.ReferencedStudySequence = Sequence([reviewer])
    other = Dataset()
    other.PatientID = "0101801234"
    ds.OtherPatientIDsSequence = Sequence([other])
    found = paths(ds)
    assert "ReferencedStudySequence > ReviewerName" in found
    assert "OtherPatientIDsSequence" in found


def test_the_summary_counts_files_and_never_shows_values() -> None:
    ds = plan()
    lines = summarise([("a.dcm", remaining_identifiers(ds)), ("b.dcm", remaining_identifiers(ds))])
    assert any("(0010,0010) PatientName" in line and "in 2 files (e.g. a.dcm)" in line for line in lines)
    assert not any(str(ds.PatientName) in line for line in lines)

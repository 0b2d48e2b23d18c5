"""Every kind of generated object passes dciodvfy, except the validator's defects and what a quirk implies.

"Every kind": for each patient of the shared archive (three institutions; together they carry every quirk),
each RT object except all but one record per series, and the first image of every image series.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest

from rtbank.dicom.synth.validation import (
    QUIRK_ERRORS,
    VALIDATOR_DEFECTS,
    Report,
    ValidatorCrash,
    validate,
    validate_file,
)
from tests.dicom.test_synth_support import shared


def _sample() -> list[dict[str, str]]:
    chosen, seen = [], set()
    for entry in shared().manifest["files"]:
        key = (
            entry["series_instance_uid"]
            if entry["modality"] in {"CT", "MR", "PT", "RTRECORD"}
            else entry["sop_instance_uid"]
        )
        if key not in seen:
            seen.add(key)
            chosen.append(entry)
    return chosen


def _quirks_of() -> dict[str, list[str]]:
    quirks: dict[str, list[str]] = {}
    for patient in shared().manifest["patients"]:
        for anomaly in patient["anomalies"]:
            for uid in anomaly["uids"]:
                quirks.setdefault(uid, []).append(anomaly["kind"])
    return quirks


def _validate(entry: dict[str, str]) -> Report:
    path = shared().root / entry["path"]
    if entry["modality"] == "RTDOSE":
        return validate(pydicom.dcmread(path))  # a 32-bit dose is checked as its 16-bit copy
    return validate_file(path)


@pytest.fixture(scope="module")
def reports() -> list[tuple[dict[str, str], Report]]:
    sample = _sample()
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(zip(sample, pool.map(_validate, sample), strict=True))


def test_every_kind_of_object_validates_without_unexplained_errors(
    reports: list[tuple[dict[str, str], Report]],
) -> None:
    quirks = _quirks_of()
    modalities = {entry["modality"] for entry, _ in reports}
    assert modalities == {"CT", "MR", "PT", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "REG"}
    assert {entry["path"].split("/")[0] for entry, _ in reports} == {"AAR", "ODE", "RH"}
    unexplained = {
        entry["path"]: report.unexpected_errors(quirks.get(entry["sop_instance_uid"], []))
        for entry, report in reports
    }
    assert {path: errors for path, errors in unexplained.items() if errors} == {}


def test_the_listed_validator_defects_and_quirk_errors_still_occur(
    reports: list[tuple[dict[str, str], Report]],
) -> None:
    """If a dicom3tools update fixes a defect, or a quirk stops causing its error, the lists must shrink."""
    seen = {error for _, report in reports for error in report.errors}
    assert set(VALIDATOR_DEFECTS) <= seen
    quirks = _quirks_of()
    tomo = [r for e, r in reports if "dose_references_structure_set" in quirks.get(e["sop_instance_uid"], [])]
    assert tomo and all(set(r.errors) == set(QUIRK_ERRORS["dose_references_structure_set"]) for r in tomo)


def test_a_validator_abort_is_a_failure_not_a_pass(tmp_path: Path) -> None:
    archive = shared()
    dose_32 = next(
        f for f in archive.of_modality("RTDOSE") if archive.read(f["sop_instance_uid"]).BitsAllocated == 32
    )
    with pytest.raises(ValidatorCrash):
        validate_file(archive.root / dose_32["path"])  # dciodvfy aborts on 32-bit dose pixel data
    copy = validate(archive.read(dose_32["sop_instance_uid"]), workdir=tmp_path)
    assert copy.unexpected_errors(_quirks_of().get(dose_32["sop_instance_uid"], [])) == []

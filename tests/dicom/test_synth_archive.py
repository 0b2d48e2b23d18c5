"""``rtbank synth`` as a user meets it: the command, the folder it writes, the manifest, determinism."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from rtbank.cli import main
from rtbank.dicom.synth import (
    QUIRKS,
    ArchiveError,
    generate_archive,
    generate_patient,
    institutions,
    patient_datasets,
)
from rtbank.dicom.synth.encode import write_part10
from rtbank.dicom.uids import is_strict_uid
from tests.dicom.test_synth_support import manifest_json, shared, shared_archive

LAYOUT = re.compile(r"^[A-Za-z0-9_-]+/[A-Za-z0-9._-]+/\d{8}_[a-z-]+(-\d+)?/[A-Z]+_\d+/\d+\.dcm$")


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_it_writes_byte_identical_archives_for_the_same_seed_whatever_the_worker_count(
    tmp_path: Path,
) -> None:
    generate_archive(tmp_path / "a", patients=2, seed=5, workers=1)
    generate_archive(tmp_path / "b", patients=2, seed=5, workers=2)
    first, second = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert len(first) > 100
    assert first == second


def test_it_writes_another_archive_for_another_seed(tmp_path: Path) -> None:
    root, manifest = shared_archive()
    other = generate_archive(tmp_path / "other", patients=1, seed=12, workers=1)
    assert {f["sop_instance_uid"] for f in other["files"]}.isdisjoint(
        f["sop_instance_uid"] for f in manifest["files"]
    )
    assert other["patients"][0]["patient_id"] != manifest["patients"][0]["patient_id"]


def test_it_lists_every_file_it_wrote_in_the_manifest_and_nothing_else() -> None:
    root, manifest = shared_archive()
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*.dcm")}
    listed = [f["path"] for f in manifest["files"]]
    assert len(listed) == len(set(listed))
    assert on_disk == set(listed)
    assert manifest_json(root) == manifest


def test_it_follows_the_folder_layout_institution_patient_study_series_instance() -> None:
    archive = shared()
    for entry in archive.manifest["files"]:
        assert LAYOUT.match(entry["path"]), entry["path"]
        institution, patient_id, _study, series, _ = entry["path"].split("/")
        assert patient_id == entry["patient_id"]
        assert series.split("_")[0] == entry["modality"]
    codes = {p["institution"] for p in archive.manifest["patients"]}
    assert codes == {"AAR", "ODE", "RH"}


def test_it_counts_what_it_wrote() -> None:
    manifest = shared().manifest
    files = manifest["files"]
    counts = manifest["counts"]
    assert counts["patients"] == len(manifest["patients"]) == 4
    assert counts["instances"] == len(files)
    assert counts["series"] == len({f["series_instance_uid"] for f in files})
    assert counts["studies"] == len({f["study_instance_uid"] for f in files})
    assert sum(counts["by_modality"].values()) == len(files)
    assert set(counts["by_modality"]) == {"CT", "MR", "PT", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "REG"}
    rt = counts["rt"]
    assert rt == {
        "plans": counts["by_modality"]["RTPLAN"],
        "structure_sets": counts["by_modality"]["RTSTRUCT"],
        "doses": counts["by_modality"]["RTDOSE"],
        "records": counts["by_modality"]["RTRECORD"],
        "registrations": counts["by_modality"]["REG"],
    }
    assert manifest["generator"] == "rtbank synth" and manifest["format"] == 1
    assert manifest["seed"] == 11 and manifest["full_size"] is False
    assert [i["code"] for i in manifest["institutions"]] == ["AAR", "ODE", "RH"]


def test_it_writes_part_10_files_in_explicit_vr_little_endian_with_matching_meta() -> None:
    archive = shared()
    for entry in archive.manifest["files"][::25]:
        path = archive.root / entry["path"]
        assert path.read_bytes()[128:132] == b"DICM"
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == entry["sop_instance_uid"]
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == entry["sop_class_uid"]
        assert ds.SeriesInstanceUID == entry["series_instance_uid"]
        assert ds.StudyInstanceUID == entry["study_instance_uid"]
        assert ds.PatientID == entry["patient_id"] and ds.Modality == entry["modality"]


def test_its_lean_writer_writes_what_pydicom_writes(tmp_path: Path) -> None:
    archive = generate_patient(4, 1, institutions(3)[1], patients=3, institution_count=3)
    kinds: dict[str, int] = {}
    for generated in archive.objects:
        modality = generated.series.modality
        if kinds.get(modality, 0) >= 3:
            continue
        kinds[modality] = kinds.get(modality, 0) + 1
        write_part10(tmp_path / "lean.dcm", generated.dataset)
        pydicom.dcmwrite(tmp_path / "pydicom.dcm", generated.dataset, enforce_file_format=True)
        assert (tmp_path / "lean.dcm").read_bytes() == (tmp_path / "pydicom.dcm").read_bytes(), modality
    assert len(kinds) >= 7


def test_it_derives_every_uid_from_the_seed_under_the_2_25_root() -> None:
    archive = shared()
    for entry in archive.manifest["files"]:
        for uid in (entry["sop_instance_uid"], entry["series_instance_uid"], entry["study_instance_uid"]):
            assert uid.startswith("2.25.") and is_strict_uid(uid)


def test_it_gives_every_quirk_to_an_archive_of_three_patients_or_more() -> None:
    archive = shared()
    kinds = {a["kind"] for p in archive.manifest["patients"] for a in p["anomalies"]}
    kinds |= {d["kind"] for p in archive.manifest["patients"] for d in p["decoys"]}
    assert set(QUIRKS) <= kinds
    assert {"trial_plan", "trial_dose", "qa_phantom", "untreated_course", "unregistered_series"} <= kinds
    assert {"missing_slice", "dose_references_structure_set", "plan_without_dose", "dangling_record"} <= kinds


def test_it_yields_one_patient_in_memory_as_the_files_hold_it(tmp_path: Path) -> None:
    clinic = institutions(1)[0]
    in_memory = list(patient_datasets(3, 0, clinic))
    manifest = generate_archive(tmp_path / "one", patients=1, seed=3, institutions=1, workers=1)
    assert [str(ds.SOPInstanceUID) for ds in in_memory] == [f["sop_instance_uid"] for f in manifest["files"]]
    written = pydicom.dcmread(tmp_path / "one" / manifest["files"][0]["path"])
    assert written.PixelData == in_memory[0].PixelData


def test_the_command_writes_an_archive_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["synth", "--patients", "1", "--out", str(tmp_path / "cli"), "--seed", "2", "--institutions", "1"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("1 patient, ") and "manifest" in out
    assert manifest_json(tmp_path / "cli")["counts"]["patients"] == 1


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--patients", "0"], "--patients must be between"),
        (["--patients", "1", "--institutions", "0"], "--institutions must be between"),
        (["--patients", "1", "--seed", "-3"], "--seed must be zero or positive"),
        (["--patients", "1", "--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_the_command_refuses_bad_arguments_with_one_readable_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    code = main(["synth", "--out", str(tmp_path / "x"), *arguments])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "arguments", [["--patients", "many"], ["--seed", "1"], ["--patients", "1", "--colour"]]
)
def test_the_command_reports_unparsable_arguments_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["synth", "--out", str(tmp_path / "x"), *arguments])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rtbank synth: ")


def test_it_refuses_a_folder_holding_something_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ArchiveError, match="not empty"):
        generate_archive(tmp_path, patients=1, workers=1)
    assert main(["synth", "--patients", "1", "--out", str(tmp_path)]) == 2
    assert "choose an empty folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_it_replaces_its_own_earlier_archive(tmp_path: Path) -> None:
    first = generate_archive(tmp_path, patients=1, seed=1, institutions=2, workers=1)
    manifest = generate_archive(tmp_path, patients=1, seed=2, institutions=1, workers=1)
    assert {f["path"] for f in first["files"]} != {f["path"] for f in manifest["files"]}
    on_disk = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.dcm")}
    assert on_disk == {f["path"] for f in manifest["files"]}

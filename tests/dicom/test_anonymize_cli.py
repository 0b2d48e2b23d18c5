"""``rtbank anonymize`` as a user runs it: a subprocess, files in, copies and CSVs out, exit codes."""

from __future__ import annotations

import csv
import re
import stat
import subprocess
import sys
from pathlib import Path

import pydicom

from tests.dicom.test_anonymize_support import DATA, ROOT

RTBANK = Path(sys.executable).parent / "rtbank"  # the console script installed beside this interpreter
CT = [DATA / "rt-utils/ct_1.dcm", DATA / "rt-utils/ct_2.dcm"]
STRUCTURES = DATA / "rt-utils/rt.dcm"
NAME = re.compile(r"^(image|structure-set|plan|dose|record|registration)-[0-9a-f]{24}\.dcm$")


def rtbank(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RTBANK), "anonymize", *map(str, args)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_it_writes_n_copies_with_a_generated_key_and_a_pseudonym_csv(tmp_path):
    out = tmp_path / "out"
    done = rtbank(*CT, STRUCTURES, "--out", out, "--copies", "2", "--prefix", "AUDIT7")
    assert done.returncode == 0, done.stderr
    for k in ("1", "2"):
        names = sorted(p.name for p in (out / f"copy-{k}").iterdir())
        assert len(names) == 3 and all(NAME.match(n) for n in names), names
    key = out / "anonymization.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert f"generated {key} (mode 0600)" in done.stdout
    assert done.stdout.count("\nok ") + done.stdout.startswith("ok ") == 3
    rows = list(csv.DictReader((out / "pseudonyms.csv").open()))
    original = pydicom.dcmread(CT[0]).PatientID
    assert [(r["copy"], r["original_patient_id"]) for r in rows] == [("1", original), ("2", original)]
    assert all(re.fullmatch(rf"AUDIT7-{r['copy']}-[0-9]{{10}}", r["pseudonym"]) for r in rows)
    written = pydicom.dcmread(next((out / "copy-2").glob("image-*.dcm")))
    assert written.PatientID == rows[1]["pseudonym"] and written.PatientIdentityRemoved == "YES"


def test_a_later_export_with_the_key_file_still_resolves_into_the_same_copy(tmp_path):
    first, later = tmp_path / "first", tmp_path / "later"
    assert rtbank(*CT, "--out", first, "--copies", "2").returncode == 0
    done = rtbank(STRUCTURES, "--out", later, "--first-copy", "2", "--key-file", first / "anonymization.key")
    assert done.returncode == 0, done.stderr
    assert not (later / "anonymization.key").exists()
    images = {pydicom.dcmread(p).SOPInstanceUID for p in (first / "copy-2").iterdir()}
    structures = pydicom.dcmread(next((later / "copy-2").iterdir()))
    referenced = {
        image.ReferencedSOPInstanceUID
        for frame in structures.ReferencedFrameOfReferenceSequence
        for study in frame.RTReferencedStudySequence
        for series in study.RTReferencedSeriesSequence
        for image in series.ContourImageSequence
    }
    assert referenced and referenced <= images


def test_it_refuses_burned_in_annotation_with_one_line_and_exit_1(tmp_path):
    burned = tmp_path / "in" / "burned.dcm"
    burned.parent.mkdir()
    ds = pydicom.dcmread(CT[0])
    ds.BurnedInAnnotation = "YES"
    ds.save_as(burned)
    done = rtbank(burned, CT[1], "--out", tmp_path / "out")
    assert done.returncode == 1
    refused = [line for line in done.stderr.splitlines() if line.startswith("refused")]
    assert len(refused) == 1 and str(burned) in refused[0] and "Burned In Annotation = YES" in refused[0]
    assert len(list((tmp_path / "out" / "copy-1").iterdir())) == 1  # the good file is still written


def test_it_neutralises_spreadsheet_formulas_in_the_pseudonym_csv(tmp_path):
    evil = tmp_path / "in" / "evil.dcm"
    evil.parent.mkdir()
    ds = pydicom.dcmread(CT[0])
    ds.PatientID = '=HYPERLINK("http://x.invalid","open")'
    ds.save_as(evil)
    out = tmp_path / "out"
    assert rtbank(evil, "--out", out, "--prefix=-X").returncode == 0
    text = (out / "pseudonyms.csv").read_text()
    assert "'=HYPERLINK" in text and "'-X-1-" in text
    assert not re.search(r"(^|,)[=+\-@]", text, re.M)


def test_it_reads_exports_without_a_part_10_header(tmp_path):
    monaco = DATA / "pyplanscoring/monaco_3dcrt_3plans"
    options = ("retain-longitudinal-modified-dates", "clean-descriptors")
    done = rtbank(monaco, "--out", tmp_path / "out", "--option", *options)
    assert done.returncode == 0, done.stderr
    assert "options: clean-descriptors, retain-longitudinal-modified-dates" in done.stdout
    outputs = list((tmp_path / "out" / "copy-1").iterdir())
    assert len(outputs) == 3 and all(p.read_bytes()[128:132] == b"DICM" for p in outputs)


def test_it_rejects_an_unknown_option_with_one_line_and_exit_2(tmp_path):
    done = rtbank(CT[0], "--out", tmp_path / "out", "--option", "retain-everything")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "unknown option 'retain-everything'" in done.stderr
    assert not (tmp_path / "out").exists()


def test_it_never_reads_its_own_output_when_the_output_folder_is_inside_an_input_folder(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for path in CT:
        (inputs / path.name).write_bytes(path.read_bytes())
    out = inputs / "anonymised"
    first = rtbank(inputs, "--out", out)
    second = rtbank(inputs, "--out", out)
    assert first.returncode == second.returncode == 0, second.stderr
    assert len(list((out / "copy-1").iterdir())) == 2
    assert "key: reused" in second.stdout and second.stdout.count("ok ") == 2


def test_it_skips_non_dicom_files_in_folders_but_fails_on_named_ones(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "ct.dcm").write_bytes(CT[0].read_bytes())
    (inputs / "manifest.json").write_text('{"files": []}')
    done = rtbank(inputs, "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^skipped +\S*manifest\.json: not a DICOM object", done.stdout, re.M)
    assert "1 of 1 DICOM file(s) anonymised" in done.stdout
    named = rtbank(inputs / "manifest.json", "--out", tmp_path / "out2")
    assert named.returncode == 1 and named.stderr.startswith("unreadable ")

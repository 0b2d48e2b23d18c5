"""``rtbank dvh`` as a user runs it: a subprocess of the installed console script."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rtbank.dicom.dvh.phantoms import LinearDose, Solid, linear_dose_dataset, structure_set_dataset

RTBANK = Path(sys.executable).parent / "rtbank"
FOR_UID = "1.2.826.0.1.3680043.8.498.5"
SPHERE = Solid("sphere", 12, centre_mm=(0.0, 0.0, 0.0), name="Sphere")
DOSE = LinearDose("y", -1.0, 24.0)
NASTY_NAMES = ('=HYPERLINK("http://x")', "+SUM(A1)", "-PTV", "@cmd", "Rectum")


def rtbank_dvh(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RTBANK), "dvh", *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("dvh-cli")
    solids = [SPHERE] + [Solid("cylinder", 5, 10, "z", (30.0, 0.0, 0.0), name=n) for n in NASTY_NAMES]
    paths = {
        "rs": folder / "RS.dcm",
        "rd": folder / "RD.dcm",
        "other_for": folder / "RD_other.dcm",
        "oblique": folder / "RD_oblique.dcm",
        "garbage": folder / "garbage.dcm",
    }
    structure_set_dataset(solids, 2.0, FOR_UID).save_as(paths["rs"], enforce_file_format=True)
    dose = linear_dose_dataset(DOSE, (-20.0, -20.0, -20.0), (31, 21, 21), 2.0, FOR_UID)
    dose.save_as(paths["rd"], enforce_file_format=True)
    other = linear_dose_dataset(DOSE, (-20.0, -20.0, -20.0), (31, 21, 21), 2.0, "1.2.826.0.1.3680043.8.498.6")
    other.save_as(paths["other_for"], enforce_file_format=True)
    dose.ImageOrientationPatient = [0.9848, 0.1736, 0, -0.1736, 0.9848, 0]
    dose.save_as(paths["oblique"], enforce_file_format=True)
    paths["garbage"].write_bytes(b"not a DICOM file at all" * 10)
    return paths


def test_json_has_one_object_per_roi_with_the_agreed_keys(files: dict[str, Path]) -> None:
    done = rtbank_dvh(
        files["rs"],
        files["rd"],
        "--roi",
        "sphere",
        "--metrics",
        "Dmin,Dmean,Dmax,D95%,D0.03cc,V20Gy[%],V20Gy[cc]",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["roi"] == "Sphere" and row["number"] == 1
    assert list(row["metrics"]) == ["Dmin", "Dmean", "Dmax", "D95%", "D0.03cc", "V20Gy[%]", "V20Gy[cc]"]
    truth = SPHERE.reference(DOSE)
    assert row["volume_cc"] == pytest.approx(truth.volume_cc, rel=0.01)
    assert row["covered_volume_cc"] == pytest.approx(row["volume_cc"])
    m = row["metrics"]
    assert m["Dmean"] == pytest.approx(24.0, abs=0.01)
    assert m["D95%"] == pytest.approx(truth.metric("D95%"), rel=0.03)
    assert m["V20Gy[%]"] == pytest.approx(truth.metric("V20Gy[%]"), rel=0.03)
    assert m["V20Gy[cc]"] == pytest.approx(m["V20Gy[%]"] / 100 * row["covered_volume_cc"], rel=1e-3)
    assert row["flags"] == [] and row["dose_summation"] == "PLAN"


def test_csv_neutralises_cells_a_spreadsheet_would_run(files: dict[str, Path]) -> None:
    done = rtbank_dvh(files["rs"], files["rd"], "--metrics", "Dmean,D2%", "--csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == ["roi", "number", "type", "volume_cc", "covered_volume_cc", "Dmean", "D2%", "flags"]
    names = [r[0] for r in rows[1:]]
    assert names == ["Sphere", '\'=HYPERLINK("http://x")', "'+SUM(A1)", "'-PTV", "'@cmd", "Rectum"]
    for r in rows[1:]:
        float(r[3]), float(r[5])  # numbers stay numbers
        assert not r[3].startswith("'")


def test_the_default_output_is_a_readable_table(files: dict[str, Path]) -> None:
    done = rtbank_dvh(files["rs"], files["rd"], "--roi", "Sphere", "Rec*")
    assert done.returncode == 0, done.stderr
    assert "Sphere" in done.stdout and "Rectum" in done.stdout and "D0.03cc [Gy]" in done.stdout
    assert "Volume [cc]" in done.stdout and "HYPERLINK" not in done.stdout


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (("rs", "other_for"), 1, "frame of reference mismatch"),
        (("rs", "oblique"), 1, "not axial"),
        (("garbage", "rd"), 1, "cannot read RTSTRUCT"),
        (("rs", "missing"), 1, "no such file"),
        (("rd", "rd"), 1, "is not an RTSTRUCT"),
        (("rs", "rd", "--metrics", "D95"), 2, "unknown DVH metric 'D95'"),
        (("rs", "rd", "--roi", "Bladder"), 2, "no ROI matches 'Bladder'"),
        (("rs", "rd", "--metrics", "EQD2:Dmean"), 2, "need the number of fractions"),
    ],
)
def test_bad_input_ends_with_one_readable_line_and_a_nonzero_status(
    files: dict[str, Path], tmp_path: Path, args: tuple[str, ...], status: int, message: str
) -> None:
    resolved = [str(files.get(a, tmp_path / "missing.dcm")) if a in {*files, "missing"} else a for a in args]
    done = rtbank_dvh(*resolved)
    assert done.returncode == status
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtbank dvh: error:") and message in lines[0], done.stderr

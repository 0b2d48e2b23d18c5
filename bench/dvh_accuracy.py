"""Accuracy of the DVH engine against analytic phantoms and the Nelms et al. 2015 files: the tables in
docs/dvh.md.

The phantoms are those of tests/dicom/test_dvh_analytic.py (sphere, cylinders along z and y, cones along
z and y; R 12 mm, 24 mm long; 1 Gy/mm gradients along y (AP) and z (SI), 16 Gy at the centre):

* fine: contours every 0.5 mm, dose grids 1, 2, 3 mm;
* 1–3 mm: contours and dose grid both 1, 2 or 3 mm, the grid aligned with the solids and shifted 0.37
  of a voxel off them.

Clinical metrics: Dmean, D99%, D95%, D50%, D5%, D1%, D0.03cc. Dmin, Dmax and the volume are shown apart.

usage: .venv/bin/python bench/dvh_accuracy.py        (prints Markdown)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom

from rtbank.dicom.contours import StructureSet
from rtbank.dicom.dosegrid import DoseGrid
from rtbank.dicom.dvh import dvh_for_roi, parse_metrics
from rtbank.dicom.dvh.phantoms import LinearDose, Solid, linear_dose_dataset, structure_set_dataset

ROOT = Path(__file__).resolve().parent.parent
FOR_UID = "1.2.826.0.1.3680043.8.498.1"
CENTRE = (4.0, -6.0, 6.0)
SOLIDS = (
    Solid("sphere", 12, centre_mm=CENTRE, name="Sphere"),
    Solid("cylinder", 12, 24, "z", CENTRE, name="Cylinder_z"),
    Solid("cylinder", 12, 24, "y", CENTRE, name="Cylinder_y"),
    Solid("cone", 12, 24, "z", CENTRE, name="Cone_z"),
    Solid("cone", 12, 24, "y", CENTRE, name="Cone_y"),
)
GRADIENTS = {"AP": LinearDose("y", -1.0, 16.0, CENTRE), "SI": LinearDose("z", 1.0, 16.0, CENTRE)}
CLINICAL = ("Dmean", "D99%", "D95%", "D50%", "D5%", "D1%", "D0.03cc")
SHOWN = ("Dmin", "Dmax", *CLINICAL)
SPECS = parse_metrics(SHOWN)
FINE = [(0.5, d, 0.0) for d in (1.0, 2.0, 3.0)]
COARSE = [(mm, mm, shift) for mm in (1.0, 2.0, 3.0) for shift in (0.0, 0.37)]


@dataclass
class Case:
    """One solid in one dose grid, its files on disk and its true values."""

    solid: Solid
    gradient: str
    contour_mm: float
    dose_mm: float
    shift: float
    rs: Path
    rd: Path
    truth: dict[str, float] = field(default_factory=dict)


@dataclass
class Row:
    case: Case
    values: dict[str, float | None]  # engine values, "volume" included
    seconds: float

    def error_pct(self, name: str) -> float | None:
        value = self.values.get(name)
        return None if value is None else 100 * (value - self.case.truth[name]) / self.case.truth[name]


def write_cases(work: Path, configs: Iterable[tuple[float, float, float]]) -> list[Case]:
    """Write the phantoms' RTSTRUCTs and RTDOSEs under ``work``; one Case per solid and dose."""
    work.mkdir(parents=True, exist_ok=True)
    truths = {(s.label, g): _truth(s, dose) for s in SOLIDS for g, dose in GRADIENTS.items()}
    cases = []
    for contour_mm, dose_mm, shift in configs:
        rs = work / f"RS_{contour_mm}.dcm"
        if not rs.exists():
            structure_set_dataset(list(SOLIDS), contour_mm, FOR_UID).save_as(rs, enforce_file_format=True)
        n = int(round(84 / dose_mm)) + 1
        lower = tuple(c - 42 + shift * dose_mm for c in CENTRE)
        for gradient, dose in GRADIENTS.items():
            rd = work / f"RD_{gradient}_{dose_mm}_{shift}.dcm"
            if not rd.exists():
                ds = linear_dose_dataset(dose, lower, (n, n, n), dose_mm, FOR_UID)
                ds.save_as(rd, enforce_file_format=True)
            cases += [
                Case(s, gradient, contour_mm, dose_mm, shift, rs, rd, truths[(s.label, gradient)])
                for s in SOLIDS
            ]
    return cases


def _truth(solid: Solid, dose: LinearDose) -> dict[str, float]:
    reference = solid.reference(dose)
    return {"volume": reference.volume_cc} | {name: reference.metric(name) for name in SHOWN}


def rtbank_rows(cases: list[Case]) -> list[Row]:
    rows = []
    for (rs, rd), group in _by_files(cases).items():
        structure_set = StructureSet.from_dataset(pydicom.dcmread(rs))
        grid = DoseGrid.from_dataset(pydicom.dcmread(rd))
        for case in group:
            start = time.perf_counter()
            result = dvh_for_roi(structure_set, case.solid.label, grid)
            values, _ = result.metrics(SPECS)
            rows.append(Row(case, values | {"volume": result.volume_cc}, time.perf_counter() - start))
    return rows


def dicompyler_rows(cases: list[Case], python: Path) -> list[Row]:
    """The same cases through dicompyler-core (default mode) in its own virtual environment."""
    rows = []
    for (rs, rd), group in _by_files(cases).items():
        numbers = {
            c.solid.label: k + 1 for k, c in enumerate(sorted(group, key=lambda c: SOLIDS.index(c.solid)))
        }
        out = subprocess.run(
            [str(python), str(ROOT / "bench" / "dvh_dicompyler.py"), str(rs), str(rd)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout)["rois"]
        for case in group:
            item = result[str(numbers[case.solid.label])]
            metrics = dict(item.get("metrics", {}))
            metrics["volume"] = metrics.pop("volume_cc", None)
            rows.append(Row(case, metrics, item["seconds"]))
    return rows


def _by_files(cases: list[Case]) -> dict[tuple[Path, Path], list[Case]]:
    groups: dict[tuple[Path, Path], list[Case]] = {}
    for case in cases:
        groups.setdefault((case.rs, case.rd), []).append(case)
    return groups


# ------------------------------------------------------------------ tables
def beyond(rows: list[Row], names: Iterable[str], limit: float = 3.0) -> tuple[int, int]:
    """(values more than ``limit`` % off, values) over ``names``; a missing value counts as off."""
    errors = [r.error_pct(n) for r in rows for n in names]
    return sum(1 for e in errors if e is None or abs(e) > limit), len(errors)


def summary_table(sets: dict[str, list[Row]]) -> str:
    """Per metric: values beyond 3 % / values, and the range of % errors, for each named row set."""
    header = "| metric | " + " | ".join(sets) + " |\n|---|" + "---:|" * len(sets) + "\n"
    lines = []
    for name in ("volume", *SHOWN):
        cells = []
        for rows in sets.values():
            errors = [r.error_pct(name) for r in rows]
            known = [e for e in errors if e is not None]
            off = sum(1 for e in errors if e is None or abs(e) > 3)
            span = f"{min(known):+.1f} to {max(known):+.1f}" if known else "–"
            cells.append(f"{off}/{len(errors)} ({span})")
        label = f"**{name}**" if name in CLINICAL else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    totals = []
    for rows in sets.values():
        off, total = beyond(rows, CLINICAL)
        totals.append(f"**{off}/{total} ({100 * off / total:.1f} %)**")
    lines.append("| **clinical, beyond 3 %** | " + " | ".join(totals) + " |")
    return header + "\n".join(lines) + "\n"


def zero_doses(rows: list[Row]) -> int:
    """Dx values reported as 0 Gy (the phantoms' doses are 4–28 Gy)."""
    return sum(1 for r in rows for n in CLINICAL if r.values.get(n) == 0.0)


def nelms_table() -> str:
    """The Nelms et al. 2015 files at hand, against closed forms with the benchmark's end-cap convention."""
    data = ROOT / "tests" / "data" / "nelms-dvh-benchmark"
    grid = DoseGrid.from_dataset(pydicom.dcmread(data / "DOSE_GRIDS" / "Linear_AntPost_3mm_Aligned.dcm"))
    dose = LinearDose("y", -1.0, 10.0, (0.0, 0.0, 0.0))
    solids = {
        "Sphere_30_0": Solid("sphere", 12, centre_mm=(0, -6, 6)),
        "Cylinder_30_0": Solid("cylinder", 12, 27, "z", (0, -6, 6)),
        "RtCylinder_30_0": Solid("cylinder", 12, 24, "y", (0, -6, 6)),
    }
    lines = ["| structure | volume | " + " | ".join(SHOWN) + " |", "|---|" + "---:|" * (len(SHOWN) + 1)]
    for name, solid in solids.items():
        structure_set = StructureSet.from_dataset(pydicom.dcmread(data / "STRUCTURES" / f"{name}.dcm"))
        result = dvh_for_roi(structure_set, name, grid)
        values, _ = result.metrics(SPECS)
        truth = _truth(solid, dose)
        cells = [f"{100 * (result.volume_cc / truth['volume'] - 1):+.2f} %"]
        cells += [f"{100 * (values[n] / truth[n] - 1):+.2f} %" for n in SHOWN]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def misses(rows: list[Row], names: Iterable[str], limit: float = 3.0) -> str:
    """Every value more than ``limit`` % off, largest first."""
    items = sorted(
        ((abs(e), r, n) for r in rows for n in names if (e := r.error_pct(n)) is not None and abs(e) > limit),
        key=lambda t: -t[0],
    )
    return (
        "\n".join(
            f"- {r.case.solid.label} {r.case.gradient}, contours {r.case.contour_mm:g} mm, dose "
            f"{r.case.dose_mm:g} mm{' shifted' if r.case.shift else ''}: {n} {r.error_pct(n):+.2f} %"
            for _, r, n in items
        )
        or "- none"
    )


def report(work: Path, run: Callable[[list[Case]], list[Row]] = rtbank_rows) -> str:
    fine, coarse = run(write_cases(work, FINE)), run(write_cases(work, COARSE))
    parts = [
        "Errors relative to the analytic value (values beyond 3 % / values, and the range in %).\n\n",
        summary_table({"fine: 0.5 mm contours, 1–3 mm dose": fine, "1–3 mm contours and dose": coarse}),
        f"\nClinical values beyond 3 % on 1–3 mm contours:\n\n{misses(coarse, CLINICAL)}\n",
        f"\nDx reported as 0 Gy: {zero_doses(fine + coarse)} of {len(fine + coarse) * 6}.\n",
        f"\nNelms et al. 2015 files at hand (3 mm contours, Linear_AntPost_3mm_Aligned):\n\n{nelms_table()}",
    ]
    return "".join(parts)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rtbank-dvh-accuracy-") as folder:
        start = time.perf_counter()
        text = report(Path(folder))
        print(text)
        print(f"({time.perf_counter() - start:.1f} s, numpy {np.__version__})", file=sys.stderr)

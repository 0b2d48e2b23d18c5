"""Benchmark: rtbank's DVH engine against dicompyler-core 0.5.6 — time per ROI and per plan, agreement,
and accuracy on the analytic phantoms.

dicompyler-core 0.5.6 needs ``pydicom<3``, so it runs in its own virtual environment
(``bench/.venv-dicompyler``, created on first use with ``pip install dicompyler-core==0.5.6 'pydicom<3'``).
Both engines read the same files; times are wall-clock on this machine (best of ``--repeat`` runs),
rtbank in-process, dicompyler-core in its process (its own clock, after start-up), both including
reading the RTSTRUCT and RTDOSE. dicompyler-core runs in its default mode (dose voxel centres).

Plans: the public vendor exports in tests/data, the largest structure set of a ``rtbank synth
--full-size`` patient (when rtbank.dicom.synth is installed), and a generated 30-ROI full-size pelvis
plan (bench/dvh_plan.py).

usage: .venv/bin/python bench/dvh.py [--repeat N] [--skip-dicompyler] [--update-docs] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import dvh_accuracy
import dvh_plan
import numpy as np
import pydicom

from rtbank.dicom.contours import StructureSet
from rtbank.dicom.dosegrid import DoseGrid, combine_plan_doses
from rtbank.dicom.dvh import DEFAULT_METRICS, ENGINE_VERSION, dvh_for_roi

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
VENV = ROOT / "bench" / ".venv-dicompyler"
COMMAND = ".venv/bin/python bench/dvh.py --update-docs"


@dataclass
class Plan:
    label: str
    rs: Path
    rds: list[Path]


@dataclass
class Timing:
    total_s: float
    cpu_s: float = 0.0
    per_roi_s: dict[int, float] = field(default_factory=dict)
    values: dict[int, dict[str, float | None]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)


def public_plans() -> list[Plan]:
    ray = DATA / "pyplanscoring/raystation_brain_srs_imrt"
    proton = DATA / "aptg-dcpt-let/plan03_ramp_full"
    return [
        Plan("RayStation brain SRS, 3 mm dose", next(ray.glob("RS*.dcm")), [next(ray.glob("RD*.dcm"))]),
        Plan(
            "RayStation proton phantom, 2 mm dose",
            next(proton.glob("RS*.dcm")),
            [
                p
                for p in proton.glob("RD*.dcm")
                if pydicom.dcmread(p, stop_before_pixels=True).DoseSummationType == "PLAN"
            ],
        ),
        Plan(
            "Pinnacle lung dose on TomoTherapy RTSTRUCT, 4 mm dose",
            next((DATA / "pyplanscoring/tomotherapy_plan").glob("RS*.dcm")),
            [next((DATA / "pyplanscoring/pinnacle_dicom_plan1").glob("RTDOSE*.dcm"))],
        ),
    ]


def synth_plan(work: Path) -> Plan | None:
    """The largest structure set (with its dose) of one `rtbank synth --full-size` patient."""
    try:
        import rtbank.dicom.synth  # noqa: F401
    except ImportError:
        return None
    out = work / "synth"
    if not out.exists():
        subprocess.run(
            [
                str(Path(sys.executable).parent / "rtbank"),
                "synth",
                "--patients",
                "1",
                "--full-size",
                "--out",
                str(out),
                "--seed",
                "0",
                "--workers",
                "1",
            ],
            check=True,
            capture_output=True,
        )
    best: tuple[int, Plan] | None = None
    for rs in out.rglob("RTSTRUCT_*/*.dcm"):
        ds = pydicom.dcmread(rs, stop_before_pixels=True)
        frame = ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID
        doses = [
            p
            for p in rs.parent.parent.glob("RTDOSE_*/*.dcm")
            if pydicom.dcmread(p, stop_before_pixels=True).FrameOfReferenceUID == frame
        ]
        if doses and (best is None or len(ds.StructureSetROISequence) > best[0]):
            best = (len(ds.StructureSetROISequence), Plan("", rs, doses[:1]))
    if best is None:
        return None
    best[1].label = f"rtbank synth --full-size, {best[0]} ROIs, 2.5 mm dose"
    return best[1]


def generated_plan(work: Path) -> Plan:
    rs, rd = dvh_plan.write(work / "pelvis30")
    return Plan("generated pelvis, 30 ROIs incl. 23 L body, 2.5 mm dose", rs, [rd])


def time_rtbank(plan: Plan, repeat: int) -> Timing:
    best: Timing | None = None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        structure_set = StructureSet.from_dataset(pydicom.dcmread(plan.rs, force=True))
        grid = combine_plan_doses([DoseGrid.from_dataset(pydicom.dcmread(p, force=True)) for p in plan.rds])
        timing = Timing(0.0)
        for roi in structure_set.rois:
            if not roi.planes:
                continue
            t0 = time.perf_counter()
            result = dvh_for_roi(structure_set, roi, grid)
            values, _ = result.metrics(DEFAULT_METRICS)
            timing.per_roi_s[roi.number] = time.perf_counter() - t0
            timing.values[roi.number] = values | {
                "volume_cc": result.volume_cc,
                "covered": result.covered_volume_cc,
            }
            timing.names[roi.number] = roi.name
        timing.total_s, timing.cpu_s = time.perf_counter() - start, time.process_time() - cpu
        if best is None or timing.total_s < best.total_s:
            best = timing
    assert best is not None
    return best


def time_dicompyler(plan: Plan, numbers: list[int], repeat: int) -> Timing:
    best: Timing | None = None
    for _ in range(repeat):
        done = subprocess.run(
            [
                str(VENV / "bin" / "python"),
                str(ROOT / "bench" / "dvh_dicompyler.py"),
                str(plan.rs),
                str(plan.rds[0]),
                *map(str, numbers),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        data = json.loads(done.stdout)
        timing = Timing(data["total_seconds"], data["cpu_seconds"])
        for key, item in data["rois"].items():
            timing.per_roi_s[int(key)] = item["seconds"]
            timing.values[int(key)] = item.get("metrics", {})
            timing.names[int(key)] = item["name"]
        if best is None or timing.total_s < best.total_s:
            best = timing
    assert best is not None
    return best


def ensure_dicompyler() -> bool:
    if (VENV / "bin" / "python").exists():
        return True
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(VENV / "bin" / "pip"), "install", "--quiet", "dicompyler-core==0.5.6", "pydicom<3"], check=True
    )
    return True


# ------------------------------------------------------------------ report
def plan_rows(plan: Plan, ours: Timing, theirs: Timing | None) -> str:
    """One Markdown table row: times, ratios and the Dmean agreement of both engines on one plan."""
    largest = max(ours.values, key=lambda n: ours.values[n]["volume_cc"] or 0)
    cells = [plan.label, str(len(ours.per_roi_s)), f"{ours.total_s:.2f} ({ours.cpu_s:.2f})"]
    per_roi = statistics.median(ours.per_roi_s.values())
    if theirs is None:
        cells += ["–"] * 3 + [
            f"{per_roi * 1000:.0f} / –",
            "–",
            f"{ours.per_roi_s[largest]:.2f} / –",
            "–",
            "–",
        ]
        return "| " + " | ".join(cells) + " |"
    common = [n for n in ours.per_roi_s if n in theirs.per_roi_s and "error" not in theirs.values.get(n, {})]
    ratios = [ours.per_roi_s[n] / theirs.per_roi_s[n] for n in common if theirs.per_roi_s[n] > 0]
    # dicompyler-core finds no volume in ROIs smaller than its dose voxels: count them apart
    empty = [n for n in common if not theirs.values[n].get("volume_cc")]
    dmean = [
        abs(ours.values[n]["Dmean"] - theirs.values[n]["Dmean"])  # type: ignore[operator]
        for n in common
        if n not in empty
        and ours.values[n]["Dmean"] is not None
        and ours.values[n]["covered"] == ours.values[n]["volume_cc"]
    ]
    their_median = statistics.median(theirs.per_roi_s[n] for n in common)
    cells += [
        f"{theirs.total_s:.2f} ({theirs.cpu_s:.2f})",
        f"**{ours.total_s / theirs.total_s:.2f}**",
        f"{per_roi * 1000:.0f} / {their_median * 1000:.0f}",
        f"{statistics.median(ratios):.2f}",
        f"{ours.per_roi_s[largest]:.2f} / {theirs.per_roi_s.get(largest, float('nan')):.2f}",
        f"{statistics.median(dmean):.3f} / {max(dmean):.2f}" if dmean else "–",
        str(len(empty)),
    ]
    return "| " + " | ".join(cells) + " |"


def render(
    plans: list[tuple[Plan, Timing, Timing | None]],
    accuracy: dict[str, list[dvh_accuracy.Row]],
    seconds: float,
) -> str:
    lines = [
        "## DVH",
        "",
        f"Command: `{COMMAND}` (about {seconds / 60:.0f} min; `--skip-dicompyler` for rtbank alone). "
        f"rtbank engine `{ENGINE_VERSION}` against dicompyler-core 0.5.6 in its default mode; "
        "whole-plan times include reading the RTSTRUCT and RTDOSE; best of the runs; the default metric set "
        "(Dmin, Dmean, Dmax, D99%, D95%, D50%, D5%, D1%, D0.03cc) for every ROI with contours.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} at the end (shared with other work: compare "
        f"ratios rather than absolute times); Python {platform.python_version()}, numpy {np.__version__}.",
        "",
        "| plan | ROIs | rtbank plan, s (CPU s) | dicompyler-core plan, s (CPU s) | "
        "ratio rtbank/dicompyler | median per ROI (ms, rtbank / dicompyler) | median per-ROI ratio | "
        "largest ROI (s, rtbank / dicompyler) | Dmean difference, median / max (Gy) | "
        "ROIs dicompyler-core finds empty |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for plan, ours, theirs in plans:
        lines.append(plan_rows(plan, ours, theirs))
    lines += [
        "",
        "Dmean differences are over ROIs fully inside the dose grid that both engines find: a sanity check "
        "that both read the same geometry and dose, not a measure of accuracy (dicompyler-core samples dose "
        "voxel centres only and has no end caps; it finds no volume in ROIs smaller than its voxels, e.g. "
        "fiducial markers, and reports 0 Gy for them).",
        "",
    ]
    lines += [
        "Accuracy on the analytic phantoms (docs/dvh.md; clinical = Dmean, D99%, D95%, D50%, D5%, D1%, "
        "D0.03cc; values beyond 3 % of the closed-form truth / values):",
        "",
        "| engine | fine: 0.5 mm contours, 1–3 mm dose | 1–3 mm contours and dose | Dx reported as 0 Gy |",
        "|---|---:|---:|---:|",
    ]
    for engine in ("rtbank", "dicompyler-core"):
        fine, coarse = accuracy.get(f"{engine} fine"), accuracy.get(f"{engine} coarse")
        if fine is None or coarse is None:
            continue
        cells = []
        for rows in (fine, coarse):
            off, total = dvh_accuracy.beyond(rows, dvh_accuracy.CLINICAL)
            cells.append(f"{off}/{total} ({100 * off / total:.1f} %)")
        cells.append(str(dvh_accuracy.zero_doses(fine + coarse)))
        lines.append(f"| {engine} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def update_docs(section: str) -> None:
    """Replace (or add) the ``## DVH`` section of docs/benchmarks.md, leaving the others alone."""
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.strip() == "## DVH"), None)
    if start is None:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        text = "".join(lines[:start]) + section + ("\n" if end < len(lines) else "") + "".join(lines[end:])
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs per plan and engine (best is kept)")
    parser.add_argument("--skip-dicompyler", action="store_true")
    parser.add_argument(
        "--update-docs", action="store_true", help="write the section into docs/benchmarks.md"
    )
    parser.add_argument("--work", type=Path, help="keep generated plans here (default: a temporary folder)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="rtbank-bench-dvh-"))
    with_dicompyler = not args.skip_dicompyler and ensure_dicompyler()
    try:
        plans = public_plans() + [p for p in (synth_plan(work), generated_plan(work)) if p is not None]
        results = []
        for plan in plans:
            ours = time_rtbank(plan, args.repeat)
            theirs = time_dicompyler(plan, sorted(ours.per_roi_s), args.repeat) if with_dicompyler else None
            results.append((plan, ours, theirs))
            print(plan_rows(plan, ours, theirs), file=sys.stderr)
        accuracy = {
            "rtbank fine": dvh_accuracy.rtbank_rows(
                dvh_accuracy.write_cases(work / "phantoms", dvh_accuracy.FINE)
            ),
            "rtbank coarse": dvh_accuracy.rtbank_rows(
                dvh_accuracy.write_cases(work / "phantoms", dvh_accuracy.COARSE)
            ),
        }
        if with_dicompyler:
            python = VENV / "bin" / "python"
            for key, configs in (("fine", dvh_accuracy.FINE), ("coarse", dvh_accuracy.COARSE)):
                cases = dvh_accuracy.write_cases(work / "phantoms", configs)
                accuracy[f"dicompyler-core {key}"] = dvh_accuracy.dicompyler_rows(cases, python)
        section = render(results, accuracy, time.perf_counter() - started)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(section)
    if args.update_docs:
        update_docs(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

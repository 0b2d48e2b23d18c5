"""Harvest benchmark: rtbank's reference walk against a plain dcmtk ``movescu`` of the same series.

A ``rtbank synth --full-size`` archive (default 10 patients) is loaded into one real Orthanc 1.10 on loopback
(``StorageAccessOnFind: Always``). Then, each into a fresh rtbank (SQLite, its own receiver):

* **harvest**: ``rtbank harvest RV --from … --to …`` — records by C-FIND, the ten steps per treated plan
  (C-FINDs, C-GETs of small RT objects to read references, C-MOVEs), filing what arrives in the same
  process, verification and manifest — until it exits;
* **plain C-MOVE**: one ``movescu`` association moving exactly the series/instances the harvest must
  collect (a SERIES-level C-MOVE per wholly wanted series, an IMAGE-level C-MOVE with the UID list
  otherwise; no queries, no reference walking: the near-limit), filed by ``rtbank worker --kinds ingest``,
  until every object is in the catalog.

Each leg has one rtbank process filing (the harvest command itself; the worker), and both end at the same
point (every object in the catalog). The harvest run is checked for 0 missing and 0 decoys in the same run.
Prints seconds per patient, the ratio (target ≤ 1.3) and the load average (the machine may be shared).

    .venv/bin/python bench/harvest.py [--patients 10] [--seed 11] [--first harvest|move] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harvest.support import DatasetIndex, treated_plans  # noqa: E402
from tests.integration.orthanc import Orthanc  # noqa: E402
from tests.integration.rtbank_env import RtbankEnv, wait_for  # noqa: E402

from rtbank.dicom.synth import generate_archive  # noqa: E402

WINDOW = ("2000-01-01", "2030-12-31")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def fresh_env(home: Path, orthanc: Orthanc) -> RtbankEnv:
    (home / "uploads").mkdir(parents=True, exist_ok=True)
    env = RtbankEnv(home, {"RTBANK_LOG_LEVEL": "ERROR"})
    env.run("node", "add", "TPS", "--ae", "TPS", "--host", "127.0.0.1", "--port", "104")
    env.run(
        "node", "add", "RV", "--ae", orthanc.aet, "--host", "127.0.0.1", "--port", str(orthanc.dicom_port),
        "--roles", "harvest",
    )  # fmt: skip
    orthanc.set_modality("rtbank", "RTBANK", env.dicom_port)  # the C-MOVE destination: this env's receiver
    env.start_receiver()
    return env


def filed(env: RtbankEnv) -> set[str]:
    return set(
        env.query(
            "from rtbank.catalog.models import Instance\n"
            "out = list(Instance.objects.values_list('sop_instance_uid', flat=True))"
        )
    )


def run_harvest(root: Path, orthanc: Orthanc) -> tuple[float, set[str], str]:
    env = fresh_env(root / "harvest-home", orthanc)
    try:
        # Orthanc has no C-FIND result limit: one record query for the whole window suits it.
        env.run("harvest-source", "RV", "--chunk-days", "11000")
        started = time.monotonic()
        result = env.run(
            "harvest",
            "RV",
            "--from",
            WINDOW[0],
            "--to",
            WINDOW[1],
            "--no-progress",
            check=False,
            timeout=7200,
        )
        elapsed = time.monotonic() - started
        if result.returncode != 0:
            print(result.stdout[-3000:], result.stderr[-3000:], file=sys.stderr)
        return elapsed, filed(env), result.stdout.splitlines()[0] if result.stdout else ""
    finally:
        env.close()


def move_queries(folder: Path, manifest: dict, expected: set[str]) -> list[Path]:
    """One C-MOVE identifier per series holding wanted objects: the whole series, or its wanted instances."""
    members: dict[str, list[dict]] = defaultdict(list)
    for f in manifest["files"]:
        members[f["series_instance_uid"]].append(f)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, (series, files) in enumerate(sorted(members.items())):
        wanted = [f["sop_instance_uid"] for f in files if f["sop_instance_uid"] in expected]
        if not wanted:
            continue
        ds = Dataset()
        ds.QueryRetrieveLevel = "SERIES" if len(wanted) == len(files) else "IMAGE"
        ds.StudyInstanceUID = files[0]["study_instance_uid"]
        ds.SeriesInstanceUID = series
        if len(wanted) < len(files):
            ds.SOPInstanceUID = wanted
        path = folder / f"q{n:05d}.dcm"
        pydicom.dcmwrite(path, ds, implicit_vr=True, little_endian=True)
        paths.append(path)
    return paths


def run_plain_move(
    root: Path, orthanc: Orthanc, queries: list[Path], expected: set[str]
) -> tuple[float, set[str]]:
    env = fresh_env(root / "move-home", orthanc)
    try:
        env.start("worker", "worker", "--kinds", "ingest")
        cmd = [
            "movescu", "-S", "-aet", "RTBANK", "-aec", orthanc.aet, "-aem", "RTBANK",
            "127.0.0.1", str(orthanc.dicom_port), *map(str, queries),
        ]  # fmt: skip
        started = time.monotonic()
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "TCP_NODELAY": "1"})
        wait_for(
            lambda: len(filed(env) & expected) >= len(expected), 3600, 0.5, "the plain C-MOVE to be filed"
        )
        elapsed = time.monotonic() - started
        return elapsed, filed(env)
    finally:
        env.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--first", choices=("harvest", "move"), default="harvest", help="which leg runs first"
    )
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="rtbank-bench-harvest-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, load average {load()} at the start")
    t0 = time.monotonic()
    manifest = generate_archive(root / "archive", args.patients, seed=args.seed, full_size=True)
    paths = [root / "archive" / f["path"] for f in manifest["files"]]
    size_mb = sum(p.stat().st_size for p in paths) / 1e6
    print(
        f"archive: {len(paths)} files, {size_mb:.0f} MB, {args.patients} patients "
        f"({time.monotonic() - t0:.0f} s)"
    )
    orthanc = Orthanc(root / "orthanc").start()
    try:
        t0 = time.monotonic()
        orthanc.upload(paths)
        print(f"Orthanc loaded over REST in {time.monotonic() - t0:.0f} s")
        index = DatasetIndex(paths)
        expected = set().union(*(index.expected(p["sop_instance_uid"]) for p in treated_plans(manifest)))
        decoys = set(index.objects) - expected
        by_uid = {f["sop_instance_uid"]: root / "archive" / f["path"] for f in manifest["files"]}
        expected_mb = sum(by_uid[u].stat().st_size for u in expected) / 1e6
        queries = move_queries(root / "queries", manifest, expected)
        legs = ("harvest", "move") if args.first == "harvest" else ("move", "harvest")
        results: dict[str, tuple] = {}
        for leg in legs:
            print(f"{leg}: starting (load average {load()})", flush=True)
            if leg == "harvest":
                results[leg] = run_harvest(root, orthanc)
            else:
                results[leg] = run_plain_move(root, orthanc, queries, expected)
            print(f"{leg}: {results[leg][0]:.1f} s (load average {load()})", flush=True)
    finally:
        orthanc.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    t_h, got_h, summary = results["harvest"]
    t_m, got_m = results["move"]
    missing, extra = expected - got_h, got_h & decoys
    n = args.patients
    print(f"expected objects: {len(expected)} ({expected_mb:.0f} MB); decoys at the source: {len(decoys)}")
    print(f"plain C-MOVE: {len(queries)} C-MOVEs on one association")
    print(
        f"harvest:      {t_h:7.1f} s  {t_h / n:6.2f} s/patient  missing {len(missing)}  "
        f"decoys {len(extra)}  ({summary})"
    )
    print(
        f"plain C-MOVE: {t_m:7.1f} s  {t_m / n:6.2f} s/patient  filed {len(got_m & expected)}/{len(expected)}"
    )
    print(f"ratio harvest / plain C-MOVE: {t_h / t_m:.2f}  (target <= 1.3); load average at the end {load()}")
    return 0 if not missing and not extra and len(got_m & expected) == len(expected) else 1


if __name__ == "__main__":
    raise SystemExit(main())

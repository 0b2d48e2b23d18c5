"""Harvest benchmark: rtbank's reference walk against a plain dcmtk ``movescu`` of the same series.

A ``rtbank synth --full-size`` archive (default 10 patients) is loaded into a real Orthanc on loopback.
Then, each into a fresh rtbank (receiver + one worker, SQLite):

* **harvest**: ``rtbank harvest SRC --from … --to …`` until its manifest is written (every object filed);
* **plain C-MOVE**: ``movescu`` of exactly the series/instances the harvest must collect (no queries, no
  reference walking: the near-limit), until the worker has filed everything.

Both end at the same point (objects in the catalog), and the harvest run is checked for 0 missing and
0 decoys in the same run. Prints seconds per patient and the ratio (target ≤ 1.3).

    .venv/bin/python bench/harvest.py [--patients 10] [--keep DIR]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harvest.support import DatasetIndex, treated_plans  # noqa: E402
from tests.integration.orthanc import Orthanc  # noqa: E402
from tests.integration.rtbank_env import RtbankEnv, wait_for  # noqa: E402

from rtbank.dicom.synth import generate_archive  # noqa: E402


def fresh_env(home: Path) -> RtbankEnv:
    (home / "uploads").mkdir(parents=True, exist_ok=True)
    env = RtbankEnv(home, {"RTBANK_LOG_LEVEL": "ERROR"})
    env.run("node", "add", "TPS", "--ae", "TPS", "--host", "127.0.0.1", "--port", "104")
    return env


def source(root: Path, name: str, storage: Path, env: RtbankEnv) -> Orthanc:
    copy = root / name / "storage"
    shutil.copytree(storage, copy)
    return Orthanc(root / name, storage=copy, modalities={"rtbank": ("RTBANK", env.dicom_port)}).start()


def filed(env: RtbankEnv) -> set[str]:
    return set(
        env.query(
            "from rtbank.catalog.models import Instance\n"
            "out = list(Instance.objects.values_list('sop_instance_uid', flat=True))"
        )
    )


def run_harvest(root: Path, storage: Path) -> tuple[float, set[str], RtbankEnv, Orthanc]:
    env = fresh_env(root / "harvest-home")
    env.start_receiver()
    orthanc = source(root, "orthanc-harvest", storage, env)
    env.run(
        "node",
        "add",
        "RV",
        "--ae",
        orthanc.aet,
        "--host",
        "127.0.0.1",
        "--port",
        str(orthanc.dicom_port),
        "--roles",
        "harvest",
    )
    env.run("harvest-source", "RV", "--chunk-days", "11000")
    env.start_worker()
    started = time.monotonic()
    result = env.run(
        "harvest",
        "RV",
        "--from",
        "2000-01-01",
        "--to",
        "2030-12-31",
        "--no-progress",
        check=False,
        timeout=7200,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        print(result.stdout, result.stderr, file=sys.stderr)
    return elapsed, filed(env), env, orthanc


def run_plain_move(
    root: Path, storage: Path, manifest: dict, expected: set[str]
) -> tuple[float, set[str], RtbankEnv, Orthanc]:
    env = fresh_env(root / "move-home")
    env.start_receiver()
    orthanc = source(root, "orthanc-move", storage, env)
    env.run(
        "node",
        "add",
        "RV",
        "--ae",
        orthanc.aet,
        "--host",
        "127.0.0.1",
        "--port",
        str(orthanc.dicom_port),
        "--roles",
        "harvest",
    )
    env.start_worker()
    members: dict[str, list[dict]] = defaultdict(list)
    for f in manifest["files"]:
        members[f["series_instance_uid"]].append(f)
    commands = []
    for series, files in members.items():
        wanted = [f for f in files if f["sop_instance_uid"] in expected]
        if not wanted:
            continue
        study = files[0]["study_instance_uid"]
        if len(wanted) == len(files):
            commands.append(
                [
                    "-k",
                    "QueryRetrieveLevel=SERIES",
                    "-k",
                    f"StudyInstanceUID={study}",
                    "-k",
                    f"SeriesInstanceUID={series}",
                ]
            )
        else:
            commands += [
                [
                    "-k",
                    "QueryRetrieveLevel=IMAGE",
                    "-k",
                    f"StudyInstanceUID={study}",
                    "-k",
                    f"SeriesInstanceUID={series}",
                    "-k",
                    f"SOPInstanceUID={f['sop_instance_uid']}",
                ]
                for f in wanted
            ]
    base = [
        "movescu",
        "-S",
        "-aet",
        "RTBANK",
        "-aec",
        orthanc.aet,
        "-aem",
        "RTBANK",
        "127.0.0.1",
        str(orthanc.dicom_port),
    ]
    started = time.monotonic()
    for keys in commands:
        subprocess.run(
            [*base, *keys], check=True, capture_output=True, env={**os.environ, "TCP_NODELAY": "1"}
        )
    wait_for(lambda: len(filed(env)) >= len(expected), 3600, 0.5, "the plain C-MOVE to be filed")
    elapsed = time.monotonic() - started
    return elapsed, filed(env), env, orthanc


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="rtbank-bench-harvest-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    manifest = generate_archive(root / "archive", args.patients, seed=args.seed, full_size=True)
    paths = [root / "archive" / f["path"] for f in manifest["files"]]
    size_mb = sum(p.stat().st_size for p in paths) / 1e6
    print(
        f"archive: {len(paths)} files, {size_mb:.0f} MB, {args.patients} patients ({time.monotonic() - t0:.0f} s)"
    )
    storage = root / "orthanc-template"
    loader = Orthanc(root / "orthanc-load", storage=storage).start()
    loader.upload(paths)
    loader.stop()
    index = DatasetIndex(paths)
    expected = set().union(*(index.expected(p["sop_instance_uid"]) for p in treated_plans(manifest)))
    decoys = set(index.objects) - expected
    envs = []
    try:
        t_h, got_h, env_h, o_h = run_harvest(root, storage)
        envs += [(env_h, o_h)]
        missing, extra = expected - got_h, got_h & decoys
        t_m, got_m, env_m, o_m = run_plain_move(root, storage, manifest, expected)
        envs += [(env_m, o_m)]
    finally:
        for env, orthanc in envs:
            env.close()
            orthanc.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    n = args.patients
    moved_mb = size_mb * len(expected) / max(1, len(paths))
    print(f"expected objects: {len(expected)} (~{moved_mb:.0f} MB); decoys at the source: {len(decoys)}")
    print(f"harvest:     {t_h:7.1f} s  {t_h / n:6.2f} s/patient  missing {len(missing)}  decoys {len(extra)}")
    print(
        f"plain C-MOVE:{t_m:7.1f} s  {t_m / n:6.2f} s/patient  filed {len(got_m & expected)}/{len(expected)}"
    )
    print(f"ratio harvest / plain C-MOVE: {t_h / t_m:.2f}  (target <= 1.3)")
    return 0 if not missing and not extra else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Ingest throughput: rtbank (until fully indexed) vs Orthanc vs dcmtk storescp, same files, same sender.

    .venv/bin/python bench/ingest.py [--instances 400] [--patients 2] [--keep]

The files are a `rtbank synth --full-size` archive (512×512 CT slices plus the RT objects), sent with dcmtk
`storescu` (TCP_NODELAY=1 on both sides) over 1 and 4 parallel associations. Each target starts on a fresh
store. rtbank counts as done when every instance is in the catalog and no work is pending; Orthanc (Debian,
default SQLite index, StorageArea fsync on) when its C-STORE responses are in; storescp (no index, no fsync)
is the near-limit. A separate, untimed run counts fsync calls per stored instance under `strace -c`.
Prints instances/s and the ratios rtbank/Orthanc and rtbank/storescp.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.rtbank_env import RtbankEnv, wait_for  # noqa: E402
from tests.ports import free_port  # noqa: E402

NODELAY = {**os.environ, "TCP_NODELAY": "1"}


def make_files(work: Path, patients: int, limit: int) -> list[Path]:
    out = work / "archive"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rtbank.cli",
            "synth",
            "--patients",
            str(patients),
            "--full-size",
            "--out",
            str(out),
            "--seed",
            "11",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    rt = [out / f["path"] for f in manifest["files"] if f["modality"] not in ("CT", "MR", "PT")]
    ct = [out / f["path"] for f in manifest["files"] if f["modality"] == "CT"]
    files = (rt + ct)[:limit]
    return files


def send(port: int, files: list[Path], parallel: int, called: str = "RTBANK") -> float:
    chunks = [files[i::parallel] for i in range(parallel)]
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["storescu", "-R", "-aet", "BENCH", "-aec", called, "127.0.0.1", str(port), *map(str, c)],
            env=NODELAY,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for c in chunks
    ]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"storescu failed: {err.decode()[-500:]}")
    return time.perf_counter() - started


def bench_rtbank(files: list[Path], parallel: int, processes: int, work: Path, workers: int = 1) -> float:
    env = RtbankEnv(
        Path(tempfile.mkdtemp(dir=work)),
        {"RTBANK_ALLOW_ANY_AE": "1", "RTBANK_WORK_POLL": "0.05", "RTBANK_SPOOL_RESERVE_MB": "64"},
    )
    try:
        env.start("receiver", "receive", "--processes", str(processes))
        wait_for(env.echo, 60, what="receiver")
        for n in range(workers):
            env.start_worker(f"worker-{n + 1}")
        time.sleep(1.0)  # let the worker start (Django import) before the clock runs
        started = time.perf_counter()
        send(env.dicom_port, files, parallel)
        wait_for(lambda: filed(env) >= len(files), 900, 0.05, "indexing")
        elapsed = time.perf_counter() - started
        env.wait_idle()
        return elapsed
    finally:
        env.close()


def filed(env: RtbankEnv) -> int:
    """Current instances in the catalog, read straight from the SQLite file: polling through `rtbank stats`
    would start a Python process (a core-second of Django start-up) per poll and slow rtbank down itself."""
    with sqlite3.connect(f"file:{env.home / 'rtbank.sqlite3'}?mode=ro", uri=True, timeout=30) as db:
        return db.execute("SELECT count(*) FROM catalog_instance WHERE state = 'current'").fetchone()[0]


def orthanc_config(folder: Path, dicom_port: int, http_port: int) -> Path:
    config = {
        "Name": "bench",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "SyncStorageArea": True,
        "StorageCompression": False,
        "Plugins": [],
        "ConcurrentJobs": 2,
    }
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config))
    return path


def bench_orthanc(files: list[Path], parallel: int, work: Path) -> float:
    folder = Path(tempfile.mkdtemp(dir=work))
    dicom_port, http_port = free_port(), free_port()
    proc = subprocess.Popen(
        ["Orthanc", str(orthanc_config(folder, dicom_port, http_port))],
        env=NODELAY,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: (
                subprocess.run(
                    ["echoscu", "-aec", "ORTHANC", "127.0.0.1", str(dicom_port)], capture_output=True
                ).returncode
                == 0
            ),
            60,
            what="Orthanc",
        )
        return send(dicom_port, files, parallel, called="ORTHANC")
    finally:
        proc.terminate()
        proc.wait(30)


def bench_storescp(files: list[Path], parallel: int, work: Path) -> float:
    folder = Path(tempfile.mkdtemp(dir=work))
    port = free_port()
    proc = subprocess.Popen(
        ["storescp", "--fork", "-od", str(folder), str(port)],
        env=NODELAY,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: subprocess.run(["echoscu", "127.0.0.1", str(port)], capture_output=True).returncode == 0,
            30,
            what="storescp",
        )
        return send(port, files, parallel, called="ANY-SCP")
    finally:
        proc.terminate()
        proc.wait(30)


def count_fsyncs(files: list[Path], work: Path) -> dict[str, float]:
    """Untimed: fsync/fdatasync calls per stored instance in the receiver and in the worker."""
    env = RtbankEnv(Path(tempfile.mkdtemp(dir=work)), {"RTBANK_ALLOW_ANY_AE": "1"})
    out: dict[str, float] = {}
    try:
        traces = {name: env.home / f"{name}.strace" for name in ("receiver", "worker")}
        env.start(
            "receiver",
            "receive",
            wrapper=["strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", str(traces["receiver"])],
        )
        wait_for(env.echo, 60, what="receiver")
        send(env.dicom_port, files, 1)
        env.stop_traced("receiver")
        env.start(
            "worker",
            "worker",
            wrapper=["strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", str(traces["worker"])],
        )
        wait_for(lambda: env.stats()["instances"] >= len(files), 600, 0.5, "indexing")
        env.wait_idle()
        env.stop_traced("worker")
        for name, path in traces.items():
            calls = 0
            for line in path.read_text().splitlines():
                parts = line.split()
                if parts and parts[-1] in ("fsync", "fdatasync"):
                    calls += int(parts[3]) if len(parts) >= 5 else int(parts[-2])
            out[name] = calls / len(files)
    finally:
        env.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--patients", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    for tool in ("storescu", "storescp", "Orthanc", "strace"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench/ingest.py needs {tool} (Debian packages dcmtk, orthanc, strace)")
    work = Path(tempfile.mkdtemp(prefix="rtbank-bench-ingest-"))
    try:
        files = make_files(work, args.patients, args.instances)
        mb = sum(f.stat().st_size for f in files) / 1e6
        print(f"{len(files)} instances, {mb:.0f} MB (synth --full-size)")
        rows = []
        for parallel in (1, 4):
            rt = bench_rtbank(files, parallel, 1, work)
            # `rtbank up --receivers 2 --workers 2`: two receiver processes on one port, two workers
            rt2 = bench_rtbank(files, parallel, 2, work, workers=2) if parallel > 1 else None
            orth = bench_orthanc(files, parallel, work)
            scp = bench_storescp(files, parallel, work)
            n = len(files)
            best = min(t for t in (rt, rt2) if t is not None)
            rows.append(
                (
                    parallel,
                    n / rt,
                    n / rt2 if rt2 else None,
                    n / orth,
                    n / scp,
                    (n / best) / (n / orth),
                    (n / best) / (n / scp),
                )
            )
        print(
            f"{'assoc':>5} {'rtbank':>8} {'rtbank 2+2':>10} {'Orthanc':>8} {'storescp':>9} "
            f"{'rt/Orthanc':>10} {'rt/storescp':>11}   (instances/s)"
        )
        for p, rt, rt2, orth, scp, r1, r2 in rows:
            print(
                f"{p:>5} {rt:>8.1f} {rt2 if rt2 else float('nan'):>10.1f} {orth:>8.1f} {scp:>9.1f} "
                f"{r1:>10.2f} {r2:>11.2f}"
            )
        fsyncs = count_fsyncs(files[:100], work)
        print(
            f"fsync per stored instance: receiver {fsyncs['receiver']:.2f}, worker {fsyncs['worker']:.2f}; "
            "Orthanc SyncStorageArea=true (its default: one fsync per stored file, plus its SQLite index)"
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

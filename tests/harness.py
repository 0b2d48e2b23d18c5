"""`make test`: run the suite on SQLite and every database test again on a throwaway PostgreSQL.

The two passes run at the same time (``--sequential`` runs one after the other): much of the suite waits on
real services (receivers, Orthanc, Chromium, fsync), so two passes share a machine well. Each pass writes to
its own log under ``.test-artifacts/``; a line every minute says that both are alive, and each log is
printed whole when its pass ends.

The PostgreSQL cluster is created in a temporary folder on a free loopback port and removed at the end.
PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` user (see
FIELD-NOTES). pytest's exit code 5 ("no tests collected") counts as a failure: a pass that ran nothing
must never look green.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
PG_BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgres-only", action="store_true")
    parser.add_argument("--sequential", action="store_true", help="one pass after the other, output live")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments, e.g. -k receiver")
    args = parser.parse_args()
    started = time.monotonic()
    passes: dict[str, tuple[dict[str, str], list[str]]] = {}
    if not args.postgres_only:
        passes["sqlite"] = ({"RTBANK_TEST_DB": "sqlite"}, list(args.pytest_args))
    results: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        if not args.sqlite_only:
            url = stack.enter_context(postgres_cluster())
            passes["postgresql"] = (
                {"RTBANK_TEST_DB": "postgresql", "RTBANK_TEST_PG_URL": url},
                ["-m", "db", *args.pytest_args],
            )
        if args.sequential or len(passes) == 1:
            for name, (env_extra, extra) in passes.items():
                results[name] = run_pytest(env_extra, extra)
        else:
            results = run_together(passes)
    minutes = (time.monotonic() - started) / 60
    print(f"\nrtbank test harness: {results} in {minutes:.1f} min")
    return 0 if results and all(code == 0 for code in results.values()) else 1


def run_together(passes: dict[str, tuple[dict[str, str], list[str]]]) -> dict[str, int]:
    """Start every pass at once, each into its own log; print each log when its pass ends."""
    logs = ROOT / ".test-artifacts"
    logs.mkdir(exist_ok=True)
    running: dict[str, tuple[subprocess.Popen[bytes], Path, float]] = {}
    for name, (env_extra, extra) in passes.items():
        log = logs / f"pytest-{name}.log"
        cmd = [sys.executable, "-m", "pytest", *extra]
        print(f"=== {name}: {' '.join(cmd)} (log: {log})", flush=True)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env={**os.environ, **env_extra}, stdout=out, stderr=subprocess.STDOUT
            )
        running[name] = (proc, log, time.monotonic())
    results: dict[str, int] = {}
    last_note = time.monotonic()
    while running:
        time.sleep(1)
        for name, (proc, log, began) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[name]
            results[name] = proc.returncode
            print(
                f"\n=== {name}: exit {proc.returncode} after {(time.monotonic() - began) / 60:.1f} min",
                flush=True,
            )
            sys.stdout.write(log.read_text(errors="replace"))
            sys.stdout.flush()
        if running and time.monotonic() - last_note >= 60:
            last_note = time.monotonic()
            print(f"... still running: {', '.join(running)}", flush=True)
    return results


def run_pytest(env_extra: dict[str, str], extra: list[str]) -> int:
    env = {**os.environ, **env_extra}
    cmd = [sys.executable, "-m", "pytest", *extra]
    print(f"\n=== {env_extra.get('RTBANK_TEST_DB')}: {' '.join(cmd)}", flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


class postgres_cluster:
    """A PostgreSQL cluster for one test run: ``with postgres_cluster() as url: …``."""

    def __enter__(self) -> str:
        if not PG_BIN_CANDIDATES:
            raise SystemExit("PostgreSQL server binaries not found (Debian package postgresql)")
        self.bin = PG_BIN_CANDIDATES[0]
        self.dir = Path(tempfile.mkdtemp(prefix="rtbank-pg-"))
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            os.chmod(self.dir, 0o700)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        data = self.dir / "data"
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=on "
            "-c max_connections=200 -c shared_buffers=128MB"
        )
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def __exit__(self, *exc: object) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        subprocess.run([*self.as_user, str(self.bin / tool), *args], check=check, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    raise SystemExit(main())

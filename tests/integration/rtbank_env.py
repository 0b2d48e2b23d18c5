"""Real rtbank processes for integration tests: a fresh home and database, services on free ports.

The database follows the suite's pass: a SQLite file in the test's home, or a new database on the
harness's throwaway PostgreSQL cluster. Waiting is always a bounded poll, never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
RTBANK = [sys.executable, "-m", "rtbank.cli"]


def wait_for(
    predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class RtbankEnv:
    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.dicom_port = free_port()
        self.http_port = free_port()
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {
            **os.environ,
            "RTBANK_HOME": str(home),
            "RTBANK_DICOM_PORT": str(self.dicom_port),
            "RTBANK_HTTP_PORT": str(self.http_port),
            "RTBANK_SECRET_KEY": "integration-test-secret-key-0123456789-abcdefghij",
            "RTBANK_WORK_POLL": "0.05",
            "RTBANK_WORK_LEASE": "4",  # a killed worker's rows come back quickly in tests
            "RTBANK_LOG_LEVEL": "WARNING",
            "TCP_NODELAY": "1",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.env.pop("RTBANK_DATABASE_URL", None)
        self.database = None
        if os.environ.get("RTBANK_TEST_DB") == "postgresql":
            self.database = f"rtbank_it_{uuid.uuid4().hex[:12]}"
            _pg_admin(f'CREATE DATABASE "{self.database}"')
            base = os.environ["RTBANK_TEST_PG_URL"].rsplit("/", 1)[0]
            self.env["RTBANK_DATABASE_URL"] = f"{base}/{self.database}"
        self.run("migrate", "-v", "0")

    # --- commands -----------------------------------------------------------------------------------
    def run(
        self, *args: str, check: bool = True, timeout: float = 180, input: str | None = None
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [*RTBANK, *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"rtbank {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def query(self, code: str) -> Any:
        """Run Python in a Django shell of this env; the code must assign ``out``; returns it (JSON)."""
        script = f"import json\n{code}\nprint('@@' + json.dumps(out, default=str))"
        result = self.run("shell", "-c", script)
        line = next(line for line in result.stdout.splitlines() if line.startswith("@@"))
        return json.loads(line[2:])

    def stats(self) -> dict[str, Any]:
        return json.loads(self.run("stats", "--json").stdout)

    # --- services -----------------------------------------------------------------------------------
    def start(
        self, name: str, *args: str, wrapper: list[str] | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [*(wrapper or []), *RTBANK, *args],
            env={**self.env, **(env or {})},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = proc
        return proc

    def start_receiver(self, **kwargs: Any) -> subprocess.Popen:
        proc = self.start("receiver", "receive", **kwargs)
        wait_for(lambda: self.echo() or proc.poll() is not None, 30, what="the receiver to answer C-ECHO")
        assert proc.poll() is None, self.log("receiver")
        return proc

    def start_worker(self, name: str = "worker", **kwargs: Any) -> subprocess.Popen:
        return self.start(name, "worker", **kwargs)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.processes.pop(name, None)
        if proc and proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                # A slow graceful stop on a loaded machine is not what these tests check (the worker's
                # stop has its own test): end it, so one slow teardown does not fail an unrelated test.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)

    def stop_traced(self, name: str) -> None:
        """Stop a service started under ``strace`` by killing the traced process, not strace: a traced
        shutdown can take long on a loaded machine, and strace writes out its trace and exits once its
        tracee is gone."""
        strace = self.processes.pop(name)
        traced = subprocess.run(["pgrep", "-P", str(strace.pid)], capture_output=True, text=True).stdout
        for pid in traced.split():
            os.kill(int(pid), signal.SIGKILL)
        strace.wait(120)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM)

    def log(self, name: str) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # --- DICOM ---------------------------------------------------------------------------------------
    def echo(self, calling: str = "TPS") -> bool:
        result = subprocess.run(
            ["echoscu", "-aet", calling, "-aec", "RTBANK", "127.0.0.1", str(self.dicom_port)],
            capture_output=True,
            timeout=20,
        )
        return result.returncode == 0

    def storescu(
        self,
        *paths: Path | str,
        calling: str = "TPS",
        called: str = "RTBANK",
        extra: list[str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess:
        # -R: propose exactly the SOP classes of the files (the default list lacks e.g. RT Ion Plan).
        cmd = [
            "storescu",
            "-R",
            "-aet",
            calling,
            "-aec",
            called,
            "+sd",
            "+r",
            *(extra or []),
            "127.0.0.1",
            str(self.dicom_port),
            *map(str, paths),
        ]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "TCP_NODELAY": "1"}
        )

    def wait_idle(self, timeout: float = 120) -> dict[str, Any]:
        """Wait until the spool is empty and no work is pending or running."""

        def idle() -> dict[str, Any] | None:
            ready = (
                [p for p in (self.home / "spool" / "ready").glob("*.dcm")]
                if (self.home / "spool" / "ready").exists()
                else []
            )
            stats = self.stats()
            work = stats["work"]
            return stats if not ready and work["pending"] == 0 and work["in_progress"] == 0 else None

        return wait_for(idle, timeout, 0.3, "rtbank to finish indexing")

    def close(self) -> None:
        self.stop_all()
        if self.database:
            _pg_admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(os.environ["RTBANK_TEST_PG_URL"], autocommit=True) as conn:
        conn.execute(sql)

"""Helpers of the rules integration tests: a dcmtk storescp destination and the world set up in one shell."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pydicom

from tests.integration.rtbank_env import RtbankEnv, wait_for
from tests.ports import free_port

# The work kinds the rules tests need from a worker (other areas' stages, e.g. DVHs, would only cost time).
KINDS = "ingest,analysis,rules,forward,notify,cleanup,job"


@dataclass
class StoreScp:
    """A dcmtk storescp writing every received object to its own file (+uf), so duplicates show."""

    folder: Path
    port: int
    ae_title: str = "DEST"
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder.parent / f"storescp-{self.port}.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            ["storescp", "-aet", self.ae_title, "-od", str(self.folder), "+uf", str(self.port)],
            env={**os.environ, "TCP_NODELAY": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._answers, 20, 0.1, "storescp to answer C-ECHO")

    def _answers(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, "storescp exited"
        result = subprocess.run(
            ["echoscu", "-aet", "PROBE", "-aec", self.ae_title, "127.0.0.1", str(self.port)],
            capture_output=True,
            timeout=20,
        )
        return result.returncode == 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)

    def received(self) -> Counter[str]:
        """SOP Instance UID → how many times it arrived."""
        uids: Counter[str] = Counter()
        for path in self.folder.iterdir():
            if path.is_file() and not path.name.startswith("."):
                ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
                uids[str(ds.SOPInstanceUID)] += 1
        return uids


@contextmanager
def storescp(folder: Path, port: int | None = None, *, start: bool = True) -> Iterator[StoreScp]:
    scp = StoreScp(folder, port or free_port())
    if start:
        scp.start()
    try:
        yield scp
    finally:
        scp.stop()


def sql(env: RtbankEnv, query: str, params: tuple = ()) -> list[tuple]:
    """Read the env's database directly: a bounded poll costs milliseconds instead of a Django process.

    Write the query with ``%s`` placeholders (they become ``?`` on SQLite).
    """
    if env.database is None:
        import sqlite3

        with sqlite3.connect(f"file:{env.home / 'rtbank.sqlite3'}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute(query.replace("%s", "?"), params).fetchall()
    import psycopg

    with psycopg.connect(env.env["RTBANK_DATABASE_URL"]) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def settled(env: RtbankEnv, instances: int) -> bool:
    """``instances`` objects stored and none of the rules tests' work pending or running."""
    kinds = tuple(KINDS.split(","))
    marks = ", ".join(["%s"] * len(kinds))
    busy = sql(
        env,
        f"SELECT COUNT(*) FROM work_workitem WHERE state IN ('pending', 'in_progress') "  # noqa: S608
        f"AND kind IN ({marks}) AND (not_before IS NULL OR kind <> 'forward')",
        kinds,
    )[0][0]
    stored = sql(env, "SELECT COUNT(*) FROM catalog_instance")[0][0]
    ready = (
        any((env.home / "spool" / "ready").glob("*.dcm"))
        if (env.home / "spool" / "ready").exists()
        else False
    )
    return stored == instances and busy == 0 and not ready


def uids_of(*paths: Path) -> set[str]:
    return {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}


def setup_world(env: RtbankEnv, extra: str = "") -> None:
    """ODE (its TPS sends from 127.0.0.1), project TRIAL of ODE with its own AE title, then ``extra``."""
    env.query(f"""
import datetime as dt
from rtbank.institutions.models import Institution, Node
from rtbank.projects.services import add_project
ode = Institution.objects.create(code="ODE", name="Odense")
Node.objects.create(name="TPS", ae_title="TPS", host="127.0.0.1", port=104, institution=ode, roles=["send"])
trial = add_project("TRIAL", name="Trial", renew_by=dt.date.today() + dt.timedelta(days=365), \
institutions=["ODE"],
                    actor="test", ae_title="TRIAL_AE")
{extra}
out = trial.pk
""")

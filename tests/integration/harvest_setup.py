"""Shared set-up of the harvest integration tests.

* **One archive per test session**: ``rtbank synth`` with three patients (the generator gives the first three
  patients every quirk between them: missing slice, TomoTherapy-style dose, plan without dose, dangling
  record, trial plan, second structure set, unregistered series, QA phantom, untreated course), plus
  :func:`tests.harvest.support.add_quirks` (an RT Ion plan with Ion records and per-beam doses, a plan
  without structure set reference). The answer key is computed from the files themselves.
* **One Orthanc per configuration per session** (``StorageAccessOnFind`` Always / Never), loaded once over
  REST into a template storage folder that each configuration copies. The harvest only queries and
  retrieves, so tests share them; each test registers its own rtbank receiver as the C-MOVE destination
  ``rtbank`` over Orthanc's REST API (``PUT /modalities/rtbank``).
* **A fresh rtbank per test** (:class:`HarvestEnv`): its own home and database, the database cloned from
  one migrated template (a file copy on SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL) instead of
  migrating again, and set-up and checks each done in one process (:func:`setup_sources`,
  :func:`outcome`) rather than one ``rtbank`` command per step.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rtbank.dicom.synth import generate_archive
from tests.harvest.support import DatasetIndex, add_quirks, treated_plans
from tests.integration.conftest import require_tools
from tests.integration.orthanc import Orthanc
from tests.integration.rtbank_env import RtbankEnv, _pg_admin

PATIENTS, SEED = 3, 3
WINDOW = ("2000-01-01", "2030-12-31")
# Fast retries and polls for tests (the defaults suit a clinic's R&V system, not a loopback Orthanc).
TEST_SETTINGS = {
    "RTBANK_HARVEST_BACKOFF": "0.2",
    "RTBANK_HARVEST_BACKOFF_CAP": "2",
    "RTBANK_HARVEST_POLL": "0.02",
    "RTBANK_WORK_POLL": "0.02",
}


@dataclass
class Archive:
    folder: Path
    manifest: dict[str, Any]
    quirks: dict[str, Any]
    index: DatasetIndex
    _expected: dict[str, set[str]] = field(default_factory=dict)

    @property
    def paths(self) -> list[Path]:
        return [self.folder / f["path"] for f in self.manifest["files"]]

    @property
    def files(self) -> dict[str, Path]:
        return {f["sop_instance_uid"]: self.folder / f["path"] for f in self.manifest["files"]}

    @property
    def series_of(self) -> dict[str, str]:
        return {f["sop_instance_uid"]: f["series_instance_uid"] for f in self.manifest["files"]}

    def uids_of(self, modality: str) -> set[str]:
        return {f["sop_instance_uid"] for f in self.manifest["files"] if f["modality"] == modality}

    def expected(self) -> dict[str, set[str]]:
        """Treated plan → the objects its walk must collect (from the files themselves)."""
        if not self._expected:
            plans = [p["sop_instance_uid"] for p in treated_plans(self.manifest)]
            self._expected.update({uid: self.index.expected(uid) for uid in plans})
        return self._expected

    def expected_in(self, first: str, last: str) -> dict[str, set[str]]:
        """Plans treated in the window [first, last] (a record in it references them) → their objects."""
        a, b = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        treated = {
            p["sop_instance_uid"]
            for p in treated_plans(self.manifest)
            if any(a <= dt.date.fromisoformat(d[:10]) <= b for d in _iso(p["record_dates"]))
        }
        return {uid: objs for uid, objs in self.expected().items() if uid in treated}

    def all_expected(self) -> set[str]:
        return set().union(*self.expected().values())

    def decoys(self) -> set[str]:
        return set(self.index.objects) - self.all_expected()

    def dangling_plans(self) -> set[str]:
        found = set()
        for patient in self.manifest["patients"]:
            for anomaly in patient["anomalies"]:
                if anomaly["kind"] == "dangling_record":
                    found.add(anomaly["detail"].split("RT plan ")[1].split(",")[0])
        return found

    def window(self, *patients: int) -> tuple[str, str]:
        """The first and last treatment day of the given patients (by index in the archive)."""
        days = [
            d
            for i in patients
            for plan in self.manifest["patients"][i]["plans"]
            for d in _iso(plan["record_dates"])
        ]
        return min(days), max(days)

    def patient_id(self, index: int) -> str:
        return str(self.manifest["patients"][index]["patient_id"])


def _iso(days: list[str]) -> list[str]:
    """Manifest dates as YYYY-MM-DD (they may be written as YYYYMMDD)."""
    return [d if "-" in d else f"{d[:4]}-{d[4:6]}-{d[6:8]}" for d in days]


# --- the session's archive and Orthancs --------------------------------------------------------------
class Shared:
    """The session's archive, its loaded Orthanc storage and one running Orthanc per configuration."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rtbank-harvest-"))
        self._lock = threading.Lock()
        self._archive: Archive | None = None
        self._template: Path | None = None
        self._orthancs: dict[str, Orthanc] = {}

    @property
    def archive(self) -> Archive:
        if self._archive is None:
            folder = self.root / "archive"
            manifest = generate_archive(folder, PATIENTS, seed=SEED, workers=2)
            quirks = add_quirks(folder, manifest)
            paths = [folder / f["path"] for f in manifest["files"]]
            self._archive = Archive(folder, manifest, quirks, DatasetIndex(paths))
        return self._archive

    def template(self) -> Path:
        """An Orthanc storage folder holding the archive (loaded once; copied for each configuration)."""
        if self._template is None:
            storage = self.root / "orthanc-template"
            loader = Orthanc(self.root / "orthanc-load", storage=storage).start()
            try:
                loader.upload(self.archive.paths)
                count = loader.instance_count()
            finally:
                loader.stop()
            assert count == len(self.archive.paths), (
                f"Orthanc holds {count} of {len(self.archive.paths)} files"
            )
            self._template = storage
        return self._template

    def orthanc(self, storage_access_on_find: str = "Always") -> Orthanc:
        """The running Orthanc of this configuration (AE title RVPACS), started on first use."""
        with self._lock:
            found = self._orthancs.get(storage_access_on_find)
            if found is not None and found.proc is not None and found.proc.poll() is None:
                return found
            folder = self.root / f"orthanc-{storage_access_on_find.lower()}-{uuid.uuid4().hex[:6]}"
            shutil.copytree(self.template(), folder / "storage")
            made = Orthanc(
                folder, storage=folder / "storage", storage_access_on_find=storage_access_on_find
            ).start()
            self._orthancs[storage_access_on_find] = made
            return made

    def stop(self) -> None:
        for orthanc in self._orthancs.values():
            orthanc.terminate()  # all at once: each takes a few seconds to shut down
        for orthanc in self._orthancs.values():
            orthanc.stop()
        self._orthancs.clear()
        _TEMPLATE_DB.drop()
        shutil.rmtree(self.root, ignore_errors=True)


_SHARED: list[Shared] = []


def shared() -> Shared:
    """The session's :class:`Shared` (one per test process; stopped at exit or by :func:`stop_shared`)."""
    if not _SHARED:
        _SHARED.append(Shared())
        atexit.register(stop_shared)
    return _SHARED[0]


def stop_shared() -> None:
    while _SHARED:
        _SHARED.pop().stop()


# --- a fresh rtbank per test, its database cloned from a migrated template ----------------------------
class _TemplateDb:
    """A migrated database to clone: a SQLite file, or a PostgreSQL template database."""

    def __init__(self) -> None:
        self.sqlite: Path | None = None
        self.pg: str | None = None
        self.folder: Path | None = None

    def ready(self, postgres: bool) -> bool:
        return bool(self.pg) if postgres else self.sqlite is not None

    def keep(self, env: RtbankEnv) -> None:
        """Keep ``env``'s freshly migrated database as the template."""
        if env.database:
            name = f"rtbank_tpl_{uuid.uuid4().hex[:12]}"
            _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{env.database}"')
            self.pg = name
        else:
            self.folder = Path(tempfile.mkdtemp(prefix="rtbank-harvest-db-"))
            self.sqlite = self.folder / "rtbank.sqlite3"
            shutil.copyfile(env.home / "rtbank.sqlite3", self.sqlite)

    def clone_into(self, env: RtbankEnv) -> None:
        if env.database:
            _pg_admin(f'DROP DATABASE IF EXISTS "{env.database}" WITH (FORCE)')
            _pg_admin(f'CREATE DATABASE "{env.database}" TEMPLATE "{self.pg}"')
        else:
            assert self.sqlite is not None
            shutil.copyfile(self.sqlite, env.home / "rtbank.sqlite3")

    def drop(self) -> None:
        if self.pg:
            try:
                _pg_admin(f'DROP DATABASE IF EXISTS "{self.pg}" WITH (FORCE)')
            except Exception:  # noqa: BLE001 - the harness removes its cluster anyway
                pass
            self.pg = None
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = self.sqlite = None


_TEMPLATE_DB = _TemplateDb()


class HarvestEnv(RtbankEnv):
    """A fresh rtbank home and database; ``migrate`` is a clone of the session's migrated template."""

    def run(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess:
        if args[:1] != ("migrate",):
            return super().run(*args, **kwargs)
        postgres = bool(self.database)
        if _TEMPLATE_DB.ready(postgres):
            _TEMPLATE_DB.clone_into(self)
            return subprocess.CompletedProcess(["migrate"], 0, "", "")
        result = super().run(*args, **kwargs)
        _TEMPLATE_DB.keep(self)
        return result


def new_env(home: Path, extra: dict[str, str] | None = None) -> HarvestEnv:
    (home / "uploads").mkdir(parents=True, exist_ok=True)  # FILE_UPLOAD_TEMP_DIR must exist before migrate
    return HarvestEnv(home, {**TEST_SETTINGS, **(extra or {})})


# --- set-up and checks, each in one process -----------------------------------------------------------
def setup_sources(
    env: RtbankEnv,
    port: int,
    *options: str,
    ae: str = "RVPACS",
    orthanc: Orthanc | None = None,
    chunk_days: int = 11000,
    more: list[list[str]] | None = None,
) -> None:
    """Register the C-ECHO node, the harvest source ``RV`` (with ``harvest-source`` options) and, when given,
    make ``orthanc`` move to this env's receiver; these and ``more`` CLI verbs run in one Django process.
    Then start the receiver."""
    if orthanc is not None:
        orthanc.set_modality("rtbank", env.env.get("RTBANK_AE_TITLE", "RTBANK"), env.dicom_port)
    calls = [
        ["node", "add", "TPS", "--ae", "TPS", "--host", "127.0.0.1", "--port", "104"],
        ["node", "add", "RV", "--ae", ae, "--host", "127.0.0.1", "--port", str(port), "--roles", "harvest"],
        ["harvest-source", "RV", "--chunk-days", str(chunk_days), *options],
        *(more or []),
    ]
    env.query(
        "from django.core.management import call_command\n"
        f"for args in {json.dumps(calls)}:\n"
        "    call_command(*args)\n"
        "out = True"
    )
    if "receiver" not in env.processes:
        env.start_receiver()  # after the nodes: it answers the C-ECHO of TPS, and takes C-STOREs from RV


OUTCOME = """
from collections import Counter
import io, json
from django.core.management import call_command
from rtbank.catalog.models import Instance
from rtbank.commands import Failure
buf = io.StringIO()
try:
    call_command("harvest-report", "{run}", "--json", stdout=buf)
except (Failure, SystemExit):
    pass
out = {{
    "held": dict(Counter(Instance.objects.values_list("sop_instance_uid", flat=True))),
    "provenance": sorted({{(i.provenance.get("harvest_run"), i.provenance.get("source_node"))
                          for i in Instance.objects.all()}}, key=repr),
    "report": json.loads(buf.getvalue()),
}}
{extra}
"""


def outcome(env: RtbankEnv, run: int = 1, extra: str = "") -> dict[str, Any]:
    """After a run, in one process: catalog UIDs (with counts: duplicates show as > 1), provenance, the
    ``harvest-report --json`` of ``run``, and whatever ``extra`` code adds to ``out``."""
    return env.query(OUTCOME.format(run=run, extra=extra))


def harvest(env: RtbankEnv, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return env.run("harvest", *args, "--no-progress", check=False, timeout=timeout)


def sql(env: RtbankEnv, query: str) -> list[tuple[Any, ...]]:
    """Read ``env``'s database directly (cheap enough to poll; a Django shell per poll is not)."""
    if env.database:
        import psycopg

        with psycopg.connect(env.env["RTBANK_DATABASE_URL"], autocommit=True) as conn:
            return [tuple(row) for row in conn.execute(query).fetchall()]
    conn = sqlite3.connect(f"file:{env.home / 'rtbank.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        return [tuple(row) for row in conn.execute(query).fetchall()]
    finally:
        conn.close()


# --- fixtures: import the ``*_fixture`` functions into a test module to use them ---------------
@pytest.fixture(scope="session", name="harvest_shared")
def harvest_shared_fixture() -> Iterator[Shared]:
    require_tools("Orthanc", "echoscu")
    yield shared()
    stop_shared()


@pytest.fixture(scope="session", name="archive")
def archive_fixture(harvest_shared: Shared) -> Archive:
    return harvest_shared.archive


@pytest.fixture(name="env")
def env_fixture(tmp_path: Path, harvest_shared: Shared) -> Iterator[HarvestEnv]:
    """A fresh rtbank (:func:`setup_sources` starts its receiver); its processes are stopped at the end."""
    made = new_env(tmp_path / "home")
    try:
        yield made
    finally:
        made.close()

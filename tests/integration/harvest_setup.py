"""Shared set-up of the harvest integration tests: one synthetic archive with vendor quirks, loaded once into
an Orthanc storage folder that each test copies (a fresh Orthanc per test, same data)."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtbank.dicom.synth import generate_archive
from tests.harvest.support import DatasetIndex, add_quirks, treated_plans
from tests.integration.orthanc import Orthanc
from tests.integration.rtbank_env import RtbankEnv

PATIENTS, SEED = 4, 3
WINDOW = ("2000-01-01", "2030-12-31")


@dataclass
class Archive:
    folder: Path
    manifest: dict[str, Any]
    quirks: dict[str, Any]
    storage: Path  # a loaded Orthanc storage folder (copy it, never use it directly)
    index: DatasetIndex

    @property
    def paths(self) -> list[Path]:
        return [self.folder / f["path"] for f in self.manifest["files"]]

    def expected(self) -> dict[str, set[str]]:
        """Treated plan → the objects its walk must collect (from the files themselves)."""
        plans = [p["sop_instance_uid"] for p in treated_plans(self.manifest)]
        return {uid: self.index.expected(uid) for uid in plans}

    def decoys(self) -> set[str]:
        return set(self.index.objects) - set().union(*self.expected().values())

    def dangling_plans(self) -> set[str]:
        found = set()
        for patient in self.manifest["patients"]:
            for anomaly in patient["anomalies"]:
                if anomaly["kind"] == "dangling_record":
                    found.add(anomaly["detail"].split("RT plan ")[1].split(",")[0])
        return found


def new_env(home: Path, extra: dict[str, str] | None = None) -> RtbankEnv:
    (home / "uploads").mkdir(parents=True, exist_ok=True)  # FILE_UPLOAD_TEMP_DIR must exist before migrate
    return RtbankEnv(home, {"RTBANK_HARVEST_BACKOFF": "0.3", **(extra or {})})


_SHARED: dict[str, Archive] = {}


def shared_archive() -> Archive:
    """One archive (and loaded Orthanc storage) per test process, shared by the harvest test modules."""
    if "archive" not in _SHARED:
        root = Path(tempfile.mkdtemp(prefix="rtbank-harvest-archive-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _SHARED["archive"] = build_archive(root)
    return _SHARED["archive"]


def build_archive(root: Path) -> Archive:
    folder = root / "archive"
    manifest = generate_archive(folder, PATIENTS, seed=SEED, workers=2)
    quirks = add_quirks(folder, manifest)
    (folder / "manifest-quirks.json").write_text(json.dumps(manifest))
    paths = [folder / f["path"] for f in manifest["files"]]
    storage = root / "orthanc-template"
    orthanc = Orthanc(root / "orthanc-load", storage=storage).start()
    try:
        orthanc.upload(paths)
        assert orthanc.instance_count() == len(paths)
    finally:
        orthanc.stop()
    return Archive(folder, manifest, quirks, storage, DatasetIndex(paths))


def start_source(
    archive: Archive,
    folder: Path,
    env: RtbankEnv,
    *,
    storage_access_on_find: str = "Always",
    aet: str = "RVPACS",
) -> Orthanc:
    storage = folder / "storage"
    shutil.copytree(archive.storage, storage)
    return Orthanc(
        folder,
        aet=aet,
        storage=storage,
        storage_access_on_find=storage_access_on_find,
        modalities={"rtbank": (env.env.get("RTBANK_AE_TITLE", "RTBANK"), env.dicom_port)},
    ).start()


def register_source(env: RtbankEnv, name: str, ae: str, port: int, *options: str) -> None:
    env.run("node", "add", name, "--ae", ae, "--host", "127.0.0.1", "--port", str(port), "--roles", "harvest")
    env.run("harvest-source", name, "--chunk-days", "11000", *options)


def catalog_uids(env: RtbankEnv) -> dict[str, int]:
    """SOP Instance UID → number of catalog rows with it (duplicates show as > 1)."""
    return env.query(
        "from collections import Counter\n"
        "from rtbank.catalog.models import Instance\n"
        "out = dict(Counter(Instance.objects.values_list('sop_instance_uid', flat=True)))"
    )


def report_json(env: RtbankEnv, run: int = 1) -> dict[str, Any]:
    result = env.run("harvest-report", str(run), "--json", check=False)
    return json.loads(result.stdout)

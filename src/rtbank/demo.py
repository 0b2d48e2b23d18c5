"""The demo a new user sees on ``make run``: a synthetic multi-centre archive sent over real DICOM.

Institutions, their planning systems (as registered nodes), users with printed logins and two projects
are created; the archive from :mod:`rtbank.dicom.synth` is sent by each institution's "TPS" AE title to
rtbank's own receiver (the real network path); then part of it is assigned to the projects, and the rest
waits in the inbox for routing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from rtbank.catalog.models import Instance, InstanceState, Patient
from rtbank.dicom.scu import send_files
from rtbank.dicom.synth import generate_archive
from rtbank.fileio import write_durably
from rtbank.institutions.models import Institution, Node, UserProfile
from rtbank.projects.models import Project, ProjectStatus
from rtbank.projects.services import add_project, assign_patient, assign_plan, grant
from rtbank.work.services import counts

DEMO_SEED = 2026
LOGINS_FILE = "demo-logins.txt"
ACTOR = "demo"


def demo_patients() -> int:
    return int(os.environ.get("RTBANK_DEMO_PATIENTS", "6"))


def archive_dir() -> Path:
    return Path(settings.HOME) / "demo-archive"


def ensure_archive() -> dict[str, Any]:
    """Generate the demo archive once (deterministic: same seed, same files)."""
    manifest_path = archive_dir() / "manifest.json"
    if not manifest_path.exists():
        generate_archive(archive_dir(), patients=demo_patients(), seed=DEMO_SEED, institutions=3)
    return json.loads(manifest_path.read_text())


def ensure_setup(manifest: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Institutions, nodes, users and projects of the demo; returns (user, password, role) logins."""
    codes = []
    for inst in manifest["institutions"]:
        institution, _ = Institution.objects.get_or_create(code=inst["code"], defaults={"name": inst["name"]})
        codes.append(institution.code)
        Node.objects.get_or_create(
            name=f"{institution.code.lower()}-tps",
            defaults={
                "ae_title": f"{institution.code}_TPS"[:16],
                "host": "127.0.0.1",
                "port": 104,
                "institution": institution,
                "roles": ["send"],
            },
        )
    logins = _read_logins()
    if logins:
        return logins
    today = timezone.localdate()
    trial = add_project(
        "HN-DEMO",
        name="Head and neck demo trial",
        renew_by=today + dt.timedelta(days=365),
        institutions=codes[:2],
        actor=ACTOR,
        principal_investigator="Demo PI",
        description="Curative head and neck radiotherapy, two centres (synthetic demo data).",
    )
    reuse = add_project(
        "QA-DEMO",
        name="Protocol QA demo",
        renew_by=today + dt.timedelta(days=180),
        institutions=codes[1:],
        actor=ACTOR,
        description="A second project to show reuse.",
    )
    people = [
        ("manager", "project manager of HN-DEMO", None, [], {trial: "manager"}),
        (
            "researcher",
            "analyst on HN-DEMO, viewer on QA-DEMO",
            None,
            [],
            {trial: "analyst", reuse: "viewer"},
        ),
        ("datamanager", f"data manager at {codes[2]}", codes[2], ["data_manager", "uploader"], {}),
    ]
    logins = [("admin", _password(), "site admin")]
    User.objects.create_superuser("admin", "admin@localhost", logins[0][1])
    from rtbank.projects.models import ROLE_BUNDLES

    for name, role, inst_code, roles, grants in people:
        password = _password()
        user = User.objects.create_user(name, f"{name}@localhost", password)
        UserProfile.objects.update_or_create(
            user=user,
            defaults={"institution": Institution.objects.filter(code=inst_code).first(), "roles": roles},
        )
        for project, bundle in grants.items():
            grant(user, project, ROLE_BUNDLES[bundle], today + dt.timedelta(days=90), actor=ACTOR)
        logins.append((name, password, role))
    _write_logins(logins)
    return logins


def send_archive(manifest: dict[str, Any], port: int) -> int:
    """Send every file of the archive over DICOM, each institution as its own planning system."""
    by_institution: dict[str, list[Path]] = defaultdict(list)
    patient_institution = {p["patient_id"]: p["institution"] for p in manifest["patients"]}
    for f in manifest["files"]:
        by_institution[patient_institution.get(f["patient_id"], "")].append(archive_dir() / f["path"])
    sent = 0
    for code, paths in sorted(by_institution.items()):
        result = send_files(
            sorted(paths),
            "127.0.0.1",
            port,
            called_ae=settings.AE_TITLE,
            calling_ae=f"{code}_TPS"[:16],
            timeout_s=15,
            retries=3,
        )
        if not result.ok:
            raise RuntimeError(f"demo send from {code} failed: {result.failed[:3]}")
        sent += len(result.sent)
    return sent


def wait_until_indexed(expected: int, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        work = counts()
        if (
            Instance.objects.filter(state=InstanceState.CURRENT).count() >= expected
            and not work["pending"]
            and not work["in_progress"]
        ):
            return
        time.sleep(1.0)
    raise TimeoutError("the demo data was not indexed in time")


def assign_demo_data(manifest: dict[str, Any]) -> None:
    """Whole patients of the first centre and treated plans of the second go to HN-DEMO; the third waits."""
    trial = Project.objects.get(code="HN-DEMO")
    codes = [i["code"] for i in manifest["institutions"]]
    for entry in manifest["patients"]:
        patient = Patient.objects.filter(patient_id=entry["patient_id"], issuer=entry["institution"]).first()
        if patient is None:
            continue
        if entry["institution"] == codes[0]:
            assign_patient(trial, patient, actor=ACTOR)
        elif entry["institution"] == codes[1]:
            for plan in entry["plans"]:
                inst = Instance.objects.filter(
                    sop_instance_uid=plan["sop_instance_uid"], state=InstanceState.CURRENT
                ).first()
                if plan.get("treated") and inst is not None:
                    assign_plan(trial, inst, actor=ACTOR)
    Project.objects.filter(code="HN-DEMO").update(status=ProjectStatus.COLLECTING)


def is_loaded() -> bool:
    return (Path(settings.HOME) / "demo-loaded").exists()


def mark_loaded() -> None:
    write_durably(Path(settings.HOME) / "demo-loaded", b"ok\n")


def _password() -> str:
    return secrets.token_urlsafe(9)


def _read_logins() -> list[tuple[str, str, str]]:
    path = Path(settings.HOME) / LOGINS_FILE
    if not path.exists():
        return []
    return [tuple(line.split("\t")) for line in path.read_text().splitlines() if line.count("\t") == 2]  # type: ignore[misc]


def _write_logins(logins: list[tuple[str, str, str]]) -> None:
    path = Path(settings.HOME) / LOGINS_FILE
    write_durably(path, "".join(f"{u}\t{p}\t{r}\n" for u, p, r in logins).encode())
    os.chmod(path, 0o600)

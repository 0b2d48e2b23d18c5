"""A small, real world for authorisation and page tests: real DICOM through the real pipeline.

* Project **A** (ODE, AAR) holds patient ``PATIENT_ID`` (RayStation brain plan, structure set, dose and two
  treatment records) as subject ``A-0001``. Its patient name is a ``<script>`` and one ROI is a spreadsheet
  formula: every page and CSV must show them inert.
* Project **B** (AAR) holds another patient (Pinnacle plan and dose).
* Project **S** holds A's patient too (reuse by agreement) but was not renewed: it is suspended.
* The inbox holds an ODE patient (rt-utils CT and structure set) and an AAR patient (GammaPlan).

People (see ``ROLES``): anonymous, a user without grants, viewer/analyst/manager of A (the manager with
``identifiers``, an ODE uploader and data manager), a manager of B (AAR uploader and data manager), a site
admin (two-factor verified), a manager of A whose grants expired yesterday, and a manager of S.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from django.contrib.auth.models import User
from django.utils import timezone

from rtbank.catalog.models import Instance, Patient
from rtbank.ingest.importer import import_paths
from rtbank.institutions.models import Institution, UserProfile
from rtbank.notifications.services import notify
from rtbank.projects import exports
from rtbank.projects.access import Access
from rtbank.projects.models import ROLE_BUNDLES, ExportJob, JobState, Project, ProjectSubject, Upload
from rtbank.projects.services import add_project, assign_patient, grant
from rtbank.work.models import WorkerHeartbeat
from rtbank.work.worker import run_until_idle
from tests.conftest import DATA

TODAY = dt.date.today()
NEXT_YEAR = TODAY + dt.timedelta(days=365)
YESTERDAY = TODAY - dt.timedelta(days=1)
PASSWORD = "a-long-password-1"
# The work these tests need: filing and plan bundles (other areas' stages, e.g. DVHs, run in their own tests).
FILING = ["ingest", "analysis"]


def run_filing(*extra_kinds: str, other_stages: bool = False) -> None:
    """Run the worker until idle on filing and plan bundles (plus ``extra_kinds``).

    Unless ``other_stages``, the other areas' after-analysis stages (trigger rules, DVH work rows, …) are
    left out: they have their own tests, and tests about projects neither wait for them nor break with them.
    """
    from rtbank.ingest import pipeline

    saved = list(pipeline.AFTER_ANALYSIS)
    if not other_stages:
        pipeline.AFTER_ANALYSIS[:] = []
    try:
        run_until_idle([*FILING, *extra_kinds])
    finally:
        pipeline.AFTER_ANALYSIS[:] = saved


PATIENT_ID = "PIDSENT7741"
HOSTILE_NAME = "<script>alert(7741)</script>^Zed"
HOSTILE_ROI = '=HYPERLINK("http://evil.example/7741","click")'
PLAN_LABEL = "PLANSENT7741"
ROLES = (
    "anonymous",
    "nogrant",
    "viewer_A",
    "analyst_A",
    "manager_A",
    "member_B",
    "site_admin",
    "expired_A",
    "suspended",
)
# What identifies project A's patient anywhere: none of it may reach a person without a live grant on A.
SENTINELS = (PATIENT_ID, "alert(7741)", "evil.example/7741", PLAN_LABEL, "A-0001")


@dataclass
class World:
    projects: dict[str, Project]
    users: dict[str, User]
    patient: Patient  # A's patient
    plan: Instance
    inbox_ode: Patient
    inbox_aar: Patient
    b_patient: Patient
    jobs: dict[str, ExportJob] = field(default_factory=dict)
    upload: Upload | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def plan_uid(self) -> str:
        return self.plan.sop_instance_uid

    def project_for(self, role: str) -> Project:
        """The project whose URLs a role is tried on: S for the suspended role (its only grant), else A."""
        return self.projects["S"] if role == "suspended" else self.projects["A"]

    def subject_id_for(self, role: str) -> str:
        return ProjectSubject.objects.get(project=self.project_for(role), patient=self.patient).subject_id


def hostile_copy(out: Path) -> list[Path]:
    """The RayStation brain patient and its records, with hostile names and recognisable identifiers."""
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted((DATA / "pyplanscoring/raystation_brain_srs_imrt").glob("*.dcm"))
    sources += [DATA / "synthetic-rtrecord/RTRECORD_fx1.dcm", DATA / "synthetic-rtrecord/RTRECORD_fx2.dcm"]
    written = []
    for src in sources:
        ds = pydicom.dcmread(src)
        ds.PatientID = PATIENT_ID
        ds.PatientName = HOSTILE_NAME
        if ds.Modality == "RTPLAN":
            ds.RTPlanLabel = PLAN_LABEL
        if ds.Modality == "RTSTRUCT":
            ds.StructureSetROISequence[0].ROIName = HOSTILE_ROI
        target = out / src.name
        ds.save_as(target)
        written.append(target)
    return written


def build_world(tmp: Path, *, with_jobs: bool = True, other_stages: bool = True) -> World:
    """The world above; ``other_stages=False`` files the data without the other areas' stages (faster)."""
    Institution.objects.create(code="ODE", name="Odense")
    Institution.objects.create(code="AAR", name="Aarhus")
    import_paths(hostile_copy(tmp / "hostile"), {"institution": "ODE"})
    import_paths(
        [DATA / "rt-utils/ct_1.dcm", DATA / "rt-utils/ct_2.dcm", DATA / "rt-utils/rt.dcm"],
        {"institution": "ODE"},
    )
    import_paths([DATA / "pyplanscoring/pinnacle_dicom_plan1"], {"institution": "AAR"})
    import_paths([DATA / "pyplanscoring/gammaplan_srs"], {"institution": "AAR"})
    run_filing(other_stages=other_stages)
    a = add_project("A", name="Trial A", renew_by=NEXT_YEAR, institutions=["ODE", "AAR"], actor="test")
    b = add_project("B", name="Trial B", renew_by=NEXT_YEAR, institutions=["AAR"], actor="test")
    s = add_project("S", name="Trial S", renew_by=NEXT_YEAR, institutions=["ODE"], actor="test")
    patient = Patient.objects.get(patient_id=PATIENT_ID)
    b_patient = Patient.objects.get(patient_id="2018_Comp_Lung")
    assign_patient(a, patient, actor="test")
    assign_patient(b, b_patient, actor="test")
    assign_patient(s, patient, actor="admin", actor_is_site_admin=True, agreement="DUA-S")
    users = {
        name: User.objects.create_user(name, f"{name}@example.org", PASSWORD)
        for name in ROLES[1:]
        if name != "site_admin"
    }
    users["site_admin"] = User.objects.create_superuser("site_admin", "admin@example.org", PASSWORD)
    ode, aar = Institution.objects.get(code="ODE"), Institution.objects.get(code="AAR")
    UserProfile.objects.create(user=users["manager_A"], institution=ode, roles=["data_manager", "uploader"])
    UserProfile.objects.create(user=users["member_B"], institution=aar, roles=["data_manager", "uploader"])
    grant(users["viewer_A"], a, ROLE_BUNDLES["viewer"], NEXT_YEAR, actor="test")
    grant(users["analyst_A"], a, ROLE_BUNDLES["analyst"], NEXT_YEAR, actor="test")
    grant(users["manager_A"], a, [*ROLE_BUNDLES["manager"], "identifiers"], NEXT_YEAR, actor="test")
    grant(users["member_B"], b, [*ROLE_BUNDLES["manager"], "identifiers"], NEXT_YEAR, actor="test")
    grant(users["expired_A"], a, [*ROLE_BUNDLES["manager"], "identifiers"], NEXT_YEAR, actor="test")
    grant(users["suspended"], s, [*ROLE_BUNDLES["manager"], "identifiers"], NEXT_YEAR, actor="test")
    world = World(
        projects={"A": a, "B": b, "S": s},
        users=users,
        patient=patient,
        plan=Instance.objects.get(kind="plan", series__study__patient=patient),
        inbox_ode=Patient.objects.get(patient_id="PHANTOM_EXAMPLE"),
        inbox_aar=Patient.objects.get(patient_id="2018_Comp_SRS-Brain"),
        b_patient=b_patient,
    )
    if with_jobs:
        for role in ("manager_A", "expired_A", "suspended"):
            project = world.project_for(role)
            world.jobs[role] = exports.start_job(Access(users[role]), project, [])
        run_until_idle([exports.EXPORT])
    # Now the grants of expired_A lapse and S misses its renewal date.
    users["expired_A"].grants.update(expires_on=YESTERDAY)
    Project.objects.filter(pk=s.pk).update(renew_by=YESTERDAY)
    world.projects["S"].refresh_from_db()
    world.upload = Upload.objects.create(
        user=users["manager_A"], institution=ode, files=1, stored=1, results=[["x.dcm", "stored"]]
    )
    for user in users.values():
        notify([user], "test", "hello", "a test notification", url="/projects/")
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="test", host="test", pid=1, started_at=now, last_seen=now)
    _admin_objects(world)
    for job in world.jobs.values():
        job.refresh_from_db()
        assert job.state == JobState.DONE, (job.state, job.error)
    return world


def _admin_objects(world: World) -> None:
    """One object of each kind the Django admin shows, including real log-in attempts (django-axes)."""
    from django.contrib.auth.models import Group
    from django.test import Client

    from rtbank.institutions.services import add_node
    from tests.web.clients import verified_device

    Group.objects.create(name="auditors")
    add_node(
        "TPS1",
        ae_title="TPS1",
        host="10.0.0.5",
        port=104,
        institution_code="ODE",
        roles=["send"],
        actor="test",
    )
    verified_device(world.users["site_admin"])
    Client().post("/login/", {"username": "viewer_A", "password": "wrong-password-0"})
    Client().post("/login/", {"username": "nogrant", "password": PASSWORD})

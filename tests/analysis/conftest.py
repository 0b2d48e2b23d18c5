"""A project holding two phantom patients (fast: ~5 s), with people of each permission level."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from rtbank.catalog.models import Patient
from rtbank.ingest.importer import import_paths
from rtbank.institutions.models import Institution
from rtbank.projects.models import Project
from rtbank.projects.services import add_project, assign_patient, grant
from rtbank.work.worker import run_until_idle
from tests.analysis.support import PhantomPatient, write_phantom_patient

NEXT_YEAR = dt.date.today() + dt.timedelta(days=365)
MONDAYS = (dt.date(2024, 1, 8), dt.date(2024, 1, 9), dt.date(2024, 1, 10), dt.date(2024, 1, 15))


@dataclass
class AnalysisWorld:
    project: Project
    users: dict[str, User]
    patients: dict[str, PhantomPatient]
    subjects: dict[str, str] = field(default_factory=dict)  # patient ID -> subject ID

    def client(self, role: str) -> Client:
        client = Client()
        if role != "anonymous":
            client.force_login(self.users[role])
        return client


@pytest.fixture(scope="session")
def phantom_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, PhantomPatient]]:
    """The two patients' files, written once per session (every test imports them into a fresh database)."""
    root = tmp_path_factory.mktemp("analysis-phantoms")
    patients = {
        "PH1": write_phantom_patient(root / "ph1", "PH1", treatment_dates=MONDAYS),
        "PH2": write_phantom_patient(
            root / "ph2", "PH2", skip_ct=(3,), roi_names={"PTV 70": "PTV70", "Spinal Cord": "Medulla"}
        ),
    }
    return root, patients


@pytest.fixture
def analysis_world(phantom_files: tuple[Path, dict[str, PhantomPatient]]) -> AnalysisWorld:
    """Project P (institution ODE) with PH1 (treated on 4 days, one break) and PH2 (ROIs named the Danish
    way, a CT slice missing); a viewer, an analyst (export), a manager (rules, members, identifiers) and an
    outsider."""
    Institution.objects.create(code="ODE", name="Odense")
    root, patients = phantom_files
    import_paths([root / "ph1", root / "ph2"], {"institution": "ODE"})
    run_until_idle()
    project = add_project("P", name="Trial P", renew_by=NEXT_YEAR, institutions=["ODE"], actor="test")
    subjects = {}
    for pid in patients:
        subjects[pid] = assign_patient(project, Patient.objects.get(patient_id=pid), actor="test").subject_id
    # No passwords: the clients log in with force_login (hashing four passwords would double the set-up time).
    users = {
        name: User.objects.create(username=name, email=f"{name}@example.org")
        for name in ("viewer", "analyst", "manager", "outsider")
    }
    grant(users["viewer"], project, ["view"], NEXT_YEAR, actor="test")
    grant(users["analyst"], project, ["view", "export"], NEXT_YEAR, actor="test")
    grant(
        users["manager"],
        project,
        ["view", "export", "rules", "members", "identifiers"],
        NEXT_YEAR,
        actor="test",
    )
    return AnalysisWorld(project, users, patients, subjects)

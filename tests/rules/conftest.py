"""A small world for rule tests: two institutions, a trial with one of them, people with grants."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from rtbank.catalog.models import Instance, Patient
from rtbank.ingest.importer import import_paths
from rtbank.institutions.models import Institution, Node, UserProfile
from rtbank.projects.services import add_project, grant
from rtbank.rules.models import Rule
from rtbank.work.worker import run_until_idle

NEXT_YEAR = dt.date.today() + dt.timedelta(days=365)
TRIGGER_PLAN = {"type": "all", "conditions": [{"type": "roi", "pattern": "trial_*", "contours": "empty"}]}


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    ode = Institution.objects.create(code="ODE", name="Odense")
    aar = Institution.objects.create(code="AAR", name="Aarhus")
    trial = add_project(
        "TRIAL",
        name="Proton trial",
        renew_by=NEXT_YEAR,
        institutions=["ODE"],
        actor="test",
        ae_title="TRIAL_AE",
    )
    other = add_project("OTHER", name="Other", renew_by=NEXT_YEAR, actor="test")
    dest = Node.objects.create(name="PROTONS", ae_title="PROTONS", host="127.0.0.1", port=1, roles=["dest"])
    trial.destinations.add(dest)
    # No passwords: hashing them costs seconds; pages are tested with force_login.
    people = {
        name: User.objects.create_user(name, f"{name}@example.org", None)
        for name in ("manager", "viewer", "ruler", "outsider", "dm", "admin")
    }
    grant(people["manager"], trial, ["view", "rules", "forward", "members"], NEXT_YEAR, actor="test")
    grant(people["viewer"], trial, ["view"], NEXT_YEAR, actor="test")
    grant(people["ruler"], trial, ["rules"], NEXT_YEAR, actor="test")
    grant(people["outsider"], other, ["view", "rules"], NEXT_YEAR, actor="test")
    UserProfile.objects.create(user=people["dm"], institution=ode, roles=["data_manager"])
    people["admin"].is_superuser = True
    people["admin"].save()
    return {"ODE": ode, "AAR": aar, "TRIAL": trial, "OTHER": other, "dest": dest, **people}


# The work kinds these tests exercise (other areas' kinds, e.g. DVH calculation, would only cost time here).
KINDS = ["ingest", "analysis", "rules", "forward", "notify", "job", "cleanup"]


def drain() -> None:
    run_until_idle(KINDS)


def store(paths: list[Path], **info: Any) -> None:
    """Import files as if sent (institution, calling/called AE), then run ingest, analysis and rules."""
    import_paths(paths, info)
    drain()


def make_rule(
    project: Any, conditions: dict | None = None, actions: list | None = None, **fields: Any
) -> Rule:
    return Rule.objects.create(
        project=project,
        name=fields.pop("name", "trigger"),
        enabled=fields.pop("enabled", True),
        scope=fields.pop("scope", "plan"),
        conditions=conditions or TRIGGER_PLAN,
        actions=actions or [{"type": "assign"}],
        created_by="test",
        **fields,
    )


def plan_of(patient_id: str = "brain") -> Instance:
    return Instance.objects.get(kind="plan", series__study__patient__patient_id=patient_id)


def patient(patient_id: str = "brain") -> Patient:
    return Patient.objects.get(patient_id=patient_id)

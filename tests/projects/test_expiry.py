"""Expiry takes effect at the next request: a grant that ends mid-session, a project past its renewal date."""

from __future__ import annotations

import datetime as dt

import pytest

from rtbank.projects import access
from rtbank.projects.models import AccessLog, Project
from rtbank.projects.services import grant
from tests.projects.world import World
from tests.web.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def _tomorrow(monkeypatch: pytest.MonkeyPatch, day: dt.date) -> None:
    """Let the clock pass midnight (the server's notion of today), nothing else."""
    monkeypatch.setattr(access, "today", lambda: day)


def test_a_grant_that_expires_mid_session_stops_access_at_the_next_request(world: World, monkeypatch) -> None:
    viewer = world.users["viewer_A"]
    today = dt.date.today()
    grant(viewer, world.projects["A"], ["view"], today, actor="test")  # ends tonight (inclusive)
    client = client_for(viewer)
    subject_url = f"/projects/A/subjects/{world.subject_id_for('viewer_A')}/"
    assert client.get("/projects/A/").status_code == 200
    assert client.get(subject_url).status_code == 200
    _tomorrow(monkeypatch, today + dt.timedelta(days=1))
    assert client.get("/projects/A/").status_code == 404  # same session, next request
    assert client.get(subject_url).status_code == 404
    assert "A-0001" not in client.get("/projects/").content.decode()
    assert AccessLog.objects.filter(user=viewer, action="view_project", outcome="not_found").exists()


def test_renewing_the_grant_gives_access_back(world: World, monkeypatch) -> None:
    viewer = world.users["viewer_A"]
    today = dt.date.today()
    grant(viewer, world.projects["A"], ["view"], today - dt.timedelta(days=1), actor="test")
    client = client_for(viewer)
    assert client.get("/projects/A/").status_code == 404
    grant(viewer, world.projects["A"], ["view"], today + dt.timedelta(days=30), actor="test")
    assert client.get("/projects/A/").status_code == 200


def test_a_project_past_its_renewal_date_suspends_every_grant(world: World, monkeypatch) -> None:
    manager = world.users["manager_A"]
    today = dt.date.today()
    Project.objects.filter(code="A").update(renew_by=today)
    client = client_for(manager)
    assert client.get("/projects/A/").status_code == 200
    response = client.post("/projects/A/export/", {"scope": "all"})
    assert response.status_code == 200
    b"".join(response.streaming_content)
    _tomorrow(monkeypatch, today + dt.timedelta(days=1))
    assert client.get("/projects/A/").status_code == 404
    assert client.post("/projects/A/export/", {"scope": "all"}).status_code == 404
    assert client.get("/projects/A/plans.csv").status_code == 404
    listing = client.get("/projects/").content.decode()
    assert "suspended" in listing  # the project is still listed to its member, marked suspended
    assert "A-0001" not in listing


def test_an_archived_project_gives_nothing(world: World) -> None:
    Project.objects.filter(code="A").update(status="archived")
    assert client_for(world.users["manager_A"]).get("/projects/A/").status_code == 404

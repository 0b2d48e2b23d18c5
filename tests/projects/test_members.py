"""Member management on the web: give, renew and revoke with expiry; nobody gives more than they hold."""

from __future__ import annotations

import datetime as dt

import pytest

from rtbank.eventlog.models import Event
from rtbank.projects.models import Grant
from tests.projects.world import World
from tests.web.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def until(days: int) -> str:
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


def test_a_manager_gives_a_role_with_an_expiry_and_it_is_logged(world: World) -> None:
    client = client_for(world.users["manager_A"])
    response = client.post(
        "/projects/A/members/",
        {"action": "add", "username": "nogrant", "role": "analyst", "until": until(90)},
    )
    assert response.status_code == 302
    grants = Grant.objects.filter(user=world.users["nogrant"], project__code="A")
    assert sorted(g.permission for g in grants) == ["export", "images", "view"]
    assert {g.expires_on.isoformat() for g in grants} == {until(90)}
    assert Event.objects.filter(action="grant", actor="manager_A").exists()
    page = client.get("/projects/A/members/").content.decode()
    assert "nogrant" in page and until(90) in page


def test_nobody_gives_what_they_do_not_hold(world: World) -> None:
    viewer_manager = world.users["viewer_A"]
    from rtbank.projects.services import grant

    grant(
        viewer_manager,
        world.projects["A"],
        ["members"],
        dt.date.today() + dt.timedelta(days=30),
        actor="test",
    )
    response = client_for(viewer_manager).post(
        "/projects/A/members/",
        {"action": "add", "username": "nogrant", "permissions": ["download"], "until": until(30)},
        follow=True,
    )
    assert "cannot give permissions you do not hold: download" in response.content.decode()
    assert not Grant.objects.filter(user=world.users["nogrant"]).exists()
    # identifiers only from someone holding it (manager_A was given it deliberately)
    response = client_for(world.users["manager_A"]).post(
        "/projects/A/members/",
        {"action": "add", "username": "nogrant", "permissions": ["identifiers"], "until": until(30)},
    )
    assert Grant.objects.filter(user=world.users["nogrant"], permission="identifiers").exists()


def test_expiry_dates_must_be_sensible(world: World, settings) -> None:
    client = client_for(world.users["manager_A"])
    past = client.post(
        "/projects/A/members/",
        {"action": "add", "username": "nogrant", "role": "viewer", "until": until(-1)},
        follow=True,
    )
    assert "in the past" in past.content.decode()
    far = client.post(
        "/projects/A/members/",
        {
            "action": "add",
            "username": "nogrant",
            "role": "viewer",
            "until": until(settings.GRANT_MAX_DAYS + 1),
        },
        follow=True,
    )
    assert "at most" in far.content.decode()
    assert not Grant.objects.filter(user=world.users["nogrant"]).exists()


def test_renew_and_revoke(world: World) -> None:
    client = client_for(world.users["manager_A"])
    viewer = world.users["viewer_A"]
    client.post("/projects/A/members/", {"action": "renew", "user": viewer.pk, "until": until(200)})
    assert Grant.objects.get(user=viewer, permission="view").expires_on.isoformat() == until(200)
    client.post("/projects/A/members/", {"action": "revoke", "user": viewer.pk})
    assert not Grant.objects.filter(user=viewer, project__code="A").exists()
    assert client_for(viewer).get("/projects/A/").status_code == 404


def test_members_of_another_project_cannot_be_managed(world: World) -> None:
    client = client_for(world.users["manager_A"])
    response = client.post(
        "/projects/A/members/",
        {"action": "renew", "user": world.users["member_B"].pk, "until": until(30)},
        follow=True,
    )
    assert "no such member" in response.content.decode()
    assert client.get("/projects/B/members/").status_code == 404

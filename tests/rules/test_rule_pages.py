"""Rule, outbox, send and cleanup pages: 404 for outsiders, 403 without the permission, and what each sees."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from rtbank.catalog.models import Instance
from rtbank.projects.models import AccessLog
from rtbank.projects.services import assign_plan
from rtbank.rules import cleanup
from rtbank.rules.models import Forward, Rule
from tests.rules.conftest import make_rule, plan_of, store
from tests.rules.helpers import RP, RS, with_empty_roi
from tests.web.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def status(world: dict, who: str, url: str, method: str = "get", data: dict | None = None) -> int:
    client = client_for(world[who])
    return getattr(client, method)(url, data or {}).status_code


def rule_post(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "proton trigger",
        "scope": "plan",
        "match": "all",
        "enabled": "on",
        "c0_type": "roi",
        "c0_subject": "TRIAL_*",
        "c0_test": "empty",
        "assign": "on",
    }
    return {**data, **overrides}


def test_project_rule_pages_are_404_for_outsiders_and_403_without_rules(world: dict) -> None:
    rule = make_rule(world["TRIAL"])
    for url in (
        "/projects/TRIAL/rules/",
        f"/projects/TRIAL/rules/{rule.pk}/",
        f"/projects/TRIAL/rules/{rule.pk}/dry-run/",
        "/projects/TRIAL/rules/new/",
    ):
        assert status(world, "outsider", url) == 404, url
        assert status(world, "viewer", url) == 403, url
        assert status(world, "ruler", url) == 200, url
        assert status(world, "admin", url) == 404, url  # site admins see project data only through grants
    assert (
        status(world, "outsider", f"/projects/OTHER/rules/{rule.pk}/") == 404
    )  # a rule stays with its project
    assert status(world, "viewer", f"/projects/TRIAL/rules/{rule.pk}/delete/", "post") == 403
    assert Rule.objects.filter(pk=rule.pk).exists()


def test_site_wide_rules_are_for_site_admins_only(world: dict) -> None:
    for who in ("manager", "ruler", "dm"):
        assert status(world, who, "/rules/site/") == 404
        assert (
            status(world, who, "/rules/site/new/", "post", rule_post(assign_project=world["TRIAL"].pk)) == 404
        )
    assert not Rule.objects.exists()
    assert (
        status(
            world,
            "admin",
            "/rules/site/new/",
            "post",
            rule_post(assign_project=world["TRIAL"].pk, scope="patient"),
        )
        == 302
    )
    assert Rule.objects.get().project is None


def test_a_forwarding_rule_needs_the_forward_permission(world: dict) -> None:
    post = rule_post(forward_nodes=[world["dest"].pk])
    response = client_for(world["ruler"]).post("/projects/TRIAL/rules/new/", post)
    assert response.status_code == 200 and b"forward" in response.content and not Rule.objects.exists()
    response = client_for(world["manager"]).post("/projects/TRIAL/rules/new/", post)
    assert response.status_code == 302
    rule = Rule.objects.get()
    assert rule.actions == [{"type": "assign"}, {"type": "forward", "node": world["dest"].pk}]
    trigger = {"type": "roi", "pattern": "TRIAL_*", "contours": "empty"}
    assert rule.conditions == {"type": "all", "conditions": [trigger]}
    edit = client_for(world["manager"]).get(f"/projects/TRIAL/rules/{rule.pk}/edit/")
    assert b'value="TRIAL_*"' in edit.content  # the rows come back for editing


def test_a_rule_never_notifies_people_without_a_grant_on_the_project(world: dict) -> None:
    response = client_for(world["manager"]).post(
        "/projects/TRIAL/rules/new/", rule_post(notify_users=[world["outsider"].pk])
    )
    assert response.status_code == 200 and not Rule.objects.exists()


def test_the_dry_run_shows_only_what_the_person_may_see(world: dict, tmp_path: Path) -> None:
    store([with_empty_roi(tmp_path / "rs.dcm", "TRIAL_X"), RP], institution="ODE")
    rule = make_rule(world["TRIAL"], enabled=False)
    ruler = client_for(world["ruler"]).get(f"/projects/TRIAL/rules/{rule.pk}/dry-run/").content.decode()
    assert "brain" not in ruler and "<strong>1</strong> not shown" in ruler
    assign_plan(world["TRIAL"], plan_of(), actor="test")
    manager = client_for(world["manager"]).get(f"/projects/TRIAL/rules/{rule.pk}/dry-run/").content.decode()
    assert "TRIAL-0001" in manager and "<strong>0</strong> not shown" in manager
    dm = client_for(world["dm"])  # a data manager of ODE: not a rules holder on TRIAL
    assert dm.get(f"/projects/TRIAL/rules/{rule.pk}/dry-run/").status_code == 404
    assert AccessLog.objects.filter(action="dry_run_rule", outcome="allowed").count() == 2


def test_the_outbox_send_and_resubmit_need_forward(world: dict) -> None:
    store([RP], institution="ODE")
    assign_plan(world["TRIAL"], plan_of(), actor="test")
    uid = plan_of().sop_instance_uid
    assert status(world, "viewer", "/projects/TRIAL/outbox/") == 403
    assert status(world, "outsider", "/projects/TRIAL/outbox/") == 404
    assert (
        status(world, "viewer", "/projects/TRIAL/send/", "post", {"plan": uid, "node": world["dest"].pk})
        == 403
    )
    assert (
        status(world, "manager", "/projects/TRIAL/send/", "post", {"plan": uid, "node": world["dest"].pk})
        == 302
    )
    assert (
        status(
            world,
            "manager",
            "/projects/TRIAL/send/",
            "post",
            {"subject": "TRIAL-0001", "node": world["dest"].pk},
        )
        == 302
    )
    assert Forward.objects.count() == 2
    forward = Forward.objects.first()
    page = client_for(world["manager"]).get("/projects/TRIAL/outbox/").content.decode()
    assert "PROTONS" in page and "manager" in page
    assert status(world, "outsider", f"/outbox/{forward.pk}/resubmit/", "post") == 404
    assert status(world, "viewer", f"/outbox/{forward.pk}/resubmit/", "post") == 403
    assert status(world, "manager", "/outbox/") == 404
    assert status(world, "admin", "/outbox/") == 200


def test_the_cleanup_page_shows_a_data_manager_only_their_institution(world: dict) -> None:
    store([RP], institution="ODE")
    store([RS], institution="AAR")  # another patient key: AAR's, not the ODE data manager's
    Instance.objects.update(received_at=timezone.now() - dt.timedelta(days=200))
    cleanup.run_cleanup(dry_run=False, actor="test")
    page = client_for(world["dm"]).get("/cleanup/").content.decode()
    assert page.count("brain") == 1 and "ODE" in page and "AAR" not in page
    assert client_for(world["admin"]).get("/cleanup/").content.decode().count("brain") == 2
    assert status(world, "viewer", "/cleanup/") == 404
    assert status(world, "admin", "/cleanup/") == 200


def test_the_subject_and_plan_pages_show_firings_and_a_send_form_to_forward_holders(
    world: dict, tmp_path: Path
) -> None:
    make_rule(world["TRIAL"])
    store([with_empty_roi(tmp_path / "rs.dcm", "TRIAL_X"), RP], institution="ODE")
    uid = plan_of().sop_instance_uid
    for url in ("/projects/TRIAL/subjects/TRIAL-0001/", f"/projects/TRIAL/plans/{uid}/"):
        manager = client_for(world["manager"]).get(url).content.decode()
        assert (
            'id="rule-firings"' in manager
            and "trigger" in manager
            and 'class="inline send-to-node"' in manager
        )
        viewer = client_for(world["viewer"]).get(url).content.decode()
        assert 'id="rule-firings"' in viewer and "send-to-node" not in viewer  # view, but no forward
    project_page = client_for(world["manager"]).get("/projects/TRIAL/").content.decode()
    assert 'id="rules-panel"' in project_page and "1 rule(s)</a>, 1 enabled" in project_page

"""Project, subject and plan pages; panels; inbox assignment; reuse; the access log page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.apps import apps

from rtbank.catalog.models import Instance
from rtbank.projects.access import search_fingerprint
from rtbank.projects.models import AccessLog, ProjectSubject
from rtbank.projects.services import assign_patient, assign_plan
from tests.projects.world import PATIENT_ID, PLAN_LABEL, World
from tests.web.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_project_page_summarises_per_institution_and_over_time(world: World) -> None:
    assign_patient(world.projects["A"], world.inbox_aar, actor="test")
    html = client_for(world.users["viewer_A"]).get("/projects/A/").content.decode()
    table = html[html.index('id="by-institution"') :]
    assert re.search(r"<td>ODE</td><td>Odense</td><td>1</td>", table) and re.search(r"<td>AAR</td>", table)
    chart = json.loads(
        re.search(r'<script id="over-time-data" type="application/json">(.*?)</script>', html).group(1)
    )
    assert chart["cumulative"][-1] == 2
    assert "vendor/chartjs-4.6.1/chart.umd.min.js" in html
    assert (
        PATIENT_ID not in html and "A-0001" in html and PLAN_LABEL in html
    )  # subject IDs without `identifiers`


def test_search_finds_patient_ids_only_for_holders_of_identifiers(world: World) -> None:
    viewer = client_for(world.users["viewer_A"]).get(f"/projects/A/?q={PATIENT_ID}").content.decode()
    manager = client_for(world.users["manager_A"]).get(f"/projects/A/?q={PATIENT_ID}").content.decode()

    def subjects(html: str) -> str:
        end = html.index('id="export-form"')
        return html[html.index('id="subjects"') : end + html[end:].index("</table>")]

    assert "A-0001" not in subjects(viewer)  # the viewer cannot link a Patient ID to a subject by searching
    assert "A-0001" in subjects(manager)
    logged = AccessLog.objects.filter(action="view_project", user=world.users["manager_A"]).latest("id")
    assert logged.details["search"] == search_fingerprint(PATIENT_ID) and PATIENT_ID not in json.dumps(
        logged.details
    )


def test_tables_paginate_and_filter_on_the_server(world: World) -> None:
    for patient in (world.inbox_ode, world.inbox_aar):
        assign_patient(world.projects["A"], patient, actor="test")
    client = client_for(world.users["viewer_A"])
    from rtbank.projects.views import pages

    pages.PAGE_SIZE, saved = 2, pages.PAGE_SIZE
    try:
        first = client.get("/projects/A/").content.decode()
        second = client.get("/projects/A/?page=2").content.decode()
    finally:
        pages.PAGE_SIZE = saved
    assert "page 1 of 2" in first and "page 2 of 2" in second
    only_aar = client.get("/projects/A/?institution=AAR").content.decode()
    aar_subject = ProjectSubject.objects.get(project__code="A", patient=world.inbox_aar).subject_id
    rows = only_aar[only_aar.index('id="subjects"') : len(only_aar)]
    assert aar_subject in rows and "A-0001" not in rows


def test_a_plan_only_subject_shows_only_the_bundle(world: World) -> None:
    """B's patient enters A with one plan (reuse by agreement): A's page shows that bundle and nothing
    else."""
    plan = Instance.objects.get(kind="plan", series__study__patient=world.b_patient)
    item = assign_plan(world.projects["A"], plan, actor="admin", agreement="DUA-2", actor_is_site_admin=True)
    extra = Instance.objects.filter(series__study__patient=world.b_patient).exclude(
        pk__in=[plan.pk, *plan.bundle_members.values_list("member_id", flat=True)]
    )
    html = (
        client_for(world.users["viewer_A"])
        .get(f"/projects/A/subjects/{item.subject.subject_id}/")
        .content.decode()
    )
    assert plan.sop_instance_uid in html
    for other in extra:
        assert other.sop_instance_uid not in html
    assert "2018_Comp_Lung" not in html  # the Patient ID of B's patient, without `identifiers`


def test_the_plan_page_shows_key_values_bundle_and_references_both_ways(world: World) -> None:
    html = client_for(world.users["viewer_A"]).get(f"/projects/A/plans/{world.plan_uid}/").content.decode()
    assert PLAN_LABEL in html and "A-0001" in html
    bundle = html[html.index('id="bundle"') :]
    assert "structure set" in bundle and "dose" in bundle
    incoming = html[html.index('id="plan-incoming"') :]
    assert incoming.count("<tr>") >= 2  # two treatment records (and the dose) reference the plan
    other = Instance.objects.get(kind="plan", series__study__patient=world.b_patient)
    assert (
        client_for(world.users["viewer_A"]).get(f"/projects/A/plans/{other.sop_instance_uid}/").status_code
        == 404
    )


def test_panels_from_other_areas_appear_where_their_predicate_allows(
    world: World, monkeypatch, settings
) -> None:
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [str(Path(__file__).parent / "templates")]}]
    config = apps.get_app_config("projects")
    monkeypatch.setattr(
        config,
        "project_panels",
        [
            ("projects/tests/panel.html", lambda access, project: access.has(project, "export")),
            ("does/not/exist.html", lambda access, project: True),
        ],
        raising=False,
    )
    monkeypatch.setattr(config, "plan_panels", [("projects/tests/panel.html", lambda access, project: True)])
    analyst = client_for(world.users["analyst_A"]).get("/projects/A/").content.decode()
    viewer = client_for(world.users["viewer_A"]).get("/projects/A/").content.decode()
    assert "TEST PANEL for A" in analyst and "TEST PANEL" not in viewer
    assert "Panel does/not/exist.html is missing" in viewer  # a broken panel never takes the page down
    plan = client_for(world.users["viewer_A"]).get(f"/projects/A/plans/{world.plan_uid}/").content.decode()
    assert f"TEST PANEL for A plan {PLAN_LABEL}" in plan


def test_bulk_assignment_from_the_inbox(world: World) -> None:
    client = client_for(world.users["manager_A"])  # ODE data manager with `assign` on A
    response = client.post(
        "/inbox/assign/", {"project": "A", "patients": [world.inbox_ode.pk, world.inbox_aar.pk]}, follow=True
    )
    assert "assigned to A" in response.content.decode()
    assert ProjectSubject.objects.filter(
        project__code="A", patient=world.inbox_ode, assigned_by="manager_A"
    ).exists()
    assert not ProjectSubject.objects.filter(
        patient=world.inbox_aar
    ).exists()  # not in an ODE manager's inbox
    assert world.inbox_ode.patient_id not in client.get("/inbox/").content.decode()


def test_data_of_another_project_comes_in_only_by_site_admin_reuse(world: World) -> None:
    admin = client_for(world.users["site_admin"])
    refused = admin.post(
        "/projects/B/reuse/", {"source": "A", "subjects": "A-0001", "agreement": ""}, follow=True
    )
    assert "agreement reference" in refused.content.decode()
    done = admin.post("/projects/B/reuse/", {"source": "A", "subjects": "A-0001", "agreement": "DUA-2026-7"})
    html = done.content.decode()
    subject = ProjectSubject.objects.get(project__code="B", patient=world.patient)
    assert (
        subject.agreement == "DUA-2026-7" and subject.assigned_via == "reuse" and subject.subject_id in html
    )
    assert PATIENT_ID not in html and PLAN_LABEL not in html  # the admin never sees the patient
    assert client_for(world.users["manager_A"]).get("/projects/B/reuse/").status_code == 403


def test_the_access_log_page_filters_and_reading_it_is_logged(world: World) -> None:
    client_for(world.users["viewer_A"]).get("/projects/A/")
    client_for(world.users["nogrant"]).get("/projects/A/")
    admin = client_for(world.users["site_admin"])
    html = admin.get("/access-log/?outcome=not_found&project=").content.decode()
    assert "nogrant" in html and "viewer_A" not in html
    assert AccessLog.objects.filter(
        action="read_access_log", user=world.users["site_admin"], details__filters__outcome="not_found"
    ).exists()
    csv = b"".join(admin.get("/access-log/?actor=viewer_A&format=csv").streaming_content).decode()
    assert csv.startswith("time,actor,action") and "viewer_A,view_project" in csv
    assert client_for(world.users["manager_A"]).get("/access-log/").status_code == 403


def test_an_auditor_finds_who_searched_for_a_patient_id(world: World) -> None:
    client_for(world.users["manager_A"]).get(f"/inbox/?q={PATIENT_ID}")
    html = client_for(world.users["site_admin"]).get(f"/access-log/?searched={PATIENT_ID}").content.decode()
    rows = html[html.index('id="access-log"') :]
    assert (
        "manager_A" in rows
        and "list_inbox" in rows
        and PATIENT_ID not in rows.replace(f'value="{PATIENT_ID}"', "")
    )

"""The access helper's rules: live grants only, project membership of data, 404 vs 403, reuse."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404

from rtbank.catalog.models import Instance, Patient
from rtbank.ingest.importer import import_paths
from rtbank.institutions.models import Institution, UserProfile
from rtbank.projects.access import Access, instances_in
from rtbank.projects.models import AccessLog, Project
from rtbank.projects.services import AssignmentRefused, add_project, assign_patient, assign_plan, grant
from tests.conftest import DATA
from tests.projects.world import run_filing

pytestmark = pytest.mark.django_db(transaction=True)
TODAY = dt.date.today()
NEXT_YEAR = TODAY + dt.timedelta(days=365)


@pytest.fixture
def world() -> dict:
    Institution.objects.create(code="ODE", name="Odense")
    import_paths(
        [
            DATA / "pyplanscoring/raystation_brain_srs_imrt",
            DATA / "synthetic-rtrecord",
            DATA / "nelms-dvh-benchmark",
        ],
        {"institution": "ODE"},
    )
    run_filing()
    a = add_project("A", name="Trial A", renew_by=NEXT_YEAR, institutions=["ODE"], actor="test")
    b = add_project("B", name="Trial B", renew_by=NEXT_YEAR, actor="test")
    users = {
        name: User.objects.create_user(name, "", "a-long-password-1")
        for name in ("viewer", "outsider", "other")
    }
    grant(users["viewer"], a, ["view"], NEXT_YEAR, actor="test")
    grant(users["other"], b, ["view", "images"], NEXT_YEAR, actor="test")
    return {"A": a, "B": b, **users, "brain": Patient.objects.get(patient_id="brain")}


def test_a_whole_patient_assignment_shows_all_its_data_only_in_that_project(world: dict) -> None:
    subject = assign_patient(world["A"], world["brain"], actor="test")
    assert subject.subject_id == "A-0001"
    uids = set(instances_in(world["A"]).values_list("sop_instance_uid", flat=True))
    assert uids == set(
        Instance.objects.filter(series__study__patient=world["brain"]).values_list(
            "sop_instance_uid", flat=True
        )
    )
    assert not instances_in(world["B"]).exists()


def test_a_plan_assignment_shows_the_plan_bundle_and_grows_with_late_objects(world: dict) -> None:
    Instance.objects.filter(kind="record").delete()  # records arrive later
    plan = Instance.objects.get(kind="plan", series__study__patient=world["brain"])
    assign_plan(world["A"], plan, actor="test")
    before = set(instances_in(world["A"]).values_list("kind", flat=True))
    assert before == {"plan", "structure_set", "dose"}
    import_paths([DATA / "synthetic-rtrecord"], {"institution": "ODE"})
    run_filing()
    assert (
        instances_in(world["A"]).filter(kind="record").count() == 2
    )  # the dangling one is not in the bundle


def test_outsiders_get_404_and_members_without_the_permission_get_403(world: dict) -> None:
    plan = Instance.objects.get(kind="plan", series__study__patient=world["brain"])
    assign_plan(world["A"], plan, actor="test")
    with pytest.raises(Http404):
        Access(world["outsider"]).instance(plan.sop_instance_uid, "view", "view_plan")
    with pytest.raises(PermissionDenied):
        Access(world["viewer"]).instance(plan.sop_instance_uid, "images", "viewer")
    inst, projects = Access(world["viewer"]).instance(plan.sop_instance_uid, "view", "view_plan")
    assert projects == [world["A"]]
    with pytest.raises(Http404):
        Access(world["other"]).project("A", "view", "view_project")
    outcomes = list(
        AccessLog.objects.exclude(action="store_in").order_by("id").values_list("outcome", flat=True)
    )
    assert outcomes == ["not_found", "denied", "allowed", "not_found"]


def test_expired_grants_and_suspended_projects_give_nothing(world: dict) -> None:
    viewer = world["viewer"]
    assert Access(viewer).has(world["A"], "view")
    grant(viewer, world["A"], ["view"], TODAY - dt.timedelta(days=1), actor="test")
    assert not Access(viewer).has(world["A"], "view")
    grant(viewer, world["A"], ["view"], NEXT_YEAR, actor="test")  # renewed
    assert Access(viewer).has(world["A"], "view")
    Project.objects.filter(pk=world["A"].pk).update(renew_by=TODAY - dt.timedelta(days=1))
    assert not Access(viewer).has(world["A"], "view")
    inactive = world["other"]
    inactive.is_active = False
    inactive.save()
    assert Access(inactive).permissions == {}


def test_reusing_data_of_another_project_needs_a_site_admin_and_an_agreement(world: dict) -> None:
    assign_patient(world["A"], world["brain"], actor="test")
    with pytest.raises(AssignmentRefused):
        assign_patient(world["B"], world["brain"], actor="manager-of-b")
    with pytest.raises(AssignmentRefused):
        assign_patient(world["B"], world["brain"], actor="admin", actor_is_site_admin=True)
    subject = assign_patient(
        world["B"], world["brain"], actor="admin", actor_is_site_admin=True, agreement="DUA-2026-7"
    )
    assert subject.assigned_via == "reuse" and subject.agreement == "DUA-2026-7"


def test_subject_ids_come_from_the_trial_subject_module_when_present(world: dict) -> None:
    Instance.objects.filter(series__study__patient=world["brain"]).update(trial_subject_id="DBCG-0042")
    assert assign_patient(world["A"], world["brain"], actor="test").subject_id == "DBCG-0042"


def test_the_inbox_is_for_site_admins_and_the_institutions_data_managers(world: dict) -> None:
    admin = User.objects.create_superuser("admin", "", "a-long-password-1")
    dm = User.objects.create_user("dm", "", "a-long-password-1")
    UserProfile.objects.create(
        user=dm, institution=Institution.objects.get(code="ODE"), roles=["data_manager"]
    )
    assert set(Access(admin).inbox_patients()) == set(Patient.objects.all())
    assert set(Access(dm).inbox_patients()) == set(Patient.objects.filter(institution__code="ODE"))
    assert not Access(world["viewer"]).inbox_patients().exists()
    assign_patient(world["A"], world["brain"], actor="test")
    assert world["brain"] not in Access(admin).inbox_patients()

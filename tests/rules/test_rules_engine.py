"""Trigger rules in the pipeline: the classic empty-ROI trigger, late objects, idempotence, no way in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rtbank.catalog import blobstore
from rtbank.notifications.models import Notification
from rtbank.projects.access import instances_in
from rtbank.projects.models import ProjectPlan, ProjectSubject
from rtbank.rules.engine import apply_to_stored, evaluate_patient
from rtbank.rules.models import AttributeValue, FiringOutcome, Forward, RuleFiring
from rtbank.work.models import WorkItem
from tests.rules.conftest import drain, make_rule, patient, plan_of, store
from tests.rules.helpers import RD, RECORD_FILES, RP, with_empty_roi

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_empty_roi_files_the_plan_bundle_including_objects_that_arrive_later(
    world: dict, tmp_path: Path
) -> None:
    make_rule(world["TRIAL"])
    rs = with_empty_roi(tmp_path / "rs.dcm", "TRIAL_PROTON")
    store([rs], institution="ODE")  # the structure set first: no plan references it yet
    waiting = RuleFiring.objects.get()
    assert (waiting.action, waiting.outcome) == ("match", FiringOutcome.WAITING)
    assert not ProjectPlan.objects.exists()

    store([RP], institution="ODE")  # the plan, hours later
    assert ProjectPlan.objects.get().plan == plan_of()
    assert ProjectSubject.objects.get().assigned_via == "rule"
    waiting.refresh_from_db()
    assert waiting.outcome == FiringOutcome.DONE

    store([RD, *RECORD_FILES], institution="ODE")  # dose and records, weeks later
    kinds = sorted(kind for _, kind in instances_in(world["TRIAL"]).values_list("pk", "kind"))
    assert kinds == [
        "dose",
        "plan",
        "record",
        "record",
        "structure_set",
    ]  # the dangling record is not in the bundle
    assigned = RuleFiring.objects.get(action="assign")
    assert assigned.plan == plan_of() and assigned.outcome == FiringOutcome.DONE
    assert Notification.objects.filter(event="rule_assigned", user=world["manager"]).count() == 1


def test_firing_twice_has_no_extra_effect(world: dict, tmp_path: Path) -> None:
    make_rule(world["TRIAL"], actions=[{"type": "assign"}, {"type": "notify", "roles": ["view"]}])
    store([with_empty_roi(tmp_path / "rs.dcm", "trial_x"), RP], institution="ODE")
    before = (RuleFiring.objects.count(), Notification.objects.count(), ProjectPlan.objects.count())
    assert before[2] == 1
    evaluate_patient(patient().pk)
    evaluate_patient(patient().pk)
    assert (RuleFiring.objects.count(), Notification.objects.count(), ProjectPlan.objects.count()) == before
    notified = set(Notification.objects.filter(event="rule_matched").values_list("user__username", flat=True))
    assert notified == {"manager", "viewer"}  # role "view" holders of the project, nobody else


def test_a_project_rule_never_takes_data_from_other_institutions(world: dict, tmp_path: Path) -> None:
    make_rule(world["TRIAL"])
    store([with_empty_roi(tmp_path / "rs.dcm", "TRIAL_X"), RP], institution="AAR")
    assert not ProjectSubject.objects.exists()
    assert not RuleFiring.objects.exists()  # not even matched: the rule cannot see the data


def test_data_sent_to_the_project_ae_title_may_be_taken_from_any_institution(
    world: dict, tmp_path: Path
) -> None:
    make_rule(world["TRIAL"])
    store([with_empty_roi(tmp_path / "rs.dcm", "TRIAL_X"), RP], institution="AAR", called_ae="TRIAL_AE")
    assert ProjectPlan.objects.get().subject.project == world["TRIAL"]


def test_a_bundle_with_objects_from_outside_the_project_is_refused(world: dict, tmp_path: Path) -> None:
    make_rule(world["TRIAL"])
    store([RP], institution="AAR", called_ae="RTBANK")  # the plan came from elsewhere
    store([with_empty_roi(tmp_path / "rs.dcm", "TRIAL_X")], institution="AAR", called_ae="TRIAL_AE")
    firing = RuleFiring.objects.get(action="assign")
    assert firing.outcome == FiringOutcome.REFUSED and "outside" in firing.message
    assert not ProjectPlan.objects.exists()


def test_site_wide_rules_see_all_data_and_assign_to_the_named_project(world: dict, tmp_path: Path) -> None:
    make_rule(None, actions=[{"type": "assign", "project": world["OTHER"].pk}], scope="patient")
    store([with_empty_roi(tmp_path / "rs.dcm", "TRIAL_X"), RP], institution="AAR")
    subject = ProjectSubject.objects.get()
    assert subject.project == world["OTHER"] and subject.whole_patient


def test_rules_on_attributes_read_each_file_once(world: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    conditions = {
        "type": "all",
        "conditions": [
            {"type": "modality", "values": ["RTPLAN"]},
            {
                "type": "attribute",
                "path": "BeamSequence[*].TreatmentMachineName",
                "op": "equals",
                "value": "ElektaAgility",
            },
        ],
    }
    make_rule(world["TRIAL"], conditions)
    store([RP], institution="ODE")
    assert ProjectPlan.objects.get().plan == plan_of()
    assert list(AttributeValue.objects.values_list("path", "present")) == [
        ("BeamSequence.TreatmentMachineName", True)
    ]

    def no_reads(*args: Any) -> Any:
        raise AssertionError("the attribute must come from the cache")

    monkeypatch.setattr(blobstore.LocalBlobStore, "open", no_reads)
    ProjectPlan.objects.all().delete()
    RuleFiring.objects.all().delete()
    evaluate_patient(patient().pk)
    assert ProjectPlan.objects.exists()


def test_disabled_rules_do_nothing_until_applied_to_stored_data(world: dict, tmp_path: Path) -> None:
    rule = make_rule(world["TRIAL"], enabled=False)
    store([with_empty_roi(tmp_path / "rs.dcm", "TRIAL_X"), RP], institution="ODE")
    assert not ProjectPlan.objects.exists()
    rule.enabled = True
    rule.save()
    assert apply_to_stored(rule) == 1
    drain()
    assert ProjectPlan.objects.exists()


def test_a_forward_rule_queues_one_outbox_entry_and_late_objects_rearm_it(
    world: dict, tmp_path: Path
) -> None:
    make_rule(world["TRIAL"], actions=[{"type": "forward", "node": world["dest"].pk}])
    store([with_empty_roi(tmp_path / "rs.dcm", "TRIAL_X"), RP], institution="ODE")
    forward = Forward.objects.get()
    assert forward.only_new and forward.scope == "plan" and forward.destination == world["dest"]
    row = WorkItem.objects.get(kind="forward")
    assert row.state in ("pending", "failed")  # nothing listens on port 1: the send fails and backs off
    store([RD], institution="ODE")
    assert Forward.objects.count() == 1  # the same entry, not a second one

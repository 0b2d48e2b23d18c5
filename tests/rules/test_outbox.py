"""The forwarding outbox: allow-lists, complete sends only, late objects once, failure after the cap,
resubmit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from rtbank.catalog.models import Instance
from rtbank.ingest.importer import import_paths
from rtbank.institutions.models import Node
from rtbank.notifications.models import Notification
from rtbank.projects.models import AccessLog
from rtbank.rules import outbox
from rtbank.rules.models import ForwardedInstance
from rtbank.work.models import WorkItem, WorkState
from rtbank.work.worker import run_until_idle
from tests.ports import free_port
from tests.rules.conftest import drain, patient, plan_of, store
from tests.rules.helpers import RD, RECORD_FILES, RP, RS
from tests.rules.servers import store_scp

pytestmark = pytest.mark.django_db(transaction=True)


def bundle_uids() -> set[str]:
    plan = plan_of()
    members = set(Instance.objects.filter(in_bundles__plan=plan).values_list("sop_instance_uid", flat=True))
    return members | {plan.sop_instance_uid}


def retry_now() -> None:
    WorkItem.objects.filter(kind="forward").update(not_before=None)


def test_a_project_forwards_only_to_its_allow_list(world: dict) -> None:
    store([RS, RP], institution="ODE")
    stranger = Node.objects.create(
        name="ELSEWHERE", ae_title="ELSE", host="127.0.0.1", port=104, roles=["dest"]
    )
    with pytest.raises(outbox.ForwardRefused, match="not on the destination list"):
        outbox.send_plan(stranger, plan_of(), project=world["TRIAL"], actor="test")
    sender = Node.objects.create(name="TPS", ae_title="TPS", host="127.0.0.1", port=104, roles=["send"])
    with pytest.raises(outbox.ForwardRefused, match="role 'dest'"):
        outbox.send_plan(sender, plan_of(), project=None, actor="test")


def test_the_whole_bundle_goes_over_one_association_and_late_objects_follow_once(world: dict) -> None:
    store([RS, RP], institution="ODE")
    with store_scp() as (scp, port):
        Node.objects.filter(pk=world["dest"].pk).update(port=port)
        forward = outbox.send_plan(
            world["dest"],
            plan_of(),
            project=world["TRIAL"],
            actor="rule:1",
            only_new=True,
            origin_key="test:1",
        )
        drain()
        assert set(scp.uids) == bundle_uids() and len(scp.uids) == 2
        assert set(scp.calling) == {settings.AE_TITLE}
        assert WorkItem.objects.get(kind="forward").state == WorkState.DONE
        store([RD, *RECORD_FILES], institution="ODE")  # late objects of the plan
        assert outbox.refresh(forward)
        drain()
        assert sorted(scp.uids) == sorted(bundle_uids())  # each object exactly once
        assert not outbox.refresh(forward)  # nothing new: nothing queued
    assert ForwardedInstance.objects.filter(forward=forward).count() == len(bundle_uids()) == 5
    logged = AccessLog.objects.filter(action="forward", outcome="allowed")
    assert logged.count() == 2 and {r.details["objects"] for r in logged} == {2, 3}


def test_a_destination_that_stays_down_fails_after_the_cap_and_can_be_resubmitted(world: dict) -> None:
    store([RS, RP], institution="ODE")
    port = free_port()  # nothing listens here
    Node.objects.filter(pk=world["dest"].pk).update(port=port)
    forward = outbox.send_plan(
        world["dest"], plan_of(), project=world["TRIAL"], actor="manager", user=world["manager"]
    )
    WorkItem.objects.filter(kind="forward").update(max_attempts=3)
    for _ in range(3):
        retry_now()
        drain()
    row = WorkItem.objects.get(kind="forward")
    assert row.state == WorkState.FAILED and row.attempts == 3 and "not confirmed" in row.last_error
    assert not ForwardedInstance.objects.exists()
    assert AccessLog.objects.filter(action="forward", outcome="error").count() == 3
    told = Notification.objects.filter(event="forward_failed")
    assert set(told.values_list("user__username", flat=True)) == {"manager"}  # the requester holds forward
    assert outbox.resubmit(forward, actor="manager")
    with store_scp() as (scp, port2):
        Node.objects.filter(pk=world["dest"].pk).update(port=port2)
        drain()
        assert set(scp.uids) == bundle_uids()
    assert WorkItem.objects.get(kind="forward").state == WorkState.DONE
    assert not outbox.resubmit(forward, actor="manager")  # only failed forwards can be resubmitted


def test_files_from_other_areas_are_copied_into_the_outbox_until_sent(world: dict, tmp_path: Path) -> None:
    copy = tmp_path / "audit" / "copy.dcm"
    copy.parent.mkdir()
    copy.write_bytes(RS.read_bytes())
    with store_scp() as (scp, port):
        Node.objects.filter(pk=world["dest"].pk).update(port=port)
        forward = outbox.send_files(world["dest"], [copy], actor="audit:3", origin="audit:3")
        copy.unlink()  # the caller may remove its files at once
        held = Path(settings.OUTBOX_DIR) / str(forward.pk)
        assert len(list(held.iterdir())) == 1
        drain()
        assert len(scp.uids) == 1
    assert not held.exists()


def test_a_manual_patient_send_of_a_site_admin_needs_a_dest_node(world: dict, settings: Any) -> None:
    store([RS, RP], institution="AAR")
    with store_scp() as (scp, port):
        Node.objects.filter(pk=world["dest"].pk).update(port=port)
        outbox.send_patient(world["dest"], patient(), project=None, actor="admin", user=world["admin"])
        drain()
        assert len(scp.uids) == 2


def test_late_objects_arriving_during_a_send_go_out_in_a_second_run(world: dict) -> None:
    store([RS, RP], institution="ODE")
    forward = outbox.send_plan(
        world["dest"], plan_of(), project=world["TRIAL"], actor="rule:1", only_new=True, origin_key="test:2"
    )
    WorkItem.objects.filter(kind="forward").update(state=WorkState.IN_PROGRESS)  # a worker is sending it now
    import_paths([RD], {"institution": "ODE"})
    run_until_idle(["ingest", "analysis"])  # not "forward": its row is held by that (imaginary) worker
    assert outbox.refresh(forward)
    assert WorkItem.objects.get(kind="forward").rerun  # runs once more when the current send ends

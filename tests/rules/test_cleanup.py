"""The cleanup service: retained data survives, notices come first, the dry run is what a real run does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.apps import apps
from django.conf import settings
from django.utils import timezone
from pydicom.uid import generate_uid

from rtbank.catalog.blobstore import blob_store
from rtbank.catalog.models import Instance, Patient
from rtbank.harvest.models import HarvestRun
from rtbank.ingest.importer import import_paths
from rtbank.institutions.models import Node
from rtbank.notifications.models import Notification
from rtbank.projects.services import assign_patient, assign_plan, grant
from rtbank.rules import cleanup
from rtbank.rules.expiry import record_suspensions
from rtbank.rules.models import CleanupNotice, CleanupRun, ExpiryNotice, NoticeState, TrashedInstance
from rtbank.rules.retention import is_retained
from tests.conftest import DATA
from tests.rules.conftest import NEXT_YEAR, drain, plan_of
from tests.rules.helpers import COURSE, RECORDS

pytestmark = pytest.mark.django_db(transaction=True)
LONG_AGO = timezone.now() - dt.timedelta(days=120)


@pytest.fixture
def archive(world: dict) -> dict:
    """brain (ODE, in TRIAL by plan), PHANTOM_EXAMPLE (ODE, nowhere), 2018_Comp_Lung (ODE, harvested),
    2018_Comp_SRS-Brain (AAR, nowhere but recent). All but the last arrived 120 days ago."""
    import_paths([COURSE, RECORDS], {"institution": "ODE"})
    import_paths([DATA / "rt-utils"], {"institution": "ODE"})
    source = Node.objects.create(name="PACS", ae_title="PACS", host="127.0.0.1", port=104, roles=["harvest"])
    HarvestRun.objects.create(pk=7, source=source, created_by="test")  # kept by default
    import_paths([DATA / "pyplanscoring/pinnacle_dicom_plan1"], {"institution": "ODE", "harvest_run": 7})
    import_paths([DATA / "pyplanscoring/gammaplan_srs"], {"institution": "AAR"})
    drain()
    assign_plan(world["TRIAL"], plan_of(), actor="test")
    Instance.objects.exclude(series__study__patient__patient_id="2018_Comp_SRS-Brain").update(
        received_at=LONG_AGO
    )
    return {**world, "phantom": Patient.objects.get(patient_id="PHANTOM_EXAMPLE")}


def uids(patient_id: str) -> set[str]:
    return set(
        Instance.objects.filter(series__study__patient__patient_id=patient_id).values_list(
            "sop_instance_uid", flat=True
        )
    )


def new_record(folder: Path) -> Path:
    ds = pydicom.dcmread(RECORDS / "RTRECORD_fx2.dcm")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(folder / "fx3.dcm", enforce_file_format=True)
    return folder / "fx3.dcm"


def advance_notices(days: int = 8) -> None:
    """As if the notice period had passed."""
    shift = dt.timedelta(days=days)
    for n in CleanupNotice.objects.filter(state=NoticeState.PENDING):
        CleanupNotice.objects.filter(pk=n.pk).update(
            noticed_at=n.noticed_at - shift, delete_after=n.delete_after - shift
        )


def dangling_record() -> Instance:
    """brain's treatment record of a plan that exists nowhere: in no plan bundle, so not in the project."""
    return Instance.objects.get(
        kind="record", series__study__patient__patient_id="brain", in_bundles__isnull=True
    )


def test_only_unretained_idle_data_is_announced_and_its_data_managers_are_told(archive: dict) -> None:
    plan = cleanup.plan_cleanup()
    brain = Patient.objects.get(patient_id="brain")
    assert sorted((p.patient, p.objects) for p in plan.announce) == sorted(
        [
            (
                archive["phantom"].pk,
                Instance.objects.filter(series__study__patient=archive["phantom"]).count(),
            ),
            (brain.pk, 1),
        ]
    )  # brain: only the dangling record
    assert plan.delete == []
    cleanup.run_cleanup(dry_run=False, actor="test")
    assert CleanupNotice.objects.filter(state=NoticeState.PENDING).count() == 2
    told = Notification.objects.get(event="cleanup_upcoming")
    assert (
        told.user == archive["dm"] and "2 patient(s) from ODE" in told.subject
    )  # one message per institution
    assert "PHANTOM_EXAMPLE" not in told.subject + told.body and "brain" not in told.subject + told.body
    assert Instance.objects.filter(series__study__patient=archive["phantom"]).exists()  # nothing deleted yet


def test_the_dry_run_is_exactly_what_the_real_run_deletes(archive: dict) -> None:
    cleanup.run_cleanup(dry_run=False, actor="test")
    advance_notices()
    dangling = dangling_record().sop_instance_uid
    before = {pid: uids(pid) - {dangling} for pid in ("brain", "2018_Comp_Lung", "2018_Comp_SRS-Brain")}
    dry, _ = cleanup.run_cleanup(dry_run=True, actor="test")
    announced = uids("PHANTOM_EXAMPLE") | {dangling}
    assert {u for p in dry.delete for u in p.sop_instance_uids} == announced
    assert uids("PHANTOM_EXAMPLE") | {dangling} == announced  # the dry run changed nothing

    store = blob_store()
    keys = list(Instance.objects.filter(sop_instance_uid__in=announced).values_list("blob_key", flat=True))
    _, result = cleanup.run_cleanup(dry_run=False, actor="test")
    assert sorted(result["deleted"]) == sorted(announced)
    assert not Patient.objects.filter(pk=archive["phantom"].pk).exists()
    assert {pid: uids(pid) for pid in before} == before  # in a project, harvested, recent: all kept
    trashed = TrashedInstance.objects.all()
    assert {t.sop_instance_uid for t in trashed} == announced
    assert all(not store.exists(k) for k in keys)
    assert all((Path(settings.TRASH_DIR) / t.trash_path).is_file() for t in trashed)
    runs = CleanupRun.objects
    assert runs.filter(dry_run=True).count() == 3 and runs.filter(dry_run=False).count() == 2

    TrashedInstance.objects.update(purge_after=timezone.now() - dt.timedelta(seconds=1))
    assert cleanup.purge_trash() == trashed.count() == 6  # 5 UIDs, one of them in two versions
    assert not any((Path(settings.TRASH_DIR) / t.trash_path).exists() for t in trashed)


def test_new_objects_or_an_assignment_cancel_a_notice(archive: dict, tmp_path: Path) -> None:
    cleanup.run_cleanup(dry_run=False, actor="test")
    assign_patient(archive["OTHER"], archive["phantom"], actor="test")  # retained now
    import_paths([new_record(tmp_path)], {"institution": "ODE"})  # brain: a new object arrives
    drain()
    advance_notices()
    plan, result = cleanup.run_cleanup(dry_run=False, actor="test")
    assert plan.delete == [] and result["cancelled"] == 2 and result["deleted"] == []
    assert set(CleanupNotice.objects.values_list("state", flat=True)) == {NoticeState.CANCELLED}


def test_data_an_area_declares_retained_is_kept(archive: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    ct = Instance.objects.filter(series__study__patient=archive["phantom"], kind="image").first()
    audits = apps.get_app_config("audits")
    monkeypatch.setattr(
        audits, "retained_instances", lambda: Instance.objects.filter(pk=ct.pk).values("pk"), raising=False
    )
    assert is_retained([ct.pk]) == {ct.pk}
    cleanup.run_cleanup(dry_run=False, actor="test")
    advance_notices()
    _, result = cleanup.run_cleanup(dry_run=False, actor="test")
    assert ct.sop_instance_uid not in result["deleted"] and Instance.objects.filter(pk=ct.pk).exists()
    assert result["deleted"]  # the rest of the patient went


def test_data_of_kept_harvest_runs_is_retained(archive: dict) -> None:
    lung = list(
        Instance.objects.filter(series__study__patient__patient_id="2018_Comp_Lung").values_list(
            "pk", flat=True
        )
    )
    assert lung and is_retained(lung) == set(lung)  # run 7 of the archive is kept
    HarvestRun.objects.filter(pk=7).update(keep=False)
    assert is_retained(lung) == set()  # a run that is not kept retains nothing


def test_expired_grants_and_unrenewed_projects_are_recorded_once(world: dict) -> None:
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    grant(world["viewer"], world["TRIAL"], ["view"], yesterday, actor="test")
    world["OTHER"].renew_by = yesterday
    world["OTHER"].save()
    first = record_suspensions()
    assert first == {"grants_suspended": 1, "projects_suspended": 1}
    assert record_suspensions() == {"grants_suspended": 0, "projects_suspended": 0}
    assert ExpiryNotice.objects.filter(kind="grant_suspended", user=world["viewer"]).exists()
    told = set(Notification.objects.filter(event="access_suspended").values_list("user__username", flat=True))
    assert told == {"viewer", "outsider", "admin"}  # the grant holder; OTHER's holders and the site admins
    grant(
        world["viewer"], world["TRIAL"], ["view"], NEXT_YEAR, actor="test"
    )  # renewed: nothing more to record
    assert record_suspensions()["grants_suspended"] == 0


def test_the_scheduled_job_reports_first_then_deletes_through_work_rows(archive: dict, settings: Any) -> None:
    cleanup.run_scheduled("2026-03-10")
    advance_notices()
    report = cleanup.run_scheduled("2026-03-11")
    assert report["deletions_queued"] == 2
    assert CleanupRun.objects.filter(dry_run=True).count() == 2
    drain()
    assert not Patient.objects.filter(pk=archive["phantom"].pk).exists()
    assert TrashedInstance.objects.exclude(trash_path="").count() == TrashedInstance.objects.count() > 0


def test_the_expiry_job_reminds_before_and_records_after(world: dict) -> None:
    from rtbank.rules.expiry import run_scheduled

    soon = timezone.localdate() + dt.timedelta(days=5)
    grant(world["viewer"], world["TRIAL"], ["view"], soon, actor="test")
    grant(
        world["ruler"], world["TRIAL"], ["rules"], timezone.localdate() - dt.timedelta(days=2), actor="test"
    )
    report = run_scheduled("2026-03-10")
    assert report["reminders"] >= 1 and report["grants_suspended"] == 1
    assert Notification.objects.filter(event="grant_expiring", user=world["viewer"]).exists()
    assert Notification.objects.filter(event="access_suspended", user=world["ruler"]).exists()
    assert run_scheduled("2026-03-11")["grants_suspended"] == 0

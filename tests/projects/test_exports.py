"""Bulk export: only what the grant allows, named by subject ID unless `identifiers`, every export logged."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pydicom
import pytest
from django.core.management import call_command

from rtbank.catalog.models import Instance
from rtbank.projects import exports
from rtbank.projects.access import instances_in
from rtbank.projects.models import AccessLog, ExportJob
from rtbank.projects.services import assign_patient, grant
from rtbank.work.worker import run_until_idle
from tests.projects.world import NEXT_YEAR, PATIENT_ID, World
from tests.web.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def zip_of(response) -> zipfile.ZipFile:  # noqa: ANN001
    data = b"".join(response.streaming_content)
    return zipfile.ZipFile(io.BytesIO(data))


def uids_in(archive: zipfile.ZipFile) -> set[str]:
    return {
        pydicom.dcmread(io.BytesIO(archive.read(n)), stop_before_pixels=True).SOPInstanceUID
        for n in archive.namelist()
    }


@pytest.fixture
def downloader(world: World):  # noqa: ANN201
    """An analyst of A who may also download, without `identifiers`."""
    user = world.users["analyst_A"]
    grant(user, world.projects["A"], ["download"], NEXT_YEAR, actor="test")
    return user


def test_a_streamed_zip_holds_exactly_the_project_data_named_by_subject_id(world: World, downloader) -> None:
    assign_patient(world.projects["B"], world.inbox_aar, actor="test")  # data of another project, same time
    response = client_for(downloader).post("/projects/A/export/", {"scope": "all"})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zip_of(response)
    expected = set(instances_in(world.projects["A"]).values_list("sop_instance_uid", flat=True))
    assert uids_in(archive) == expected and len(expected) == 5  # plan, structure set, dose, two records
    assert all(name.startswith("A-0001/") for name in archive.namelist())
    assert not any(PATIENT_ID in name for name in archive.namelist())
    rows = AccessLog.objects.filter(user=downloader, action="download", outcome="allowed")
    assert list(rows.values_list("object_id", flat=True)) == [str(world.patient.pk)]


def test_identifiers_name_folders_by_patient_id(world: World) -> None:
    response = client_for(world.users["manager_A"]).post("/projects/A/export/", {"scope": "all"})
    assert all(name.startswith(f"{PATIENT_ID}/") for name in zip_of(response).namelist())


def test_selected_subjects_only(world: World, downloader) -> None:
    assign_patient(world.projects["A"], world.inbox_ode, actor="test")
    other = world.projects["A"].subjects.get(patient=world.inbox_ode).subject_id
    response = client_for(downloader).post("/projects/A/export/", {"scope": "selected", "subjects": [other]})
    names = zip_of(response).namelist()
    assert names and all(n.startswith(f"{other}/") for n in names)
    nothing = client_for(downloader).post("/projects/A/export/", {"scope": "selected"})
    assert nothing.status_code == 302  # nothing selected: back to the project page, nothing exported


def test_a_plan_assigned_alone_exports_its_bundle_not_the_rest_of_the_patient(
    world: World, downloader
) -> None:
    from rtbank.projects.services import assign_plan

    plan = Instance.objects.get(kind="plan", series__study__patient=world.b_patient)
    project_c = world.projects["A"]
    item = assign_plan(project_c, plan, actor="admin", agreement="DUA-9", actor_is_site_admin=True)
    response = client_for(downloader).post(
        "/projects/A/export/", {"scope": "selected", "subjects": [item.subject.subject_id]}
    )
    bundle = {plan.sop_instance_uid} | set(
        plan.bundle_members.values_list("member__sop_instance_uid", flat=True)
    )
    assert uids_in(zip_of(response)) == bundle


def spy_chunks(monkeypatch, job_id: list[int]) -> list[int]:  # noqa: ANN001
    """Record the committed progress each time a chunk starts."""
    seen: list[int] = []
    real = exports.export_tree

    def chunk(instances, out, **kwargs):  # noqa: ANN001, ANN202
        seen.append(ExportJob.objects.get(pk=job_id[0]).done_files)
        return real(instances, out, **kwargs)

    monkeypatch.setattr(exports, "export_tree", chunk)
    return seen


def test_a_large_export_runs_in_the_background_in_chunks_with_progress(
    world: World, downloader, settings, monkeypatch
) -> None:
    settings.EXPORT_STREAM_MAX_FILES = 2  # the project's five files make it "large"
    settings.EXPORT_CHUNK_FILES = 2
    client = client_for(downloader)
    response = client.post("/projects/A/export/", {"scope": "all"})
    job = ExportJob.objects.get(user=downloader)
    assert response.status_code == 302 and response["Location"] == f"/exports/{job.pk}/"
    assert job.total_files == 5 and job.state == "pending"
    assert ">waiting<" in client.get(f"/exports/{job.pk}/").content.decode()
    progress = spy_chunks(monkeypatch, [job.pk])
    run_until_idle([exports.EXPORT])
    job.refresh_from_db()
    assert progress == [0, 2, 4]  # three chunks, each committed before the next began
    assert job.state == "done" and job.done_files == 5
    folder = exports.job_folder(job)
    written = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in folder.rglob("*.dcm")}
    assert written == set(instances_in(world.projects["A"]).values_list("sop_instance_uid", flat=True))
    assert "Download zip" in client.get(f"/exports/{job.pk}/").content.decode()
    download = client.get(f"/exports/{job.pk}/download/")
    assert download.status_code == 200 and uids_in(zip_of(download)) == written
    assert downloader.notifications.filter(event="export_ready", url=f"/exports/{job.pk}/").exists()
    assert AccessLog.objects.filter(user=downloader, action="export_job").count() == 1
    assert AccessLog.objects.filter(user=downloader, action="download").count() == 1


def test_a_background_export_stops_when_the_grant_ends(
    world: World, downloader, settings, monkeypatch
) -> None:
    settings.EXPORT_STREAM_MAX_FILES = 2
    settings.EXPORT_CHUNK_FILES = 2
    client_for(downloader).post("/projects/A/export/", {"scope": "all"})
    job = ExportJob.objects.get(user=downloader)
    revoked = []

    def revoke_after_first_chunk() -> None:
        downloader.grants.filter(permission="download").delete()
        revoked.append(True)

    real = exports.export_tree
    calls = []

    def chunk(instances, out, **kwargs):  # noqa: ANN001, ANN202
        calls.append(1)
        result = real(instances, out, **kwargs)
        if len(calls) == 1:
            revoke_after_first_chunk()
        return result

    monkeypatch.setattr(exports, "export_tree", chunk)
    run_until_idle([exports.EXPORT])
    job.refresh_from_db()
    assert revoked and len(calls) == 1
    assert job.state == "failed" and "download" in job.error and job.done_files == 2
    assert downloader.notifications.filter(event="export_failed").exists()
    assert client_for(downloader).get(f"/exports/{job.pk}/download/").status_code == 403


def test_without_download_nothing_is_exported(world: World) -> None:
    response = client_for(world.users["analyst_A"]).post("/projects/A/export/", {"scope": "all"})
    assert response.status_code == 403
    assert AccessLog.objects.filter(
        user=world.users["analyst_A"], action="download", outcome="denied"
    ).exists()


def test_the_cli_exports_a_project_by_subject_id(world: World, tmp_path: Path) -> None:
    out = tmp_path / "out"
    call_command("export", "--out", str(out), "--project", "A")
    files = list(out.rglob("*.dcm"))
    assert {p.relative_to(out).parts[0] for p in files} == {"A-0001"} and len(files) == 5
    assert AccessLog.objects.filter(action="export", project__code="A", actor__startswith="cli:").count() == 1

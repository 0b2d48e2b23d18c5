"""Web upload: files and zips through the same pipeline, durable before success, checked when
de-identified."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile

from rtbank.catalog.models import Instance
from rtbank.dicom.anonymize import command as anonymize_command
from rtbank.projects import uploads
from rtbank.projects.models import AccessLog, ProjectSubject, Upload
from tests.conftest import DATA
from tests.projects.world import World, run_filing
from tests.web.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)
RT_UTILS = [DATA / "rt-utils/ct_1.dcm", DATA / "rt-utils/ct_2.dcm", DATA / "rt-utils/rt.dcm"]
NEW_PATIENT = [
    DATA / "dicompyler-core/ct.0.dcm",
    DATA / "dicompyler-core/rtss.dcm",
    DATA / "dicompyler-core/rtplan.dcm",
]


def zipped(files: dict[str, bytes]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return SimpleUploadedFile("upload.zip", buffer.getvalue(), "application/zip")


def new_upload(world: World) -> Upload:
    return Upload.objects.exclude(pk=world.upload.pk).get()


def spool_ready() -> list[str]:
    ready = Path(settings.SPOOL_DIR) / "ready"
    return sorted(n for n in os.listdir(ready) if n.endswith(".dcm")) if ready.exists() else []


def anonymised(tmp_path: Path) -> dict[str, bytes]:
    """The GammaPlan patient as `rtbank anonymize` writes it (a de-identified upload that must pass)."""
    import argparse

    parser = argparse.ArgumentParser()
    anonymize_command.add_arguments(parser)
    out = tmp_path / "anon"
    anonymize_command.run(parser.parse_args([str(DATA / "pyplanscoring/gammaplan_srs"), "--out", str(out)]))
    return {p.name: p.read_bytes() for p in sorted(out.rglob("*.dcm"))}


def test_a_zip_is_stored_durably_before_the_answer_with_per_file_results(world: World) -> None:
    client = client_for(world.users["manager_A"])
    members = {p.name: p.read_bytes() for p in NEW_PATIENT} | {"notes/readme.txt": b"not dicom"}
    before = len(spool_ready())
    response = client.post("/upload/", {"files": zipped(members)})
    assert response.status_code == 302
    upload = new_upload(world)
    assert (upload.stored, upload.not_dicom, upload.rejected) == (3, 1, 0)
    assert len(spool_ready()) - before == 3  # in the spool (fsynced) when the answer came
    page = client.get(response["Location"]).content.decode()
    assert (
        "upload.zip:notes/readme.txt" in page
        and "not DICOM (skipped)" in page
        and "upload.zip:rtss.dcm" in page
    )
    run_filing()
    assert Instance.objects.filter(received_via="upload", institution__code="ODE").count() >= 3
    assert AccessLog.objects.filter(
        action="upload", user=world.users["manager_A"], outcome="allowed"
    ).exists()


def test_uploads_go_to_disk_never_into_memory(world: World, monkeypatch) -> None:
    seen: list[type] = []
    real = uploads.receive

    def spy(access, files, **kwargs):  # noqa: ANN001, ANN202
        seen.extend(type(f) for f in files)
        return real(access, files, **kwargs)

    monkeypatch.setattr(uploads, "receive", spy)
    client_for(world.users["manager_A"]).post(
        "/upload/", {"files": SimpleUploadedFile("ct.dcm", RT_UTILS[0].read_bytes())}
    )
    assert seen == [TemporaryUploadedFile]


def test_an_upload_into_a_project_assigns_the_patients_once_filed(world: World) -> None:
    client = client_for(world.users["manager_A"])
    response = client.post(
        "/upload/", {"files": [SimpleUploadedFile(p.name, p.read_bytes()) for p in RT_UTILS], "project": "A"}
    )
    assert response.status_code == 302
    run_filing(uploads.UPLOAD_ASSIGN)
    upload = new_upload(world)
    assert upload.assignment == "done", upload.assignment_result
    subject = ProjectSubject.objects.get(project__code="A", patient=world.inbox_ode)
    assert upload.assignment_result["assigned"] == [subject.subject_id] and subject.assigned_via == "upload"
    assert "assigned" in client.get(response["Location"]).content.decode()


def test_an_upload_never_assigns_another_institutions_patient(world: World) -> None:
    """The AAR uploader sends a copy of an object ODE already holds: it must not pull ODE's patient into B."""
    client = client_for(world.users["member_B"])
    data = RT_UTILS[0].read_bytes()
    client.post("/upload/", {"files": SimpleUploadedFile("ct.dcm", data), "project": "B"})
    run_filing(uploads.UPLOAD_ASSIGN)
    assert not ProjectSubject.objects.filter(project__code="B", patient=world.inbox_ode).exists()


def test_uploading_into_a_project_needs_assign_there(world: World) -> None:
    response = client_for(world.users["member_B"]).post(
        "/upload/", {"files": SimpleUploadedFile("ct.dcm", RT_UTILS[0].read_bytes()), "project": "A"}
    )
    assert response.status_code == 403
    assert not Upload.objects.exclude(pk=world.upload.pk).exists()


def test_only_uploaders_may_upload(world: World) -> None:
    assert client_for(world.users["viewer_A"]).get("/upload/").status_code == 403
    assert (
        client_for(world.users["site_admin"])
        .post("/upload/", {"files": SimpleUploadedFile("ct.dcm", RT_UTILS[0].read_bytes())})
        .status_code
        == 403
    )


def test_a_de_identified_upload_with_identifiers_is_refused_with_the_list(world: World) -> None:
    import pydicom

    named = pydicom.dcmread(RT_UTILS[0])
    named.PatientName = "DOE^JANE"
    named.ReferringPhysicianName = "WHO^DR"
    buffer = io.BytesIO()
    named.save_as(buffer)
    members = {p.name: p.read_bytes() for p in RT_UTILS[1:]} | {"named.dcm": buffer.getvalue()}
    before = spool_ready()
    response = client_for(world.users["manager_A"]).post(
        "/upload/", {"files": zipped(members), "deidentified": "on"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "identifiers remain" in html and "nothing was stored" in html
    assert "(0010,0010) PatientName" in html and "(0008,0090) ReferringPhysicianName" in html
    assert "(0008,0020) StudyDate" in html and "in 3 files" in html
    assert "DOE" not in html and "WHO" not in html  # the list names elements, never their values
    assert spool_ready() == before and not Upload.objects.exclude(pk=world.upload.pk).exists()
    assert AccessLog.objects.filter(action="upload", outcome="refused").exists()


def test_a_de_identified_upload_made_by_rtbank_anonymize_is_accepted(world: World, tmp_path) -> None:
    files = anonymised(tmp_path)
    response = client_for(world.users["manager_A"]).post(
        "/upload/", {"files": zipped(files), "deidentified": "on"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert new_upload(world).stored == len(files) == 3


def test_a_zip_slip_archive_is_refused_with_a_message(world: World) -> None:
    hostile = zipped({"../../etc/evil.dcm": RT_UTILS[0].read_bytes()})
    response = client_for(world.users["manager_A"]).post("/upload/", {"files": hostile})
    assert response.status_code == 302
    upload = new_upload(world)
    assert upload.stored == 0 and upload.rejected == 1
    assert "zip slip" in client_for(world.users["manager_A"]).get(f"/upload/{upload.pk}/").content.decode()

"""The audit pages, driven as a person would: create, make copies, download, upload a return, read the
report; and who may not (``audit`` on the project needed)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pydicom
from django.core.files.uploadedfile import SimpleUploadedFile

from rtbank.audits.models import Audit, CopyState, ReturnedObject
from rtbank.projects.models import AccessLog
from tests.audits.support import AuditWorld, drain, edited_structure_set


def test_an_auditor_runs_an_audit_from_the_web(world: AuditWorld, tmp_path: Path) -> None:
    client = world.client("auditor")
    assert client.get("/projects/AUD/audits/new/").status_code == 200
    response = client.post(
        "/projects/AUD/audits/new/",
        {
            "name": "Prostate contouring",
            "plans": [p.sop_instance_uid for p in world.plans],
            "contents": ["structure_set"],
            "remove_roi_types": ["PTV"],
            "options": ["clean_descriptors"],
            "participants": "Odense\nAarhus",
        },
    )
    audit = Audit.objects.get(name="Prostate contouring")
    assert response.status_code == 302 and response["Location"].endswith(f"/audits/{audit.pk}/")
    assert audit.remove_roi_types == ["PTV"] and audit.options == ["clean_descriptors"]
    assert client.post(f"/projects/AUD/audits/{audit.pk}/copies/", {"action": "make"}).status_code == 302
    drain()
    odense = audit.participants.get(name="Odense")
    assert odense.copy_state == CopyState.READY
    page = client.get(f"/projects/AUD/audits/{audit.pk}/")
    assert page.status_code == 200 and b"Odense" in page.content and b"download zip" in page.content
    download = client.get(f"/projects/AUD/audits/{audit.pk}/participants/{odense.pk}/download/")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    (name,) = [n for n in archive.namelist() if n.startswith("structure-set")][:1]
    assert len(archive.namelist()) == 2  # one structure set per case
    assert AccessLog.objects.filter(action="audit_download", object_type="patient").count() == 2
    received = tmp_path / "received.dcm"
    received.write_bytes(archive.read(name))
    returned = edited_structure_set(received, tmp_path / "returned.dcm", scale=1.1)
    upload = client.post(
        f"/projects/AUD/audits/{audit.pk}/returns/",
        {"files": [SimpleUploadedFile("returned.dcm", returned.read_bytes())]},
    )
    assert upload.status_code == 200 and b"stored: a return of Odense" in upload.content
    drain()
    assert ReturnedObject.objects.get().participant == odense
    report = client.get(f"/projects/AUD/audits/{audit.pk}/report/")
    assert report.status_code == 200 and b"Odense" in report.content and b"1.21" in report.content
    assert client.post(f"/projects/AUD/audits/{audit.pk}/close/").status_code == 302
    audit.refresh_from_db()
    assert audit.state == "closed"
    assert pydicom.dcmread(returned).PatientID.startswith(f"AUDIT{audit.pk}-1-")


def test_audit_pages_need_the_audit_permission_on_the_project(world: AuditWorld) -> None:
    from rtbank.audits import services

    audit = services.create_audit(
        world.access(),
        world.project,
        name="A1",
        plans=[world.plans[0].sop_instance_uid],
        participants=1,
        contents=["structure_set"],
    )
    base = f"/projects/AUD/audits/{audit.pk}"
    pages = [
        "/projects/AUD/audits/",
        "/projects/AUD/audits/new/",
        f"{base}/",
        f"{base}/returns/",
        f"{base}/report/",
        f"{base}/report.csv",
    ]
    viewer, outsider = world.client("viewer"), world.client("outsider")
    for url in pages:
        assert viewer.get(url).status_code == 403, url  # a member of AUD without `audit`
        assert outsider.get(url).status_code == 404, url  # `audit` on another project only
        assert world.client("anonymous").get(url).status_code == 302, url
    assert outsider.get(f"/projects/OTHER/audits/{audit.pk}/").status_code == 404  # not OTHER's audit
    assert viewer.post(f"{base}/copies/", {"action": "make"}).status_code == 403
    assert AccessLog.objects.filter(action="view_audit", outcome="denied").exists()
    assert world.client("auditor").get(f"{base}/").status_code == 200

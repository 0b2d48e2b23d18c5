"""Foundation pages: login, patient list and page for site admins, /healthz, no leaks to others."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client

from rtbank.catalog.models import Patient
from rtbank.ingest.importer import import_paths
from rtbank.projects.models import AccessLog
from tests.conftest import DATA
from tests.projects.world import run_filing
from tests.web.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def loaded() -> Patient:
    import_paths([DATA / "pyplanscoring/raystation_brain_srs_imrt", DATA / "synthetic-rtrecord"], {})
    run_filing()
    return Patient.objects.get(patient_id="brain")


def test_anonymous_users_are_sent_to_login(loaded: Patient) -> None:
    for url in ("/", "/inbox/", f"/inbox/patients/{loaded.pk}/"):
        response = client_for(None).get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_site_admin_sees_an_unassigned_patient_with_its_references(loaded: Patient) -> None:
    admin = User.objects.create_superuser("admin", "", "a-long-password-1")
    response = client_for(admin).get(f"/inbox/patients/{loaded.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "imrt 4" in html and "28 ROIs" in html
    assert "referenced by:" in html and "1 unresolved" in html  # the dangling record's plan
    assert AccessLog.objects.filter(
        action="view_patient", object_id=str(loaded.pk), outcome="allowed"
    ).exists()


def test_a_user_without_rights_gets_404_and_the_attempt_is_logged(loaded: Patient) -> None:
    user = User.objects.create_user("someone", "", "a-long-password-1")
    client = client_for(user)
    assert client.get(f"/inbox/patients/{loaded.pk}/").status_code == 404
    assert "brain" not in client.get("/inbox/").content.decode()
    assert AccessLog.objects.filter(user=user, action="view_patient", outcome="not_found").count() == 1


def test_hostile_names_are_rendered_as_text(tmp_path) -> None:
    import pydicom

    ds = pydicom.dcmread(DATA / "rt-utils/rt.dcm")
    ds.PatientName = "<script>alert(1)</script>"
    ds.StructureSetROISequence[0].ROIName = "<img src=x onerror=alert(2)>"
    ds.save_as(tmp_path / "x.dcm")
    import_paths([tmp_path / "x.dcm"], {})
    run_filing()
    admin = User.objects.create_superuser("admin", "", "a-long-password-1")
    patient = Patient.objects.get()
    html = client_for(admin).get(f"/inbox/patients/{patient.pk}/").content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html


def test_healthz_reports_each_part() -> None:
    response = Client().get("/healthz")
    report = json.loads(response.content)
    assert set(report) >= {"database", "spool", "worker", "work", "ok"}
    assert report["database"]["ok"] is True
    assert (
        response.status_code == 503 and report["worker"]["ok"] is False
    )  # no worker heartbeat in a unit test

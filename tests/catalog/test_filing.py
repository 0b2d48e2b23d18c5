"""Filing objects: duplicates ignored, corrections versioned, collisions quarantined, hashes kept."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydicom
import pytest

from rtbank.catalog.models import Instance, InstanceState, Patient, PlanBundleMember
from rtbank.catalog.services import export_tree, stats, verify
from rtbank.eventlog.models import Event
from rtbank.ingest.importer import import_paths
from rtbank.institutions.models import Institution
from rtbank.work.worker import run_until_idle
from tests.conftest import DATA

pytestmark = pytest.mark.django_db(transaction=True)


def ingest(*paths: Path, institution: str = "") -> None:
    import_paths(list(paths), {"institution": institution})
    run_until_idle()


def test_an_identical_object_is_acknowledged_and_ignored() -> None:
    a = DATA / "aptg-dcpt-let/plan03_ramp_full/RS1.2.752.243.1.1.20250522124652761.2000.43711.dcm"
    b = DATA / "aptg-dcpt-let/plan04_ramp_middle/RS1.2.752.243.1.1.20250522124652761.2000.43711.dcm"
    ingest(a, b)
    assert Instance.objects.count() == 1


def test_a_corrected_object_from_the_same_institution_becomes_current() -> None:
    Institution.objects.create(code="RH", name="Rigshospitalet")
    ingest(DATA / "rt-utils/invalid_reference_rt.dcm", institution="RH")
    ingest(DATA / "rt-utils/non_existent_reference_rt.dcm", institution="RH")
    versions = Instance.objects.order_by("version")
    assert [(v.version, v.state) for v in versions] == [
        (1, InstanceState.SUPERSEDED),
        (2, InstanceState.CURRENT),
    ]
    assert Event.objects.filter(action="object_corrected").count() == 1


def test_the_same_uid_with_other_content_from_another_institution_is_quarantined() -> None:
    Institution.objects.create(code="RH", name="Rigshospitalet")
    Institution.objects.create(code="OUH", name="Odense")
    ingest(DATA / "rt-utils/invalid_reference_rt.dcm", institution="RH")
    original = Instance.objects.get()
    ingest(DATA / "rt-utils/non_existent_reference_rt.dcm", institution="OUH")
    original.refresh_from_db()
    assert original.state == InstanceState.CURRENT  # nothing overwritten
    quarantined = Instance.objects.get(state=InstanceState.QUARANTINED)
    assert quarantined.series is None and "another institution" in quarantined.provenance["collision"]
    assert Event.objects.filter(action="uid_collision").count() == 1
    assert stats()["quarantined"] == 1 and stats()["instances"] == 1


def test_patients_of_two_institutions_with_the_same_id_are_two_patients() -> None:
    Institution.objects.create(code="RH", name="Rigshospitalet")
    Institution.objects.create(code="OUH", name="Odense")
    ds = pydicom.dcmread(DATA / "rt-utils/ct_1.dcm")
    ingest(DATA / "rt-utils/ct_1.dcm", institution="RH")
    ingest(DATA / "rt-utils/ct_2.dcm", institution="OUH")
    assert Patient.objects.filter(patient_id=ds.PatientID).count() == 2


def test_hashes_are_kept_and_verify_finds_a_corrupted_file() -> None:
    ingest(DATA / "rt-utils/ct_1.dcm", DATA / "rt-utils/rt.dcm")
    inputs = {
        hashlib.sha256((DATA / f"rt-utils/{n}").read_bytes()).hexdigest() for n in ("ct_1.dcm", "rt.dcm")
    }
    assert set(Instance.objects.values_list("file_sha256", flat=True)) == inputs  # stored byte for byte
    inst = Instance.objects.first()
    assert verify().ok
    from rtbank.catalog.blobstore import blob_store

    path = blob_store().local_path(inst.blob_key)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    report = verify()
    assert report.corrupt == [inst.pk] and not report.ok


def test_plan_bundles_grow_when_late_objects_arrive() -> None:
    ingest(*(DATA / "pyplanscoring/raystation_brain_srs_imrt").glob("RP*.dcm"))
    plan = Instance.objects.get(kind="plan")
    assert PlanBundleMember.objects.filter(plan=plan).count() == 1
    ingest(
        *(DATA / "pyplanscoring/raystation_brain_srs_imrt").glob("R[SD]*.dcm"), DATA / "synthetic-rtrecord"
    )
    roles = sorted(PlanBundleMember.objects.filter(plan=plan).values_list("role", flat=True))
    assert roles == ["dose", "plan", "record", "record", "structure_set"]


def test_export_names_never_leave_the_output_folder(tmp_path: Path) -> None:
    ds = pydicom.dcmread(DATA / "rt-utils/ct_1.dcm")
    ds.PatientID = "../../../../etc/evil"
    ds.StudyDescription = "/abs/../x"
    src = tmp_path / "in.dcm"
    ds.save_as(src)
    ingest(src)
    out = tmp_path / "export"
    n = export_tree(Instance.objects.select_related("series__study__patient"), out)
    files = [p for p in tmp_path.rglob("*.dcm") if p != src]
    assert n == 1 and len(files) == 1 and files[0].is_relative_to(out)
    assert pydicom.dcmread(files[0]).SOPInstanceUID == ds.SOPInstanceUID

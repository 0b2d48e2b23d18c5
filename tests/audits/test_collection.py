"""Returns are recognised by the copy's UIDs or pseudonyms, attached to the right participant and case, and
never become clinical data: no clinical patient, not in the inbox, not matched by rules, never assigned."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pydicom.uid import generate_uid

from rtbank.audits.models import PseudonymousPatient, ReturnedObject
from rtbank.audits.uploads import receive_returns
from rtbank.catalog.models import Instance, Patient
from rtbank.projects.access import Access
from rtbank.projects.models import ProjectSubject
from rtbank.projects.services import AssignmentRefused, assign_patient
from rtbank.rules.models import Rule, RuleFiring
from rtbank.rules.retention import is_retained
from tests.audits.support import (
    AuditWorld,
    clinical_patients,
    copy_structure_sets,
    drain,
    edited_structure_set,
    make_audit,
    send_back,
)
from tests.conftest import DATA

SS_ONLY = ["structure_set"]


def _site_rule_on_every_structure_set(world: AuditWorld) -> Rule:
    """A site-wide rule putting any structure set's patient into the project (it fires on clinical data)."""
    return Rule.objects.create(
        project=None,
        name="everything",
        enabled=True,
        scope="patient",
        created_by="test",
        conditions={"type": "all", "conditions": [{"type": "modality", "values": ["RTSTRUCT"]}]},
        actions=[{"type": "assign", "project": world.project.pk}],
    )


def test_returns_are_attached_to_their_participant_and_case_and_stay_out_of_clinical_data(
    world: AuditWorld, scratch: Path
) -> None:
    audit = make_audit(world, 3, contents=SS_ONLY)
    rule = _site_rule_on_every_structure_set(world)
    clinical, admin = clinical_patients(), Access(world.users["admin"])
    inbox = set(admin.inbox_patients().values_list("pk", flat=True))
    copies = copy_structure_sets(audit)
    sent = []
    for n, (name, files) in enumerate(sorted(copies.items()), start=1):
        for case, path in enumerate(files, start=1):
            returned = edited_structure_set(path, scratch / name / f"case{case}.dcm", shift_mm=2.0 * (n - 1))
            send_back([returned], calling_ae=f"CENTRE{n}", score=False)  # scoring: test_qa
            sent.append((name, case, str(pydicom.dcmread(returned, stop_before_pixels=True).SOPInstanceUID)))
    returns = {
        r.instance.sop_instance_uid: r
        for r in ReturnedObject.objects.select_related(
            "participant", "dataset", "instance__series__study__patient"
        )
    }
    assert len(returns) == len(sent) == 6
    for name, case, uid in sent:
        ret = returns[uid]
        assert (ret.participant.name, ret.dataset.label, ret.matched_by) == (name, f"case {case}", "uid")
        patient = ret.instance.series.study.patient
        assert patient.issuer == f"audit:{audit.pk}:{ret.participant.pk}"
        assert (
            patient.patient_id
            == PseudonymousPatient.objects.get(participant=ret.participant, dataset=ret.dataset).pseudonym
        )
        assert ret.instance.provenance["claim"]["participant"] == ret.participant.pk
    # not clinical: no new clinical patient, not in the inbox, no rule fired, never assigned
    assert clinical_patients() == clinical
    assert set(admin.inbox_patients().values_list("pk", flat=True)) == inbox
    returned_patients = Patient.objects.filter(issuer__startswith="audit:")
    assert returned_patients.count() == 6
    assert not ProjectSubject.objects.filter(patient__in=returned_patients).exists()
    assert not RuleFiring.objects.filter(rule=rule).exists()
    with pytest.raises(AssignmentRefused, match="audit participant"):
        assign_patient(world.project, returned_patients.first(), actor="test")
    # returns and the cases' objects are retained: cleanup never deletes them
    retained = is_retained([r.instance_id for r in returns.values()] + [p.pk for p in world.plans])
    assert retained == {r.instance_id for r in returns.values()} | {p.pk for p in world.plans}
    # the same rule does fire on clinical data (so the check above could fail)
    send_back([_clinical_structure_set(world, scratch)], calling_ae="TPS", institution="ODE", score=False)
    assert RuleFiring.objects.filter(rule=rule).exists()


def _clinical_structure_set(world: AuditWorld, scratch: Path) -> Path:
    ds = pydicom.dcmread(DATA / "rt-utils/rt.dcm")
    ds.PatientID = "CLINICAL-1"
    target = scratch / "clinical.dcm"
    ds.save_as(target)
    return target


def test_a_return_without_the_copys_uids_is_recognised_by_its_pseudonym(
    world: AuditWorld, scratch: Path
) -> None:
    audit = make_audit(world, 2, contents=SS_ONLY)
    second = audit.participants.get(copy_id="2")
    pseudonym = PseudonymousPatient.objects.filter(participant=second).order_by("dataset__position").first()
    ds = pydicom.dcmread(DATA / "rt-utils/rt.dcm")  # a structure set drawn on a CT the copy did not hold
    ds.PatientID, ds.PatientName = pseudonym.pseudonym, pseudonym.pseudonym
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    target = scratch / "by-pseudonym.dcm"
    ds.save_as(target)
    send_back([target], calling_ae="CENTRE2", score=False)
    ret = ReturnedObject.objects.get()
    assert (ret.participant, ret.dataset, ret.matched_by) == (second, pseudonym.dataset, "pseudonym")


def test_clinical_data_cannot_pass_for_returned_audit_data(world: AuditWorld, scratch: Path) -> None:
    make_audit(world, 1, contents=SS_ONLY)
    ds = pydicom.dcmread(DATA / "rt-utils/rt.dcm")
    ds.PatientID, ds.IssuerOfPatientID = "SPOOF-1", "audit:1:1"
    target = scratch / "spoof.dcm"
    ds.save_as(target)
    send_back([target], calling_ae="TPS", institution="ODE", score=False)
    patient = Patient.objects.get(patient_id="SPOOF-1")
    assert patient.issuer == "dicom:audit:1:1"
    assert not ReturnedObject.objects.exists()
    assert Access(world.users["admin"]).inbox_patients().filter(pk=patient.pk).exists()


def test_an_upload_on_the_audit_page_keeps_only_returns_of_that_audit(
    world: AuditWorld, scratch: Path
) -> None:
    audit = make_audit(world, 2, contents=SS_ONLY)
    copies = copy_structure_sets(audit)
    name = sorted(copies)[1]
    returned = edited_structure_set(copies[name][0], scratch / "up.dcm", scale=1.05)
    files = [
        SimpleUploadedFile("return.dcm", returned.read_bytes()),
        SimpleUploadedFile("clinical.dcm", (DATA / "rt-utils/rt.dcm").read_bytes()),
        SimpleUploadedFile("notes.txt", b"not dicom"),
    ]
    results = dict(receive_returns(Access(world.users["auditor"]), audit, files))
    assert results["return.dcm"].startswith(f"stored: a return of {name}")
    assert results["clinical.dcm"].startswith("refused: not recognised")
    assert results["notes.txt"].startswith("refused")
    clinical = clinical_patients()
    drain(score=False)
    ret = ReturnedObject.objects.select_related("participant", "instance").get()
    assert ret.participant.name == name and ret.instance.received_via == "upload"
    assert clinical_patients() == clinical
    assert not Instance.objects.filter(series__study__patient__patient_id="PHANTOM_EXAMPLE").exists()

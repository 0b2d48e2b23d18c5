"""Protocol QA while collecting: required ROIs and dose constraints graded per plan, shown on the QA page
and in the CSV, and a notification to the project's managers when a new plan deviates."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from rtbank.analysis import mapping, qa, services
from rtbank.analysis.models import PlanQa, QaResult
from rtbank.catalog.models import Patient
from rtbank.ingest.importer import import_paths
from rtbank.notifications.models import Notification
from rtbank.projects.services import assign_patient
from rtbank.work.worker import run_until_idle
from tests.analysis.conftest import AnalysisWorld
from tests.analysis.support import write_phantom_patient

pytestmark = pytest.mark.django_db(transaction=True)


def protocol(w: AnalysisWorld) -> AnalysisWorld:
    for pattern, standard in (
        ("PTV*70", "PTV_High"),
        ("Spinal Cord", "SpinalCord"),
    ):  # PH2's "Medulla" unmapped
        mapping.add_rule(w.project, pattern, standard, actor="test")
    services.add_required_roi(w.project, "SpinalCord")
    services.add_required_roi(w.project, "PTV_High")
    # Cord at 70–75 Gy: D0.03cc ≈ 74.8 Gy. PTV: D95% ≈ 54.5 Gy = 77.9 % of 70 Gy; Dmean ≈ 60 Gy.
    services.add_constraint(w.project, "SpinalCord D0.03cc < 74 Gy minor 76", actor="test")
    services.add_constraint(w.project, "PTV_High D95% >= 95 %Rx minor 90", actor="test")
    services.add_constraint(w.project, "PTV_High Dmean >= 59 Gy", actor="test")
    run_until_idle()
    return w


def results(w: AnalysisWorld, patient_id: str) -> dict[str, tuple[str, float | None]]:
    rows = QaResult.objects.filter(project=w.project, plan__series__study__patient__patient_id=patient_id)
    return {
        (str(r.constraint) if r.constraint else f"{r.standard_name} required"): (r.status, r.value)
        for r in rows
    }


def test_each_plan_is_graded_per_constraint_with_missing_roi_flags(analysis_world: AnalysisWorld) -> None:
    w = protocol(analysis_world)
    ph1, ph2 = results(w, "PH1"), results(w, "PH2")
    assert ph1["SpinalCord required"] == ("pass", None) and ph1["PTV_High required"] == ("pass", None)
    status, value = ph1["SpinalCord D0.03cc < 74 Gy minor 76"]
    assert status == "minor" and 74 < value <= 76
    status, value = ph1["PTV_High D95% ≥ 95 %Rx minor 90"]
    assert status == "major" and value == pytest.approx(100 * 54.54 / 70, rel=0.01)
    assert ph1["PTV_High Dmean ≥ 59 Gy"][0] == "pass"
    assert ph2["SpinalCord required"][0] == "missing_roi"
    assert ph2["SpinalCord D0.03cc < 74 Gy minor 76"][0] == "missing_roi"
    assert {p.status for p in PlanQa.objects.filter(project=w.project)} == {"major"}


def test_a_mapping_rule_changes_the_grades_at_once(analysis_world: AnalysisWorld) -> None:
    w = protocol(analysis_world)
    response = w.client("manager").post(
        "/projects/P/analysis/mapping/",
        {"action": "add", "pattern": "Medulla", "standard_name": "SpinalCord"},
    )
    assert response.status_code == 302
    assert results(w, "PH2")["SpinalCord required"][0] == "pass"
    mapping.add_rule(w.project, "=HYPERLINK*", "SpinalCord", actor="test")  # now two ROIs map to the cord
    qa.evaluate_project(w.project)
    assert results(w, "PH2")["SpinalCord required"][0] == "ambiguous_roi"


def test_the_protocol_page_and_csv_show_the_results(analysis_world: AnalysisWorld) -> None:
    w = protocol(analysis_world)
    html = w.client("viewer").get("/projects/P/analysis/protocol/?status=major").content.decode()
    assert "SpinalCord D0.03cc &lt; 74 Gy minor 76" in html and 'class="qa qa-minor"' in html
    assert 'name="constraint"' not in html  # a viewer cannot edit the protocol
    response = w.client("analyst").get("/projects/P/analysis/protocol.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 2 * 5 and {r["subject"] for r in rows} == set(w.subjects.values())
    assert {r["status"] for r in rows if r["item"] == "SpinalCord D0.03cc < 74 Gy minor 76"} == {
        "minor",
        "missing_roi",
    }
    metrics = w.client("analyst").get("/projects/P/analysis/metrics.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(metrics.streaming_content).decode())))
    cord = next(r for r in rows if r["standard_roi"] == "SpinalCord")
    assert cord["qa"] == "SpinalCord D0.03cc < 74 Gy minor 76: minor"


def test_only_managers_edit_the_protocol(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    data = {"action": "add_constraint", "constraint": "Heart Dmean < 26 Gy"}
    assert w.client("analyst").post("/projects/P/analysis/protocol/", data).status_code == 403
    assert w.client("manager").post("/projects/P/analysis/protocol/", data).status_code == 302
    bad = w.client("manager").post(
        "/projects/P/analysis/protocol/",
        {"action": "add_constraint", "constraint": "Heart < 26"},
        follow=True,
    )
    assert "cannot read constraint" in bad.content.decode()
    assert [str(c) for c in w.project.dose_constraints.all()] == ["Heart Dmean < 26 Gy"]


def test_managers_are_told_once_when_a_new_plan_deviates(
    analysis_world: AnalysisWorld, tmp_path: Path
) -> None:
    w = protocol(analysis_world)
    # Grading after a protocol edit tells nobody; a plan that arrives does.
    assert not Notification.objects.exists()
    newcomer = write_phantom_patient(tmp_path / "ph3", "PH3-SECRET")
    import_paths([tmp_path / "ph3"], {"institution": "ODE"})
    run_until_idle(["ingest", "analysis"])
    assign_patient(w.project, Patient.objects.get(patient_id="PH3-SECRET"), actor="test")
    run_until_idle()  # the DVH is calculated, then graded: PTV D95% is a major deviation
    told = Notification.objects.filter(event=qa.EVENT)
    assert {n.user.username for n in told} == {"manager"}  # members/rules holders only
    (note,) = told
    assert "PH3-SECRET" not in note.subject + note.body and "PHANTOM" not in note.body
    subject_id = w.project.subjects.get(patient__patient_id="PH3-SECRET").subject_id
    assert subject_id in note.body and newcomer.plan_uid in note.url
    qa.evaluate_patient(
        Patient.objects.get(patient_id="PH3-SECRET").pk, notify=True
    )  # graded again: no repeat
    assert Notification.objects.filter(event=qa.EVENT).count() == 1

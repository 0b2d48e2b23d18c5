"""CSV downloads and SQL views of a project's analysis: content, chosen columns, subject IDs unless
``identifiers``, no CSV without ``export``, formula cells neutralised, access logged."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection

from rtbank.analysis import mapping, services
from rtbank.analysis.models import DvhMetric, RoiDvh
from rtbank.catalog.models import Patient
from rtbank.projects.models import AccessLog
from tests.analysis.conftest import AnalysisWorld

pytestmark = pytest.mark.django_db(transaction=True)


def mapped(w: AnalysisWorld) -> AnalysisWorld:
    for pattern, standard in (
        ("PTV*70", "PTV_High"),
        ("Spinal Cord", "SpinalCord"),
        ("Medulla", "SpinalCord"),
        ("=HYPERLINK*", "Marker"),
    ):
        mapping.add_rule(w.project, pattern, standard, actor="test")
    return w


def get_csv(w: AnalysisWorld, role: str, url: str) -> tuple[int, list[dict[str, str]], str]:
    response = w.client(role).get(url)
    if response.status_code != 200:
        return response.status_code, [], ""
    text = b"".join(response.streaming_content).decode()
    return 200, list(csv.DictReader(io.StringIO(text))), text


def stored(roi_name: str, patient_id: str, metric: str) -> float:
    return DvhMetric.objects.get(
        roi_dvh__roi_name=roi_name,
        name=metric,
        roi_dvh__plan_dvh__plan__series__study__patient__patient_id=patient_id,
    ).value


def test_the_metrics_csv_has_one_row_per_subject_plan_and_standard_roi(analysis_world: AnalysisWorld) -> None:
    w = mapped(analysis_world)
    status, rows, text = get_csv(w, "analyst", "/projects/P/analysis/metrics.csv?metrics=D95%25,Dmean&rois=")
    assert status == 200
    header = text.splitlines()[0].split(",")
    assert header[0] == "subject" and "patient_id" not in header
    assert header[header.index("covered_volume_cc") + 1 : header.index("dvh_flags")] == ["D95%", "Dmean"]
    keys = sorted((r["subject"], r["standard_roi"]) for r in rows)
    s1, s2 = w.subjects["PH1"], w.subjects["PH2"]
    assert keys == sorted((s, roi) for s in (s1, s2) for roi in ("Marker", "PTV_High", "SpinalCord"))
    cord = next(r for r in rows if r["subject"] == s2 and r["standard_roi"] == "SpinalCord")
    assert cord["roi_name"] == "Medulla" and cord["match"] == "one"
    assert float(cord["D95%"]) == pytest.approx(stored("Medulla", "PH2", "D95%"), abs=1e-5)
    assert float(cord["Dmean"]) == pytest.approx(72.5, rel=0.01)  # the cylinder sits at y = 25 mm
    for patient_id in ("PH1", "PH2"):
        assert patient_id not in text  # subject IDs only, without `identifiers`


def test_cells_that_would_run_as_formulas_are_neutralised(analysis_world: AnalysisWorld) -> None:
    w = mapped(analysis_world)
    _, rows, text = get_csv(w, "analyst", "/projects/P/analysis/metrics.csv")
    marker = next(r for r in rows if r["standard_roi"] == "Marker")
    assert marker["roi_name"] == '\'=HYPERLINK("x")'
    assert "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    _, curve_rows, curve_text = get_csv(w, "analyst", "/projects/P/analysis/curves.csv?rois=Marker")
    assert curve_rows and {r["roi_name"] for r in curve_rows} == {'\'=HYPERLINK("x")'}
    assert ",=" not in curve_text


def test_chosen_metrics_must_be_known_and_offered(analysis_world: AnalysisWorld) -> None:
    w = mapped(analysis_world)
    response = w.client("analyst").get("/projects/P/analysis/metrics.csv?metrics=D95")
    assert response.status_code == 400 and b"D95" in response.content
    response = w.client("analyst").get("/projects/P/analysis/metrics.csv?metrics=V42.5Gy[cc]")
    assert response.status_code == 400 and b"not in this project's metric list" in response.content
    services.set_project_metrics(w.project, ["Dmean", "V42.5Gy[cc]"])
    from rtbank.work.worker import run_until_idle

    run_until_idle()  # the new metric is calculated for the project's plans
    _, rows, _ = get_csv(w, "analyst", "/projects/P/analysis/metrics.csv?metrics=V42.5Gy[cc]")
    ptv = next(r for r in rows if r["standard_roi"] == "PTV_High")
    assert float(ptv["V42.5Gy[cc]"]) == pytest.approx(float(ptv["covered_volume_cc"]), rel=1e-6)  # all of it


def test_the_curves_csv_holds_the_stored_curves(analysis_world: AnalysisWorld) -> None:
    w = mapped(analysis_world)
    _, rows, _ = get_csv(w, "analyst", "/projects/P/analysis/curves.csv?rois=PTV_High")
    ph1 = [r for r in rows if r["subject"] == w.subjects["PH1"]]
    roi = RoiDvh.objects.get(roi_name="PTV 70")
    assert [float(r["volume_cc"]) for r in ph1] == pytest.approx(roi.cumulative_cc())
    assert float(ph1[1]["dose_gy"]) == pytest.approx(roi.dose_step_gy)
    assert float(ph1[0]["volume_pct"]) == pytest.approx(100.0)


def test_identifiers_show_patient_ids_only_to_those_who_hold_them(analysis_world: AnalysisWorld) -> None:
    w = mapped(analysis_world)
    _, rows, _ = get_csv(w, "manager", "/projects/P/analysis/plans.csv")
    assert {r["subject"] for r in rows} == {"PH1", "PH2"} and {r["patient_id"] for r in rows} == {
        "PH1",
        "PH2",
    }
    _, rows, text = get_csv(w, "analyst", "/projects/P/analysis/plans.csv")
    assert {r["subject"] for r in rows} == set(w.subjects.values()) and "PHANTOM^" not in text


def test_no_csv_without_export_and_nothing_for_outsiders(analysis_world: AnalysisWorld) -> None:
    w = mapped(analysis_world)
    for url in ("metrics.csv", "curves.csv", "plans.csv", "protocol.csv"):
        assert w.client("viewer").get(f"/projects/P/analysis/{url}").status_code == 403
        assert w.client("outsider").get(f"/projects/P/analysis/{url}").status_code == 404
        assert w.client("anonymous").get(f"/projects/P/analysis/{url}").status_code == 302
    assert AccessLog.objects.filter(action="csv", outcome="denied", user=w.users["viewer"]).count() == 4
    assert AccessLog.objects.filter(action="csv", outcome="not_found", user=w.users["outsider"]).count() == 4
    assert get_csv(w, "analyst", "/projects/P/analysis/metrics.csv")[0] == 200
    patients = set(Patient.objects.values_list("pk", flat=True))
    logged = AccessLog.objects.filter(
        action="csv", outcome="allowed", user=w.users["analyst"], object_type="patient"
    )
    assert {int(x) for x in logged.values_list("object_id", flat=True)} == patients


def test_the_plans_csv_has_classification_and_delivery(analysis_world: AnalysisWorld) -> None:
    w = mapped(analysis_world)
    _, rows, _ = get_csv(w, "analyst", "/projects/P/analysis/plans.csv")
    by_subject = {r["subject"]: r for r in rows}
    treated, untreated = by_subject[w.subjects["PH1"]], by_subject[w.subjects["PH2"]]
    assert (treated["intent"], treated["technique"], treated["fractions_planned"]) == (
        "curative",
        "3D-CRT",
        "35",
    )
    assert float(treated["prescription_gy"]) == 70.0
    assert treated["treated"] == "yes" and treated["fractions_delivered"] == "4"
    assert (treated["first_treatment"], treated["last_treatment"]) == ("2024-01-08", "2024-01-15")
    assert float(treated["planned_mu"]) == 250.0 * 35 and float(treated["delivered_mu"]) == 1000.0
    assert treated["interruptions"] == "1" and treated["missed_weekdays"] == "2"  # Thursday and Friday
    assert untreated["treated"] == "no" and untreated["fractions_delivered"] == "0"
    assert treated["complete"] == "yes"
    assert untreated["complete"] == "no" and "planning_images_incomplete" in untreated["completeness_flags"]


def test_the_sql_views_give_the_same_tables(analysis_world: AnalysisWorld) -> None:
    w = mapped(analysis_world)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT subject_id, standard_name, roi_name, value FROM rtbank_dvh_metrics "
            "WHERE project = %s AND metric = %s ORDER BY subject_id, standard_name",
            ["P", "Dmean"],
        )
        metrics = cursor.fetchall()
        cursor.execute(
            "SELECT point, dose_gy, volume_cc, volume_pct FROM rtbank_dvh_curves "
            "WHERE project = %s AND subject_id = %s AND standard_name = %s ORDER BY point",
            ["P", w.subjects["PH1"], "PTV_High"],
        )
        points = cursor.fetchall()
        cursor.execute(
            "SELECT subject_id, treated, fractions_delivered, interruptions FROM rtbank_project_plans "
            "WHERE project = %s ORDER BY subject_id",
            ["P"],
        )
        plans = cursor.fetchall()
        cursor.execute(
            "SELECT roi_name, status, standard_name FROM rtbank_roi_mapping WHERE project = %s "
            "ORDER BY roi_name",
            ["P"],
        )
        verdicts = cursor.fetchall()
    s1, s2 = w.subjects["PH1"], w.subjects["PH2"]
    assert [(s, std, name) for s, std, name, _ in metrics] == [
        (s1, "Marker", '=HYPERLINK("x")'),
        (s1, "PTV_High", "PTV 70"),
        (s1, "SpinalCord", "Spinal Cord"),
        (s2, "Marker", '=HYPERLINK("x")'),
        (s2, "PTV_High", "PTV70"),
        (s2, "SpinalCord", "Medulla"),
    ]
    assert metrics[1][3] == pytest.approx(stored("PTV 70", "PH1", "Dmean"))
    roi = RoiDvh.objects.get(roi_name="PTV 70")
    assert [p[0] for p in points] == list(range(roi.curve_points))
    assert [p[2] for p in points] == pytest.approx(roi.cumulative_cc())
    assert points[3][1] == pytest.approx(3 * roi.dose_step_gy) and points[0][3] == pytest.approx(100.0)
    assert [(s, bool(t), f, i) for s, t, f, i in plans] == [(s1, True, 4, 1), (s2, False, 0, 0)]
    assert ("Medulla", "matched", "SpinalCord") in verdicts

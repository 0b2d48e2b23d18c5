"""The analysis pages and the panels on the project, subject and plan pages: progress, completeness with
filters, delivery, the DVH plot's data, and the metric list."""

from __future__ import annotations

import json
import re

import pytest

from rtbank.analysis import mapping
from rtbank.analysis.models import PlanSummary, ProjectAnalysis, SeriesCompleteness
from rtbank.catalog.models import Instance
from tests.analysis.conftest import AnalysisWorld

pytestmark = pytest.mark.django_db(transaction=True)


def plan_uid(patient_id: str) -> str:
    return Instance.objects.get(kind="plan", series__study__patient__patient_id=patient_id).sop_instance_uid


def test_the_overview_shows_progress_completeness_and_downloads_by_permission(
    analysis_world: AnalysisWorld,
) -> None:
    w = analysis_world
    html = w.client("analyst").get("/projects/P/analysis/").content.decode()
    progress = re.search(r'id="dvh-progress">(.*?)</section>', html, re.S).group(1)
    assert re.search(r'<div class="kpi">2 / 2</div>', progress)
    assert re.search(r'<div class="kpi">1</div> plan\(s\) incomplete, 1 complete', html)
    assert 'id="metrics-csv-form"' in html and 'id="metrics-form"' not in html  # export, but not rules
    viewer = w.client("viewer").get("/projects/P/analysis/").content.decode()
    assert 'id="metrics-csv-form"' not in viewer
    assert w.client("outsider").get("/projects/P/analysis/").status_code == 404


def test_completeness_is_shown_and_filterable(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    client = w.client("viewer")
    html = client.get("/projects/P/analysis/completeness/?status=incomplete").content.decode()
    table = re.search(r'id="plan-completeness">(.*?)</table>', html, re.S).group(1)
    assert w.subjects["PH2"] in table and w.subjects["PH1"] not in table
    assert "planning_images_incomplete" in table and "referenced_images_missing" in table
    series = re.search(r'id="series-completeness">(.*?)</table>', html, re.S).group(1)
    assert "gap" in series and "≈ 1 slice(s) missing" in series
    complete = client.get("/projects/P/analysis/completeness/?status=complete").content.decode()
    assert w.subjects["PH1"] in re.search(r'id="plan-completeness">(.*?)</table>', complete, re.S).group(1)
    by_flag = client.get("/projects/P/analysis/completeness/?flag=referenced_images_missing").content.decode()
    assert w.subjects["PH1"] not in re.search(r'id="plan-completeness">(.*?)</table>', by_flag, re.S).group(1)
    gap = SeriesCompleteness.objects.get(flags__isnull=False, complete=False)
    assert gap.gaps == [
        {
            "after": gap.gaps[0]["after"],
            "before": gap.gaps[0]["before"],
            "from_mm": -10.5,
            "to_mm": -4.5,
            "missing": 1,
        }
    ]


def test_the_project_and_subject_pages_carry_the_analysis_panels(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    client = w.client("viewer")
    project = client.get("/projects/P/").content.decode()
    panel = re.search(r'id="analysis-panel">(.*?)</section>', project, re.S).group(1)
    assert "2 of 2 plans calculated" in panel and "1 plan(s) incomplete" in panel
    subject = client.get(f"/projects/P/subjects/{w.subjects['PH1']}/").content.decode()
    panel = re.search(r'id="analysis-subject-panel">(.*?)</section>', subject, re.S).group(1)
    assert "4 of 35 fractions, 2024-01-08 – 2024-01-15, 1 interruption(s)" in panel
    assert panel.count('class="ok">complete') == 2  # the plan and the CT


def test_the_plan_page_plots_the_dvh_with_standard_names(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    mapping.add_rule(w.project, "PTV*", "PTV_High", actor="test")
    html = w.client("viewer").get(f"/projects/P/plans/{plan_uid('PH1')}/").content.decode()
    data = json.loads(
        re.search(r'<script id="dvh-data" type="application/json">(.*?)</script>', html, re.S).group(1)
    )
    by_name = {roi["name"]: roi for roi in data["rois"]}
    assert set(by_name) == {"PTV 70", "Spinal Cord", '=HYPERLINK("x")'}
    assert by_name["PTV 70"]["standard"] == "PTV_High" and by_name["Spinal Cord"]["standard"] == ""
    curve = by_name["PTV 70"]["volume_pct"]
    assert curve[0] == 100.0 and curve[-1] < 1 and all(a >= b for a, b in zip(curve, curve[1:], strict=False))
    assert "vendor/chartjs-4.6.1/chart.umd.min.js" in html and "analysis/dvh.js" in html
    assert "<script>" not in html.split('id="analysis-plan-panel"')[1]  # no inline code (CSP)
    table = re.search(r'id="dvh-metrics">(.*?)</table>', html, re.S).group(1)
    assert "=HYPERLINK(&quot;x&quot;)" in table and '=HYPERLINK("x")' not in table
    status = re.search(r'id="analysis-plan-status">(.*?)</section>', html, re.S).group(1)
    assert "treated: 4 of 35 fractions" in status and "1000.0 of 8750.0 MU" in status


def test_a_plan_without_dvh_says_why(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    plan = Instance.objects.get(kind="plan", series__study__patient__patient_id="PH2")
    plan.dvh.delete()
    html = w.client("viewer").get(f"/projects/P/plans/{plan.sop_instance_uid}/").content.decode()
    assert "The DVH is being calculated." in html or "has not arrived" in html


def test_the_plans_page_lists_classification_and_delivery(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    html = w.client("viewer").get("/projects/P/analysis/plans/?treated=yes").content.decode()
    table = re.search(r'id="plan-delivery">(.*?)</table>', html, re.S).group(1)
    assert w.subjects["PH1"] in table and w.subjects["PH2"] not in table
    assert "2024-01-08" in table and "3D-CRT" in table
    assert PlanSummary.objects.get(treated=True).interruptions == 1


def test_managers_change_the_metric_list(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    assert w.client("analyst").post("/projects/P/analysis/", {"metrics": "D95%"}).status_code == 403
    response = w.client("manager").post("/projects/P/analysis/", {"metrics": "d 95 %, V20Gy[%], D0.03cc"})
    assert response.status_code == 302
    assert ProjectAnalysis.objects.get(project=w.project).metrics == ["D95%", "V20Gy[%]", "D0.03cc"]
    bad = w.client("manager").post("/projects/P/analysis/", {"metrics": "D95"}, follow=True).content.decode()
    assert "D95" in bad and ProjectAnalysis.objects.get(project=w.project).metrics[0] == "D95%"

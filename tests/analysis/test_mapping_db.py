"""ROI name mapping in a project: rules applied at once to stored data, the overview matrix (none / one /
several), unmatched names and conflicts, CSV import and export, TG-263 suggestions, who may change rules."""

from __future__ import annotations

import re

import pytest

from rtbank.analysis import mapping
from rtbank.analysis.models import RoiMappingRule, RoiNameMapping, Tg263Name
from rtbank.analysis.services import import_tg263
from rtbank.institutions.models import Institution
from rtbank.projects.models import AccessLog
from tests.analysis.conftest import AnalysisWorld

pytestmark = pytest.mark.django_db(transaction=True)
HOSTILE = '=HYPERLINK("x")'


def cells(html: str) -> dict[tuple[str, str], int]:
    """(row subject, standard name) -> number of matching ROIs, read from the matrix page."""
    out = {}
    for subject, body in re.findall(r"<tr><td>(P-\d+)</td>(.*?)</tr>", html, re.S):
        for standard, count in re.findall(r'data-standard="([^"]+)" data-count="(\d+)"', body):
            out[(subject, standard)] = int(count)
    return out


def rule(w: AnalysisWorld, pattern: str, standard: str, institution: str | None = None) -> None:
    inst = Institution.objects.get(code=institution) if institution else None
    mapping.add_rule(w.project, pattern, standard, institution=inst, actor="test")


def test_the_matrix_shows_none_one_and_several_matches(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    rule(w, "PTV*70", "PTV_High")
    rule(w, "spinal cord", "SpinalCord")
    rule(w, "Medulla", "SpinalCord")
    rule(w, "PTV 70", "Target")  # exact: wins over PTV*70 for PH1's "PTV 70" …
    rule(w, "=HYPERLINK*", "Target")  # … and PH1 (and PH2) have this one too: PH1 has two ROIs for "Target"
    html = w.client("viewer").get("/projects/P/analysis/matrix/").content.decode()
    got = cells(html)
    ph1, ph2 = w.subjects["PH1"], w.subjects["PH2"]
    assert got[(ph1, "SpinalCord")] == 1 and got[(ph2, "SpinalCord")] == 1  # "Spinal Cord" and "Medulla"
    assert got[(ph1, "PTV_High")] == 0 and got[(ph2, "PTV_High")] == 1  # PH1's PTV is "Target" now
    assert got[(ph1, "Target")] == 2 and got[(ph2, "Target")] == 1
    assert 'class="cell several"' in html and 'class="cell none"' in html
    assert "PH1" not in html  # the viewer sees subject IDs only
    unmatched = re.search(r'<table class="data" id="unmatched">(.*?)</table>', html, re.S).group(1)
    assert "Every contoured ROI name is mapped" in unmatched


def test_a_new_rule_applies_at_once_to_stored_data_and_originals_stay(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    client, viewer = w.client("manager"), w.client("viewer")
    html = client.get("/projects/P/analysis/matrix/").content.decode()
    unmatched = re.search(r'<table class="data" id="unmatched">(.*?)</table>', html, re.S).group(1)
    assert "Medulla" in unmatched and "Spinal Cord" in unmatched
    assert "?pattern=Medulla" in unmatched  # a manager gets a prefilled "add a rule" link
    response = client.post(
        "/projects/P/analysis/mapping/",
        {"action": "add", "pattern": "medulla*", "standard_name": "SpinalCord", "institution": ""},
    )
    assert response.status_code == 302
    html = viewer.get("/projects/P/analysis/matrix/").content.decode()
    unmatched = re.search(r'<table class="data" id="unmatched">(.*?)</table>', html, re.S).group(1)
    assert "?pattern=" not in html  # no rule links for a viewer
    assert "Medulla" not in unmatched and "Spinal Cord" in unmatched
    assert cells(html)[(w.subjects["PH2"], "SpinalCord")] == 1
    assert RoiNameMapping.objects.get(project=w.project, roi_name="Medulla").standard_name == "SpinalCord"
    # The DICOM and the catalog keep the original name.
    from rtbank.catalog.models import Roi

    assert Roi.objects.filter(name="Medulla").exists() and not Roi.objects.filter(name="SpinalCord").exists()


def test_ties_are_shown_as_conflicts_and_map_nothing(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    rule(w, "PTV?70", "PTV_A")
    rule(w, "PTV*70", "PTV_B")  # PTV?70 and PTV*70: one wildcard each, 5 literal characters
    html = w.client("viewer").get("/projects/P/analysis/matrix/").content.decode()
    conflicts = re.search(r'<table class="data" id="conflicts">(.*?)</table>', html, re.S).group(1)
    assert "PTV 70" in conflicts and "PTV_A, PTV_B" in conflicts
    assert cells(html)[(w.subjects["PH1"], "PTV_A")] == 0 and cells(html)[(w.subjects["PH1"], "PTV_B")] == 0
    assert cells(html)[(w.subjects["PH2"], "PTV_B")] == 1  # "PTV70" only matches PTV*70
    verdict = RoiNameMapping.objects.get(project=w.project, roi_name="PTV 70")
    assert (
        verdict.status == "conflict"
        and verdict.standard_name == ""
        and verdict.candidates == ["PTV_A", "PTV_B"]
    )


def test_an_institution_rule_overrides_a_global_one_for_its_institution_only(
    analysis_world: AnalysisWorld,
) -> None:
    w = analysis_world
    Institution.objects.create(code="AAR", name="Aarhus")
    rule(w, "Spinal Cord", "SpinalCord")
    rule(w, "*cord*", "Cord_ODE", institution="ODE")
    rule(w, "*cord*", "Cord_AAR", institution="AAR")
    ode = Institution.objects.get(code="ODE").pk
    assert (
        RoiNameMapping.objects.get(
            project=w.project, roi_name="Spinal Cord", institution_key=ode
        ).standard_name
        == "Cord_ODE"
    )
    assert (
        mapping.explain(w.project, "Spinal Cord", 0).standard_name == "SpinalCord"
    )  # no institution: global


def test_rules_csv_export_and_import_round_trip(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    rule(w, "=HYPERLINK*", "Marker")
    rule(w, "Medulla", "SpinalCord", institution="ODE")
    response = w.client("viewer").get("/projects/P/analysis/mapping.csv")
    text = b"".join(response.streaming_content).decode()
    assert text.splitlines() == [
        "pattern,standard_name,institution",
        "'=HYPERLINK*,Marker,",
        "Medulla,SpinalCord,ODE",
    ]
    RoiMappingRule.objects.all().delete()
    upload = (
        "pattern,standard_name,institution\n=HYPERLINK*,Marker,\nMedulla,SpinalCord,ODE\nPTV*,PTV_High,\n"
    )
    response = w.client("manager").post("/projects/P/analysis/mapping/", {"action": "import", "text": upload})
    assert response.status_code == 302
    assert set(RoiMappingRule.objects.values_list("pattern", "standard_name")) == {
        ("=HYPERLINK*", "Marker"),
        ("Medulla", "SpinalCord"),
        ("PTV*", "PTV_High"),
    }
    assert RoiNameMapping.objects.filter(project=w.project, standard_name="PTV_High").count() == 2  # applied


def test_an_import_with_an_error_changes_nothing(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    report = mapping.import_rules_csv(
        w.project, "PTV*,PTV_High\nCord,SpinalCord,NOWHERE\n,Empty\n", actor="t"
    )
    assert len(report.errors) == 2 and "NOWHERE" in report.errors[0]
    assert not RoiMappingRule.objects.exists() and not RoiNameMapping.objects.exists()


def test_only_managers_change_rules(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    data = {"action": "add", "pattern": "PTV*", "standard_name": "PTV_High"}
    assert w.client("analyst").post("/projects/P/analysis/mapping/", data).status_code == 403
    assert w.client("outsider").post("/projects/P/analysis/mapping/", data).status_code == 404
    assert w.client("anonymous").post("/projects/P/analysis/mapping/", data).status_code == 302
    assert not RoiMappingRule.objects.exists()
    assert AccessLog.objects.filter(action="analysis_mapping_edit", outcome="denied").count() == 1
    assert w.client("manager").post("/projects/P/analysis/mapping/", data).status_code == 302
    assert RoiMappingRule.objects.count() == 1


def test_a_duplicate_pattern_is_refused_with_a_reason(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    rule(w, "PTV*", "PTV_High")
    with pytest.raises(mapping.RuleError, match="exists already"):
        rule(w, "ptv *".replace(" ", ""), "Other")
    with pytest.raises(mapping.RuleError, match="empty"):
        rule(w, "  ", "Other")


def test_tg263_names_are_suggested_for_unmatched_names(analysis_world: AnalysisWorld) -> None:
    w = analysis_world
    spreadsheet = (
        "Target Type,Major Category,Minor Category,Anatomic Group,Description,TG263-Primary Name,"
        "TG-263-Reverse Order Name,FMAID\n"
        "Anatomic,Spinal Cord,,,Spinal cord,SpinalCord,Cord_Spinal,7647\n"
        "Target,,,,Planning target volume,PTV,PTV,\n"
        "Anatomic,Parotid,,,Left parotid,Parotid_L,L_Parotid,59797\n"
    )
    assert import_tg263(spreadsheet.encode(), "TG263.csv") == 3
    assert Tg263Name.objects.get(name="Parotid_L").reverse_name == "L_Parotid"
    assert "sha256:" in Tg263Name.objects.first().source
    html = w.client("manager").get("/projects/P/analysis/matrix/").content.decode()
    unmatched = re.search(r'<table class="data" id="unmatched">(.*?)</table>', html, re.S).group(1)
    assert re.search(r"Spinal Cord</td><td>1</td><td>SpinalCord</td>", unmatched)
    assert not RoiMappingRule.objects.exists()  # suggestions only


def test_the_tg263_page_is_for_site_admins(analysis_world: AnalysisWorld) -> None:
    from django.contrib.auth.models import User
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.web.clients import client_for

    w = analysis_world
    assert w.client("manager").get("/analysis/tg263/").status_code == 403
    client = client_for(User.objects.create_superuser("admin", "", "a-long-password-1"))
    data = SimpleUploadedFile("tg263.csv", b"TG263-Primary Name;Description\nHeart;Heart\nLungs;Both lungs\n")
    assert client.post("/analysis/tg263/", {"file": data}).status_code == 302
    assert set(Tg263Name.objects.values_list("name", flat=True)) == {"Heart", "Lungs"}

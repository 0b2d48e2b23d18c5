"""A synthetic three-centre archive through the real pipeline: the overview matrix maps each centre's ROI
name variants to the standard names the manifest states, with rules a manager would write (wildcards,
one institution's own rule); targets stay listed as unmatched; completeness finds the archive's anomalies."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rtbank.analysis import mapping
from rtbank.analysis.models import PatientCompleteness, PlanSummary, SeriesCompleteness
from rtbank.catalog.models import Instance, Patient
from rtbank.dicom.synth import generate_archive
from rtbank.ingest.importer import import_paths
from rtbank.institutions.models import Institution
from rtbank.projects.services import add_project, assign_patient
from rtbank.work.worker import run_until_idle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
SEED = 1  # its Odense patient has "Bulbus_sin" (eye): the institution rules are exercised

# (pattern, standard name, institution code or None) — written from the centres' habits, not the manifest.
RULES: list[tuple[str, str, str | None]] = [
    ("BODY", "External", None),
    ("External", "External", None),
    ("Skin", "External", None),
    ("Spinal*Cord", "SpinalCord", None),
    ("Cord", "SpinalCord", None),
    ("Medulla*", "SpinalCord", None),
    ("Brain*Stem", "Brainstem", None),
    ("Truncus", "Brainstem", None),
    ("Hjernestamme", "Brainstem", None),
    ("Brain", "Brain", None),
    ("Cerebrum", "Brain", None),
    ("Hjerne", "Brain", None),
    ("Parotid?L", "Parotid_L", None),
    ("Parotis*sin", "Parotid_L", None),
    ("L* Parotid", "Parotid_L", None),
    ("Parotid?R", "Parotid_R", None),
    ("Parotis*dx", "Parotid_R", None),
    ("R* Parotid", "Parotid_R", None),
    ("*Oral*Cavity*", "OralCavity", None),
    ("Cavity_Oral", "OralCavity", None),
    ("Cavum oris", "OralCavity", None),
    ("*Larynx", "Larynx", None),
    ("Eye?L", "Eye_L", None),
    ("L Eye", "Eye_L", None),
    ("Globe L", "Eye_L", None),
    ("Oculus sin", "Eye_L", None),
    ("Eye?R", "Eye_R", None),
    ("R Eye", "Eye_R", None),
    ("Globe R", "Eye_R", None),
    ("Oculus dx", "Eye_R", None),
    # Odense writes "Bulbus" for the eye and for the penile bulb: its own rules decide before the global one.
    ("Bulbus*", "PenileBulb", None),
    ("Bulbus*sin", "Eye_L", "ODE"),
    ("Bulbus*dx", "Eye_R", "ODE"),
    ("Penile*Bulb", "PenileBulb", None),
    ("Lens?L", "Lens_L", None),
    ("Lens?sin", "Lens_L", None),
    ("L Lens", "Lens_L", None),
    ("Lens?R", "Lens_R", None),
    ("Lens?dx", "Lens_R", None),
    ("R Lens", "Lens_R", None),
    ("*Chiasm*", "OpticChiasm", None),
    ("Lung?L", "Lung_L", None),
    ("Pulmo?sin", "Lung_L", None),
    ("Lunge?sin", "Lung_L", None),
    ("L* Lung", "Lung_L", None),
    ("Lung?R", "Lung_R", None),
    ("Pulmo?dx", "Lung_R", None),
    ("Lunge?dx", "Lung_R", None),
    ("R* Lung", "Lung_R", None),
    ("Heart", "Heart", None),
    ("Cor", "Heart", None),
    ("Hjerte", "Heart", None),
    ("*sophagus", "Esophagus", None),
    ("Spiseroer", "Esophagus", None),
    ("Bladder", "Bladder", None),
    ("Vesica", "Bladder", None),
    ("Blaere", "Bladder", None),
    ("*Rectum", "Rectum", None),
    ("Endetarm", "Rectum", None),
    ("Femur?Head?L", "Femur_Head_L", None),
    ("Caput femoris sin", "Femur_Head_L", None),
    ("Femur?sin", "Femur_Head_L", None),
    ("L Femoral Head", "Femur_Head_L", None),
    ("Fem Head L", "Femur_Head_L", None),
    ("Femur?Head?R", "Femur_Head_R", None),
    ("Caput femoris dx", "Femur_Head_R", None),
    ("Femur?dx", "Femur_Head_R", None),
    ("R Femoral Head", "Femur_Head_R", None),
    ("Fem Head R", "Femur_Head_R", None),
    ("Seminal*Ves*", "SeminalVesicles", None),
    ("Vesiculae", "SeminalVesicles", None),
    ("Sædblærer", "SeminalVesicles", None),
    ("SV", "SeminalVesicles", None),
    ("*Bowel*", "Bowel", None),
    ("Tarm", "Bowel", None),
    ("Intestinum", "Bowel", None),
    ("Cochlea?L", "Cochlea_L", None),
    ("Cochlea sin", "Cochlea_L", None),
    ("L Cochlea", "Cochlea_L", None),
    ("BrachialPlex?L", "BrachialPlex_L", None),
    ("Plexus brach sin", "BrachialPlex_L", None),
    ("L Brachial Plexus", "BrachialPlex_L", None),
    ("Couch*", "Couch", None),
    ("Bord", "Couch", None),
    ("*Insert", "Insert", None),
    ("Detektor", "Insert", None),
    ("Chamber", "Chamber", None),
    ("Marker_Ant", "Marker_Ant", None),
    ("Marker_Lt", "Marker_Lt", None),
]
TARGET = re.compile(r"^(GTV|CTV_\d+|PTV_\d+)$")


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("analysis-synth") / "archive"
    return out, generate_archive(out, patients=3, seed=SEED)


def test_the_matrix_maps_each_centres_variants_to_the_manifest_standard(archive: tuple[Path, dict]) -> None:
    out, manifest = archive
    for inst in manifest["institutions"]:
        Institution.objects.create(code=inst["code"], name=inst["name"])
        import_paths([out / inst["code"]], {"institution": inst["code"]})
    run_until_idle(["ingest", "analysis"])  # filing, bundles and the analysis stage; DVHs are not needed here
    project = add_project(
        "SYN", name="Synthetic", renew_by=__import__("datetime").date(2099, 1, 1), actor="test"
    )
    for patient in Patient.objects.all():
        assign_patient(project, patient, actor="test")
    for pattern, standard, code in RULES:
        inst = Institution.objects.get(code=code) if code else None
        mapping.add_rule(project, pattern, standard, institution=inst, actor="test", refresh=False)
    mapping.refresh_project(project)

    from rtbank.analysis.overview import overview_matrix, project_plans

    plans = list(project_plans(project))
    matrix = overview_matrix(project, plans, lambda patient: patient.patient_id)
    rois_by_ss: dict[str, list[dict]] = {}
    for p in manifest["patients"]:
        for roi in p["rois"]:
            if not roi["empty"]:
                rois_by_ss.setdefault(roi["structure_set"], []).append(roi)
    plan_ss = {pl["sop_instance_uid"]: pl["structure_set"] for p in manifest["patients"] for pl in p["plans"]}
    checked = 0
    for row in matrix.rows:
        expected = Counter(r["standard"] for r in rois_by_ss.get(plan_ss[row.plan.sop_instance_uid], []))
        got = {name: count for name, count, _ in row.cells}
        for standard in {s for _, s, _ in RULES}:
            assert got.get(standard, 0) == expected.get(standard, 0), (row.label, standard, row.cells)
            checked += expected.get(standard, 0)
    assert checked > 40 and len(matrix.rows) == len(plans) >= 8
    # What no rule covers is listed for the manager: exactly the targets (their names carry trial doses).
    unmatched = {name for name, _, _ in matrix.unmatched}
    targets = {r["name"] for rois in rois_by_ss.values() for r in rois if TARGET.match(r["standard"])}
    assert unmatched == targets and not matrix.conflicts
    # The variants really differ between the centres: one standard name, several spellings.
    spellings = {
        r["name"].casefold() for rois in rois_by_ss.values() for r in rois if r["standard"] == "SpinalCord"
    }
    assert len(spellings) >= 2
    # Odense's "Bulbus_sin" is an eye by Odense's own rule, not the penile bulb of the global "Bulbus*".
    assert any(
        name == "Bulbus_sin"
        for row in matrix.rows
        for std, _, names in row.cells
        if std == "Eye_L"
        for name in names
    )
    _completeness_finds_the_anomalies(manifest)


def _completeness_finds_the_anomalies(manifest: dict) -> None:
    anomalies = [a for p in manifest["patients"] for a in p["anomalies"]]
    kinds = {a["kind"] for a in anomalies}
    assert {"missing_slice", "dangling_record", "plan_without_dose"} <= kinds, kinds
    for a in anomalies:
        if a["kind"] == "missing_slice":
            series_uid = re.search(r"CT series (\S+)", a["detail"]).group(1)
            check = SeriesCompleteness.objects.get(series__uid=series_uid)
            assert check.flags == ["gap"] and check.missing_slices == 1
        elif a["kind"] == "dangling_record":
            record = Instance.objects.get(sop_instance_uid=a["uids"][0])
            patient = PatientCompleteness.objects.get(patient_id=record.series.study.patient_id)
            assert "record_without_plan" in patient.flags and record.pk in patient.records_without_plan
        elif a["kind"] == "plan_without_dose":
            assert "no_dose" in PlanSummary.objects.get(plan__sop_instance_uid=a["uids"][0]).flags
    qa_plans = [pl for p in manifest["patients"] for pl in p["plans"] if pl["intent"] == "machine_qa"]
    for pl in qa_plans:  # machine QA has no patient data to expect
        assert PlanSummary.objects.get(plan__sop_instance_uid=pl["sop_instance_uid"]).complete
    treated = {
        pl["sop_instance_uid"]: len(pl["record_dates"]) for p in manifest["patients"] for pl in p["plans"]
    }
    for summary in PlanSummary.objects.select_related("plan"):
        uid = summary.plan.sop_instance_uid
        if uid in treated:
            assert summary.treated == (treated[uid] > 0)
            assert summary.fractions_delivered == treated[uid], uid

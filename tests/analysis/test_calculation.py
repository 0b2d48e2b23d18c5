"""The DVH calculation service: stored curves and metrics, progress, recalculation when inputs or the engine
change, input problems stored for people (not retried)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pydicom
import pytest

import rtbank.dicom.dvh as engine
from rtbank.analysis import calculation
from rtbank.analysis.models import DvhMetric, DvhState, PatientCompleteness, PlanDvh, PlanSummary, RoiDvh
from rtbank.catalog.models import Instance
from rtbank.dicom.contours import StructureSet
from rtbank.dicom.dosegrid import DoseGrid
from rtbank.ingest.importer import import_paths
from rtbank.work import services as work
from rtbank.work.models import WorkItem
from rtbank.work.worker import run_until_idle
from tests.analysis.support import DOSE, SOLIDS, write_phantom_patient

pytestmark = pytest.mark.django_db(transaction=True)


def load(folder: Path, **kwargs) -> object:
    patient = write_phantom_patient(folder, **kwargs)
    import_paths([folder], {})
    run_until_idle()
    return patient


def plan_dvh(patient) -> PlanDvh:
    return PlanDvh.objects.get(plan__sop_instance_uid=patient.plan_uid)


def metric(dvh: PlanDvh, roi: str, name: str) -> float:
    return DvhMetric.objects.get(roi_dvh__plan_dvh=dvh, roi_dvh__roi_name=roi, name=name).value


def test_it_stores_curves_and_metrics_that_match_the_analytic_values(tmp_path: Path) -> None:
    patient = write_phantom_patient(tmp_path / "p")
    import_paths([tmp_path / "p"], {})
    run_until_idle(["ingest", "analysis"])
    # progress is visible: the DVH waits as a work row, counted per kind (rtbank stats)
    assert work.counts()["by_kind"]["dvh"]["pending"] == 1
    run_until_idle()
    assert work.counts()["by_kind"].get("dvh") is None
    dvh = plan_dvh(patient)
    assert dvh.state == DvhState.OK and dvh.engine_version == engine.ENGINE_VERSION
    assert dvh.fractions == 35 and dvh.dose_summation == "PLAN"
    assert sorted(dvh.rois.values_list("roi_name", flat=True)) == sorted(SOLIDS)
    # the stored values are the engine's on the same files …
    structure_set = StructureSet.from_dataset(pydicom.dcmread(patient.files["structure_set"]))
    grid = DoseGrid.from_dataset(pydicom.dcmread(patient.files["dose"]))
    for result in engine.dvhs_for_structure_set(structure_set, grid):
        name = result.roi.name
        values, _ = result.metrics(engine.parse_metrics(dvh.metric_names))
        for m, value in values.items():
            assert metric(dvh, name, m) == pytest.approx(value, rel=1e-9), (name, m)
        roi = RoiDvh.objects.get(plan_dvh=dvh, roi_name=name)
        assert roi.volume_cc == pytest.approx(result.volume_cc, rel=1e-9)
        expected = result.histogram.curve()
        assert roi.dose_step_gy == expected.dose_step_gy and roi.curve_points == len(expected.cumulative_cc)
        assert roi.cumulative_cc() == pytest.approx(list(expected.cumulative_cc), rel=1e-5, abs=1e-9)
        curve = roi.cumulative_cc()
        assert 2 <= roi.curve_points <= 400
        assert curve[0] == pytest.approx(roi.covered_volume_cc, rel=1e-5)
        assert all(a >= b for a, b in zip(curve, curve[1:], strict=False))  # cumulative: never increasing
    # … and those agree with the closed-form values of the solids
    ref = SOLIDS["PTV 70"].reference(DOSE)
    for m in ("Dmean", "D95%", "D5%", "Dmax", "D0.03cc", "V60Gy[%]"):
        assert metric(dvh, "PTV 70", m) == pytest.approx(ref.metric(m), rel=0.03), m


def test_unchanged_inputs_are_not_calculated_again(tmp_path: Path) -> None:
    patient = load(tmp_path / "p")
    first = plan_dvh(patient).computed_at
    import_paths([tmp_path / "p"], {})  # the same files again: duplicates, nothing new
    run_until_idle()
    assert plan_dvh(patient).computed_at == first


def test_a_corrected_dose_replaces_the_stored_dvh(tmp_path: Path) -> None:
    patient = load(tmp_path / "p")
    before = plan_dvh(patient)
    assert metric(before, "PTV 70", "Dmean") == pytest.approx(60.0, rel=0.01)
    ds = pydicom.dcmread(patient.files["dose"])
    ds.DoseGridScaling = float(ds.DoseGridScaling) / 2  # a corrected export: half the dose, same UID
    ds.save_as(tmp_path / "RD_corrected.dcm", enforce_file_format=True)
    import_paths([tmp_path / "RD_corrected.dcm"], {})
    run_until_idle()
    after = plan_dvh(patient)
    assert after.inputs != before.inputs
    assert Instance.objects.get(sop_instance_uid=patient.dose_uid, state="current").version == 2
    assert metric(after, "PTV 70", "Dmean") == pytest.approx(30.0, rel=0.01)
    assert DvhMetric.objects.filter(roi_dvh__plan_dvh=after, name="Dmean").count() == len(SOLIDS)  # replaced


def test_a_corrected_structure_set_replaces_the_stored_rois(tmp_path: Path) -> None:
    patient = load(tmp_path / "p")
    ds = pydicom.dcmread(patient.files["structure_set"])
    ds.StructureSetROISequence[0].ROIName = "PTV_7000"
    ds.save_as(tmp_path / "RS_corrected.dcm", enforce_file_format=True)
    import_paths([tmp_path / "RS_corrected.dcm"], {})
    run_until_idle()
    names = set(plan_dvh(patient).rois.values_list("roi_name", flat=True))
    assert "PTV_7000" in names and "PTV 70" not in names


def test_a_new_engine_version_recalculates_stored_results(tmp_path: Path, monkeypatch) -> None:
    patient = load(tmp_path / "p")
    assert calculation.enqueue_outdated_engine() == 0
    monkeypatch.setattr(engine, "ENGINE_VERSION", "rtbank-dvh 99.0-test")
    assert calculation.enqueue_outdated_engine() == 1
    run_until_idle()
    dvh = plan_dvh(patient)
    assert dvh.engine_version == "rtbank-dvh 99.0-test"
    assert dvh.inputs_detail["engine"] == "rtbank-dvh 99.0-test"
    assert calculation.enqueue_outdated_engine() == 0


def test_a_dose_in_another_frame_of_reference_is_stored_as_an_error_not_retried(tmp_path: Path) -> None:
    patient = write_phantom_patient(tmp_path / "p")
    ds = pydicom.dcmread(patient.files["dose"])
    ds.FrameOfReferenceUID = pydicom.uid.generate_uid()
    ds.save_as(patient.files["dose"], enforce_file_format=True)
    import_paths([tmp_path / "p"], {})
    run_until_idle()
    dvh = plan_dvh(patient)
    assert dvh.state == DvhState.ERROR and "frame of reference" in dvh.error
    assert not dvh.rois.exists()
    row = WorkItem.objects.get(kind="dvh")
    assert row.state == "done" and row.attempts == 1


def test_a_plan_without_dose_waits_without_a_work_row(tmp_path: Path) -> None:
    patient = write_phantom_patient(tmp_path / "p")
    patient.files["dose"].unlink()
    import_paths([tmp_path / "p"], {})
    run_until_idle()
    assert not PlanDvh.objects.exists() and not WorkItem.objects.filter(kind="dvh").exists()


def test_records_do_not_trigger_a_recalculation(tmp_path: Path) -> None:
    patient = load(tmp_path / "p")
    first = plan_dvh(patient).computed_at
    later = write_phantom_patient(tmp_path / "q", treatment_dates=(dt.date(2024, 1, 8),))
    del later  # a different patient; the first one's plan must stay as it is
    import_paths([tmp_path / "q"], {})
    run_until_idle()
    assert plan_dvh(patient).computed_at == first


def test_a_target_outside_the_dose_grid_flags_the_plan_once_its_dvh_is_known(tmp_path: Path) -> None:
    patient = write_phantom_patient(
        tmp_path / "p", dose_lower_mm=(-45.0, -45.0, 0.0)
    )  # no dose below z = -1.25
    import_paths([tmp_path / "p"], {})
    run_until_idle()
    ptv = RoiDvh.objects.get(plan_dvh__plan__sop_instance_uid=patient.plan_uid, roi_name="PTV 70")
    assert "partially_in_dose_grid" in ptv.flags and ptv.covered_volume_cc < 0.6 * ptv.volume_cc
    summary = PlanSummary.objects.get(plan__sop_instance_uid=patient.plan_uid)
    assert summary.flags == ["target_not_covered"] and summary.details["uncovered_targets"] == ["PTV 70"]
    assert PatientCompleteness.objects.get().flags == ["plan:target_not_covered"]

"""Real public RT files from several vendors sent with dcmtk to a running receiver and worker."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE

from tests.conftest import DATA
from tests.integration.conftest import require_tools
from tests.integration.rtbank_env import RtbankEnv

VENDOR_SETS = [
    "nelms-dvh-benchmark",  # Pinnacle: CT + 3 RTSTRUCT + RTDOSE
    "pyplanscoring/raystation_brain_srs_imrt",  # RayStation: RTSTRUCT + RTPLAN + RTDOSE
    "synthetic-rtrecord",  # treatment records referencing the RayStation plan
    "pyplanscoring/tomotherapy_plan",  # TomoTherapy: RTSTRUCT + RTPLAN
    "aptg-dcpt-let/plan03_ramp_full",  # RayStation 14 ion plan + RTSTRUCT + 3 RTDOSE
    "pyplanscoring/gammaplan_srs",  # GammaPlan
    "rt-utils/rt.dcm",
    "rt-utils/ct_1.dcm",
    "rt-utils/ct_2.dcm",  # GE CT + rt-utils RTSTRUCT
]


def _files(entries: list[str]) -> list[Path]:
    out: list[Path] = []
    for entry in entries:
        path = DATA / entry
        out += sorted(path.rglob("*.dcm")) if path.is_dir() else [path]
    return out


def test_it_files_every_instance_roi_and_reference_from_several_vendors(open_rtbank_env: RtbankEnv) -> None:
    require_tools("storescu", "echoscu")
    env = open_rtbank_env
    env.start_receiver()
    env.start_worker()
    files = _files(VENDOR_SETS)
    result = env.storescu(*[DATA / e for e in VENDOR_SETS])
    assert result.returncode == 0, result.stderr
    stats = env.wait_idle()
    uids = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}
    assert stats["instances"] == len(uids)
    stored = env.query(
        "from rtbank.catalog.models import Instance, Roi\n"
        "out = {'uids': sorted(Instance.objects.filter(state='current')"
        ".values_list('sop_instance_uid', flat=True)),"
        " 'rois': Roi.objects.filter(structure_set__instance__state='current').count()}"
    )
    assert set(stored["uids"]) == uids
    expected_rois = sum(
        len(pydicom.dcmread(f).StructureSetROISequence)
        for f in {
            pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID: f
            for f in files
            if pydicom.dcmread(f, stop_before_pixels=True).Modality == "RTSTRUCT"
        }.values()
    )
    assert stored["rois"] == expected_rois
    by_modality: dict[str, set[str]] = {}
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        by_modality.setdefault(str(ds.Modality), set()).add(str(ds.SOPInstanceUID))
    assert stats["rt"] == {
        "plans": len(by_modality["RTPLAN"]),
        "structure_sets": len(by_modality["RTSTRUCT"]),
        "doses": len(by_modality["RTDOSE"]),
        "records": len(by_modality["RTRECORD"]),
        "registrations": 0,
    }
    assert stats["by_modality"] == {m: len(u) for m, u in by_modality.items()}


def test_it_resolves_plan_dose_structure_set_and_ct_references_both_ways(open_rtbank_env: RtbankEnv) -> None:
    require_tools("storescu")
    env = open_rtbank_env
    env.start_receiver()
    env.start_worker()
    # The dose first, the plan and structure set later, the CT last: references resolve whatever the order.
    sets = ["nelms-dvh-benchmark/DOSE_GRIDS", "nelms-dvh-benchmark/STRUCTURES", "nelms-dvh-benchmark/CT_3mm"]
    for entry in sets:
        assert env.storescu(DATA / entry).returncode == 0
    env.wait_idle()
    rows = env.query(
        "from rtbank.catalog.models import Reference, Instance\n"
        "uids = set(Instance.objects.values_list('sop_instance_uid', flat=True))\n"
        "series = set(Instance.objects.values_list('series__uid', flat=True))\n"
        "out = [(r.source.kind, r.kind, r.level, r.target_uid in uids or r.target_uid in series)"
        " for r in Reference.objects.select_related('source')]"
    )
    image_refs = [r for r in rows if r[1] == "image"]
    assert image_refs and all(resolved for *_, resolved in image_refs)  # every contour's CT slice is stored
    series_refs = [r for r in rows if r[1] == "series"]
    assert series_refs and all(resolved for *_, resolved in series_refs)
    dose_plan = [r for r in rows if r[0] == "dose" and r[1] == "plan"]
    assert dose_plan and not any(
        resolved for *_, resolved in dose_plan
    )  # the Nelms dose names a plan nobody sent


def test_it_accepts_a_private_tps_storage_class(open_rtbank_env: RtbankEnv) -> None:
    """Eclipse/Halcyon sends plans with the private class 1.2.246.352.70.1.70 (dcmtk cannot propose it)."""
    env = open_rtbank_env
    env.start_receiver()
    env.start_worker()
    path = next((DATA / "pyplanscoring/eclipse_halcyon_plan").glob("*.dcm"))
    ds = pydicom.dcmread(path)
    ae = AE(ae_title="ECLIPSE")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", env.dicom_port, ae_title="RTBANK")
    assert assoc.is_established
    status = assoc.send_c_store(ds)
    assoc.release()
    assert status.Status == 0x0000
    env.wait_idle()
    found = env.query(
        "from rtbank.catalog.models import Instance\n"
        f"i = Instance.objects.get(sop_instance_uid='{ds.SOPInstanceUID}')\n"
        "out = [i.sop_class_uid, i.kind, i.plan.beam_count]"
    )
    assert found == ["1.2.246.352.70.1.70", "plan", 2]


@pytest.mark.parametrize("charset", ["ISO_IR 100", "ISO_IR 192"])
def test_it_decodes_patient_and_roi_names_in_declared_character_sets(
    open_rtbank_env: RtbankEnv, tmp_path: Path, charset: str
) -> None:
    env = open_rtbank_env
    ds = pydicom.dcmread(DATA / "rt-utils/rt.dcm")
    ds.SpecificCharacterSet = charset
    ds.PatientName = "Jørgensen^Åse"
    ds.StructureSetROISequence[0].ROIName = "Rückenmark"
    path = tmp_path / "rs.dcm"
    ds.save_as(path)
    env.run("import", str(path), "--wait")
    names = env.query(
        "from rtbank.catalog.models import Patient, Roi\n"
        "out = [Patient.objects.get().name, list(Roi.objects.values_list('name', flat=True))]"
    )
    assert names[0] == "Jørgensen^Åse"
    assert "Rückenmark" in names[1]

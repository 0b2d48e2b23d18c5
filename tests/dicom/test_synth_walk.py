"""``harvest_expected``: the ten-step reference walk the manifest promises the harvester will reproduce."""

from __future__ import annotations

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from rtbank.dicom import sop
from rtbank.dicom.synth import harvest_expected
from tests.dicom.test_synth_support import shared


def _harvests() -> list[tuple[dict, dict]]:
    return [(p, pl) for p, pl in shared().plans(treated=True)]


def test_the_manifest_harvest_is_what_the_walk_finds_in_the_written_files() -> None:
    archive = shared()
    for patient in archive.manifest["patients"]:
        files = archive.patient_files(patient["patient_id"])
        datasets = [pydicom.dcmread(archive.root / f["path"], stop_before_pixels=True) for f in files]
        for plan in patient["plans"]:
            if plan["treated"]:
                assert harvest_expected(plan["sop_instance_uid"], datasets) == plan["harvest_expected"]


def test_a_treated_plan_collects_its_structure_set_doses_records_and_whole_planning_ct() -> None:
    archive = shared()
    for _, plan in _harvests():
        expected = plan["harvest_expected"]
        instances = set(expected["instances"])
        assert len(instances) == len(expected["instances"])
        assert {
            plan["sop_instance_uid"],
            plan["structure_set"],
            *plan["doses"],
            *plan["records"],
        } <= instances
        assert expected["series"][0] == plan["planning_ct_series"]
        for series in expected["series"]:
            assert {f["sop_instance_uid"] for f in archive.series_files(series)} <= instances
            assert archive.series_files(series)[0]["modality"] in {"CT", "MR", "PT"}


def test_a_treated_plan_collects_registrations_and_what_they_register() -> None:
    archive = shared()
    with_registrations = 0
    for patient, plan in _harvests():
        instances = set(plan["harvest_expected"]["instances"])
        series = set(plan["harvest_expected"]["series"])
        planning_frame = archive.read(
            archive.series_files(plan["planning_ct_series"])[0]["sop_instance_uid"]
        ).FrameOfReferenceUID
        for entry in archive.patient_files(patient["patient_id"]):
            if entry["modality"] != "REG":
                continue
            reg = archive.read(entry["sop_instance_uid"])
            if reg.FrameOfReferenceUID != planning_frame:
                assert entry["sop_instance_uid"] not in instances
                continue
            with_registrations += 1
            assert entry["sop_instance_uid"] in instances
            moving_frame = reg.RegistrationSequence[1].FrameOfReferenceUID
            in_frame = {
                f["series_instance_uid"]
                for f in archive.patient_files(patient["patient_id"])
                if f["modality"] in {"CT", "MR", "PT"}
                and archive.read(
                    archive.series_files(f["series_instance_uid"])[0]["sop_instance_uid"]
                ).FrameOfReferenceUID
                == moving_frame
            }
            assert in_frame and in_frame <= series  # step 10 brings the PET of a registered PET/CT
    assert with_registrations >= 2


def test_pet_series_come_in_through_the_frame_of_their_registered_ct() -> None:
    archive = shared()
    pet_series = {f["series_instance_uid"] for f in archive.of_modality("PT")}
    harvested = {s for _, plan in _harvests() for s in plan["harvest_expected"]["series"]}
    assert pet_series & harvested


def test_decoys_anomalies_and_other_plans_objects_are_left_out() -> None:
    archive = shared()
    patients = archive.manifest["patients"]
    for patient in patients:
        left_out = {u for d in patient["decoys"] for u in d["uids"]}
        left_out |= {
            u
            for a in patient["anomalies"]
            if a["kind"] in {"dangling_record", "missing_slice"}
            for u in a["uids"]
        }
        series_left_out = {s for d in patient["decoys"] for s in d["series"]}
        for plan in patient["plans"]:
            if not plan["treated"]:
                continue
            assert not left_out & set(plan["harvest_expected"]["instances"])
            assert not series_left_out & set(plan["harvest_expected"]["series"])
            others = [p for p in patient["plans"] if p["planning_ct_series"] != plan["planning_ct_series"]]
            for other in others:
                assert other["sop_instance_uid"] not in plan["harvest_expected"]["instances"]
                assert not set(other["records"]) & set(plan["harvest_expected"]["instances"])


def test_a_tomotherapy_style_dose_is_collected_through_the_structure_set() -> None:
    archive = shared()
    for anomaly in archive.anomalies("dose_references_structure_set"):
        ((_, plan),) = [(p, pl) for p, pl in archive.plans(treated=True) if anomaly["uids"][0] in pl["doses"]]
        assert anomaly["uids"][0] in plan["harvest_expected"]["instances"]


# A hand-built patient: the walk's rules one by one, independent of the generator.


def _ds(
    modality: str, uid: str, series: str, frame: str | None = None, sop_class: str | None = None
) -> Dataset:
    ds = Dataset()
    ds.Modality, ds.SOPInstanceUID, ds.SeriesInstanceUID = modality, uid, series
    ds.SOPClassUID = sop_class or {"CT": sop.CT_IMAGE, "MR": sop.MR_IMAGE, "PT": sop.PET_IMAGE}[modality]
    if frame:
        ds.FrameOfReferenceUID = frame
    return ds


def _ref(uid: str, sop_class: str = sop.RT_PLAN) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, uid
    return item


def _mini_patient() -> list[Dataset]:
    ct_a = [
        _ds("CT", f"9.1.{k}", "9.1", "9.100") for k in range(3)
    ]  # referenced only by an empty ROI's slice list
    ct_b = [_ds("CT", f"9.2.{k}", "9.2", "9.200") for k in range(3)]  # under the first contour
    cbct = _ds("CT", "9.3.0", "9.3", "9.200")  # same frame as the planning CT
    mr = _ds("MR", "9.4.0", "9.4", "9.400")
    mr_other = _ds("MR", "9.5.0", "9.5", "9.400")  # same frame as the registered MR
    pet_alone = _ds("PT", "9.6.0", "9.6", "9.600")  # nobody registers it
    ss = _ds("RTSTRUCT", "9.7", "9.70", None, sop.RT_STRUCTURE_SET)
    empty, drawn = Dataset(), Dataset()
    drawn.ContourSequence = Sequence([Dataset()])
    drawn.ContourSequence[0].ContourImageSequence = Sequence([_ref("9.2.1", sop.CT_IMAGE)])
    empty.ContourSequence = Sequence([])
    ss.ROIContourSequence = Sequence([empty, drawn])
    plan = _ds("RTPLAN", "9.8", "9.80", None, sop.RT_PLAN)
    plan.ReferencedStructureSetSequence = Sequence([_ref("9.7", sop.RT_STRUCTURE_SET)])
    dose = _ds("RTDOSE", "9.9", "9.90", "9.200", sop.RT_DOSE)
    dose.ReferencedRTPlanSequence = Sequence([_ref("9.8")])
    tomo = _ds("RTDOSE", "9.10", "9.91", "9.200", sop.RT_DOSE)
    tomo.ReferencedStructureSetSequence = Sequence([_ref("9.7", sop.RT_STRUCTURE_SET)])
    other_dose = _ds("RTDOSE", "9.11", "9.92", "9.200", sop.RT_DOSE)
    other_dose.ReferencedRTPlanSequence = Sequence([_ref("9.99")])
    record = _ds("RTRECORD", "9.12", "9.93", None, sop.RT_BEAMS_RECORD)
    record.ReferencedRTPlanSequence = Sequence([_ref("9.8")])
    stray = _ds("RTRECORD", "9.13", "9.93", None, sop.RT_BEAMS_RECORD)
    stray.ReferencedRTPlanSequence = Sequence([_ref("9.98")])
    reg = _ds("REG", "9.14", "9.94", "9.200", sop.SPATIAL_REGISTRATION)
    fixed, moving = Dataset(), Dataset()
    fixed.FrameOfReferenceUID = "9.200"
    moving.FrameOfReferenceUID = "9.400"
    moving.ReferencedImageSequence = Sequence([_ref("9.4.0", sop.MR_IMAGE)])
    reg.RegistrationSequence = Sequence([fixed, moving])
    return [*ct_a, *ct_b, cbct, mr, mr_other, pet_alone, ss, plan, dose, tomo, other_dose, record, stray, reg]


def test_the_walk_follows_each_of_its_ten_steps_on_a_hand_built_patient() -> None:
    found = harvest_expected("9.8", _mini_patient())
    assert found["series"] == ["9.2", "9.3", "9.4", "9.5"]
    assert set(found["instances"]) == {
        "9.8", "9.7", "9.9", "9.10", "9.12", "9.14", "9.2.0", "9.2.1", "9.2.2", "9.3.0", "9.4.0", "9.5.0",
    }  # fmt: skip


def test_the_walk_of_a_plan_that_is_not_there_collects_nothing() -> None:
    assert harvest_expected("9.98", _mini_patient()) == {"instances": [], "series": []}

"""What the generated objects contain: geometry, contours, plans, doses, records, registrations, quirks."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest

from rtbank.dicom import sop
from rtbank.dicom.synth.naming import ROI_STYLES
from rtbank.dicom.synth.phantom import Pose, registration_matrix
from tests.dicom.test_synth_support import dose_at, roi_points, shared


def _treated_plans() -> list[tuple[dict, dict]]:
    return shared().plans(treated=True)


def _planning_ct(plan: dict) -> list:
    slices = shared().series(plan["planning_ct_series"])
    return sorted(slices, key=lambda ds: float(ds.ImagePositionPatient[2]))


def test_planning_ct_series_have_consistent_axial_geometry_in_one_frame_of_reference() -> None:
    for _, plan in _treated_plans():
        slices = _planning_ct(plan)
        assert 40 <= len(slices) <= 80
        z = np.array([float(ds.ImagePositionPatient[2]) for ds in slices])
        thickness = float(slices[0].SliceThickness)
        assert 2.0 <= thickness <= 4.0
        gaps = np.diff(z)
        assert np.allclose(gaps[gaps < 1.5 * thickness], thickness)  # one gap may be a lost slice
        assert len({ds.FrameOfReferenceUID for ds in slices}) == 1
        for ds in slices:
            assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
            assert (ds.Rows, ds.Columns) == (128, 128)
            assert float(ds.PixelSpacing[0]) == float(ds.PixelSpacing[1])
            assert ds.ImagePositionPatient[:2] == slices[0].ImagePositionPatient[:2]
            assert float(ds.SliceLocation) == float(ds.ImagePositionPatient[2])


def test_planning_ct_shows_a_body_in_air_with_organs_in_hounsfield_units() -> None:
    _, plan = shared().plans(site="thorax", treated=True)[0]
    slices = _planning_ct(plan)
    middle = slices[len(slices) // 2]
    hu = middle.pixel_array.astype(float) * float(middle.RescaleSlope) + float(middle.RescaleIntercept)
    assert np.median(hu[0]) < -950  # air at the image border
    assert np.median(hu[64, 40:90]) > -900  # a body in the middle
    assert (hu < -700).sum() > 500  # lungs
    assert (hu > 400).sum() > 20  # vertebra


def test_structure_sets_hold_5_to_15_rois_with_colours_and_interpreted_types() -> None:
    archive = shared()
    for ss_file in archive.of_modality("RTSTRUCT"):
        ss = archive.read(ss_file["sop_instance_uid"])
        rois = ss.StructureSetROISequence
        assert 5 <= len(rois) <= 15
        assert len(ss.RTROIObservationsSequence) == len(rois)
        assert {o.RTROIInterpretedType for o in ss.RTROIObservationsSequence} <= {
            "EXTERNAL", "ORGAN", "GTV", "CTV", "PTV", "AVOIDANCE", "CONTROL", "CAVITY",
        }  # fmt: skip
        for item in ss.ROIContourSequence:
            assert len(item.ROIDisplayColor) == 3


def test_contours_lie_on_ct_slices_and_reference_them() -> None:
    archive = shared()
    for ss_file in archive.of_modality("RTSTRUCT"):
        ss = archive.read(ss_file["sop_instance_uid"])
        frame = ss.ReferencedFrameOfReferenceSequence[0]
        series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
        listed = [i.ReferencedSOPInstanceUID for i in series.ContourImageSequence]
        present = {f["sop_instance_uid"] for f in archive.series_files(series.SeriesInstanceUID)}
        assert present <= set(listed) and len(listed) - len(present) <= 1
        z_of = {uid: float(archive.read(uid).ImagePositionPatient[2]) for uid in present}
        assert ss.FrameOfReferenceUID == frame.FrameOfReferenceUID
        assert {r.ReferencedFrameOfReferenceUID for r in ss.StructureSetROISequence} == {
            frame.FrameOfReferenceUID
        }
        for item in ss.ROIContourSequence:
            for contour in item.get("ContourSequence", []):
                image = contour.ContourImageSequence[0].ReferencedSOPInstanceUID
                assert image in listed
                data = np.array([float(v) for v in contour.ContourData]).reshape(-1, 3)
                assert (
                    len(data) == contour.NumberOfContourPoints
                    and contour.ContourGeometricType == "CLOSED_PLANAR"
                )
                if image in z_of:
                    assert np.all(data[:, 2] == z_of[image])


def test_some_rois_are_empty_in_both_ways_real_archives_show() -> None:
    rois = [r for p in shared().manifest["patients"] for r in p["rois"]]
    empty = [r for r in rois if r["empty"]]
    assert {r["empty_kind"] for r in empty} == {"no_contour_item", "no_contours"}
    archive = shared()
    for roi in empty:
        ss = archive.read(roi["structure_set"])
        items = [i for i in ss.ROIContourSequence if i.ReferencedROINumber == roi["number"]]
        assert items == [] or not items[0].get("ContourSequence")


def test_roi_names_follow_each_institutions_habit() -> None:
    archive = shared()
    styles = {i["code"]: i["roi_style"] for i in archive.manifest["institutions"]}
    for patient in archive.manifest["patients"]:
        style = styles[patient["institution"]]
        for roi in patient["rois"]:
            ss = archive.read(roi["structure_set"])
            name = next(r.ROIName for r in ss.StructureSetROISequence if r.ROINumber == roi["number"])
            assert name == roi["name"]
            if roi["standard"] in ROI_STYLES[style]:
                variants = [v.split("{")[0] for v in ROI_STYLES[style][roi["standard"]]]
                assert any(roi["name"].startswith(v) for v in variants), (style, roi)
    cords = {
        r["name"] for p in archive.manifest["patients"] for r in p["rois"] if r["standard"] == "SpinalCord"
    }
    assert len(cords) >= 3  # one house name per institution at least


def test_plans_reference_their_structure_set_and_carry_the_prescription() -> None:
    archive = shared()
    intents = set()
    for _, plan in archive.plans():
        ds = archive.read(plan["sop_instance_uid"])
        intents.add(ds.PlanIntent)
        assert ds.RTPlanLabel == plan["label"] and ds.PlanIntent.lower() == plan["intent"]
        assert ds.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == plan["structure_set"]
        group = ds.FractionGroupSequence[0]
        assert group.NumberOfFractionsPlanned == plan["fractions_planned"]
        assert group.NumberOfBeams == len(ds.BeamSequence) == len(group.ReferencedBeamSequence)
        assert all(float(b.BeamMeterset) > 0 for b in group.ReferencedBeamSequence)
        for beam in ds.BeamSequence:
            assert beam.NumberOfControlPoints == len(beam.ControlPointSequence) >= 2
            assert float(beam.ControlPointSequence[-1].CumulativeMetersetWeight) == 1.0
        if plan["intent"] in {"curative", "palliative", "prophylactic"}:
            assert float(ds.DoseReferenceSequence[0].TargetPrescriptionDose) == pytest.approx(
                plan["prescription_gy"]
            )
        assert ds.ApprovalStatus == ("APPROVED" if plan["approval"] == "APPROVED" else "UNAPPROVED")
    assert intents == {"CURATIVE", "PALLIATIVE", "PROPHYLACTIC", "VERIFICATION", "MACHINE_QA"}


def test_doses_are_plan_doses_in_gray_shaped_by_the_targets() -> None:
    archive = shared()
    for _, plan in _treated_plans():
        if not plan["doses"]:
            continue
        dose = archive.read(plan["doses"][0])
        assert (dose.DoseUnits, dose.DoseSummationType, dose.Modality) == ("GY", "PLAN", "RTDOSE")
        assert dose.NumberOfFrames == len(dose.GridFrameOffsetVector)
        rx = plan["prescription_gy"]
        ds_plan = archive.read(plan["sop_instance_uid"])
        iso = np.array(
            [[float(v) for v in ds_plan.BeamSequence[0].ControlPointSequence[0].IsocenterPosition]]
        )
        assert 0.95 * rx <= dose_at(dose, iso)[0] <= 1.07 * rx
        ss = archive.read(plan["structure_set"])
        ptv = next(r.ROIName for r in ss.StructureSetROISequence if r.ROINumber ==
                   ds_plan.DoseReferenceSequence[0].ReferencedROINumber)  # fmt: skip
        surface = dose_at(dose, roi_points(ss, ptv))
        assert np.median(surface) > 0.85 * rx
        grid = dose.pixel_array.astype(float) * float(dose.DoseGridScaling)
        assert grid.max() <= 1.08 * rx and (grid < 0.2 * rx).mean() > 0.15  # falls off outside the targets


def test_dose_pixel_depth_follows_the_tps_habit() -> None:
    archive = shared()
    bits = {i["code"]: i["dose_bits"] for i in archive.manifest["institutions"]}
    for patient in archive.manifest["patients"]:
        for plan in patient["plans"]:
            for uid in plan["doses"]:
                assert archive.read(uid).BitsAllocated == bits[patient["institution"]]
    assert set(bits.values()) == {16, 32}


def test_each_delivered_fraction_has_one_record_after_the_plan() -> None:
    archive = shared()
    for _, plan in _treated_plans():
        ds_plan = archive.read(plan["sop_instance_uid"])
        meterset = {
            b.ReferencedBeamNumber: float(b.BeamMeterset)
            for b in ds_plan.FractionGroupSequence[0].ReferencedBeamSequence
        }
        assert len(plan["records"]) == len(plan["record_dates"]) <= plan["fractions_planned"]
        assert (
            plan["record_dates"] == sorted(plan["record_dates"])
            and plan["record_dates"][0] > ds_plan.RTPlanDate
        )
        for number, (uid, day) in enumerate(zip(plan["records"], plan["record_dates"], strict=True), start=1):
            record = archive.read(uid)
            assert record.SOPClassUID == sop.RT_BEAMS_RECORD and record.TreatmentDate == day
            assert record.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == plan["sop_instance_uid"]
            assert dt.date.fromisoformat(f"{day[:4]}-{day[4:6]}-{day[6:]}").weekday() < 5
            for beam in record.TreatmentSessionBeamSequence:
                assert beam.CurrentFractionNumber == number
                assert float(beam.DeliveredPrimaryMeterset) == pytest.approx(
                    meterset[beam.ReferencedBeamNumber], rel=2e-3
                )


def test_registrations_bring_another_frame_of_reference_onto_the_planning_ct() -> None:
    archive = shared()
    registrations = archive.of_modality("REG")
    assert registrations
    for entry in registrations:
        reg = archive.read(entry["sop_instance_uid"])
        assert reg.SOPClassUID == sop.SPATIAL_REGISTRATION
        fixed, moving = reg.RegistrationSequence
        assert fixed.FrameOfReferenceUID == reg.FrameOfReferenceUID != moving.FrameOfReferenceUID
        matrix = np.array(
            [
                float(v)
                for v in moving.MatrixRegistrationSequence[0]
                .MatrixSequence[0]
                .FrameOfReferenceTransformationMatrix
            ]
        ).reshape(4, 4)
        assert np.allclose(matrix[3], [0, 0, 0, 1])
        assert np.allclose(matrix[:3, :3] @ matrix[:3, :3].T, np.eye(3), atol=1e-5)
        moved_images = {r.ReferencedSOPInstanceUID for r in moving.ReferencedImageSequence}
        frames = {archive.read(uid).FrameOfReferenceUID for uid in moved_images if uid in archive.by_uid}
        assert frames == {moving.FrameOfReferenceUID}
        referenced = {s.SeriesInstanceUID for s in reg.get("ReferencedSeriesSequence", [])}
        for study in reg.get("StudiesContainingOtherReferencedInstancesSequence", []):
            referenced |= {s.SeriesInstanceUID for s in study.ReferencedSeriesSequence}
        assert len(referenced) == 2


def test_the_registration_matrix_maps_moving_coordinates_onto_fixed_ones() -> None:
    rng = random.Random(4)
    moving, fixed = Pose.random(rng, -700, 3), Pose(translation=(2.0, -10.0, 150.0))
    matrix = registration_matrix(moving, fixed)
    point = (30.0, -20.0, -450.0)  # in the anatomy
    seen_moving = np.array([*moving.to_frame(point), 1.0])
    assert np.allclose((matrix @ seen_moving)[:3], fixed.to_frame(point))


def test_pet_shares_the_frame_of_reference_of_its_own_ct_only() -> None:
    archive = shared()
    pet_series = {f["series_instance_uid"] for f in archive.of_modality("PT")}
    assert pet_series
    for uid in pet_series:
        pet = archive.series(uid)[0]
        same_study = [
            f
            for f in archive.manifest["files"]
            if f["study_instance_uid"] == pet.StudyInstanceUID and f["modality"] == "CT"
        ]
        assert (
            same_study
            and archive.read(same_study[0]["sop_instance_uid"]).FrameOfReferenceUID == pet.FrameOfReferenceUID
        )
        assert pet.Units == "BQML" and pet.RadiopharmaceuticalInformationSequence


def test_a_lost_ct_slice_is_still_referenced_by_its_structure_set() -> None:
    archive = shared()
    lost = archive.anomalies("missing_slice")
    assert lost
    for anomaly in lost:
        (uid,) = anomaly["uids"]
        assert uid not in archive.by_uid
        ss_files = archive.of_modality("RTSTRUCT")
        assert any(
            uid in str(archive.read(f["sop_instance_uid"]).ReferencedFrameOfReferenceSequence)
            for f in ss_files
        )


def test_a_tomotherapy_style_dose_references_the_structure_set_and_no_plan() -> None:
    archive = shared()
    anomalies = archive.anomalies("dose_references_structure_set")
    assert anomalies
    for anomaly in anomalies:
        dose = archive.read(anomaly["uids"][0])
        assert "ReferencedRTPlanSequence" not in dose
        ((_, plan),) = [(p, pl) for p, pl in archive.plans() if anomaly["uids"][0] in pl["doses"]]
        assert dose.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID == plan["structure_set"]


def test_a_treated_plan_without_dose_and_a_record_of_a_missing_plan_exist() -> None:
    archive = shared()
    doses = [archive.read(f["sop_instance_uid"]) for f in archive.of_modality("RTDOSE")]
    assert archive.anomalies("plan_without_dose") and archive.anomalies("dangling_record")
    for no_dose in archive.anomalies("plan_without_dose"):
        ((_, plan),) = archive.plans(sop_instance_uid=no_dose["uids"][0])
        assert plan["treated"] and plan["doses"] == [] and plan["records"]
        assert not any(no_dose["uids"][0] in str(d.get("ReferencedRTPlanSequence", "")) for d in doses)
    for dangling in archive.anomalies("dangling_record"):
        record = archive.read(dangling["uids"][0])
        assert record.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID not in archive.by_uid


def test_trial_plans_are_unapproved_and_their_doses_reference_them() -> None:
    archive = shared()
    assert archive.decoys("trial_plan") and archive.decoys("trial_dose")
    trial_plans = {d["uids"][0] for d in archive.decoys("trial_plan")}
    for uid in trial_plans:
        assert archive.read(uid).ApprovalStatus == "UNAPPROVED"
        assert not archive.plans(sop_instance_uid=uid)[0][1]["records"]
    for decoy in archive.decoys("trial_dose"):
        assert (
            archive.read(decoy["uids"][0]).ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID in trial_plans
        )


def test_a_second_structure_set_shares_the_planning_frame_but_no_plan_uses_it() -> None:
    archive = shared()
    plans = [archive.read(pl["sop_instance_uid"]) for _, pl in archive.plans()]
    used = {p.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID for p in plans}
    planning_frames = {archive.read(uid).FrameOfReferenceUID for uid in used}
    assert archive.decoys("second_structure_set")
    for decoy in archive.decoys("second_structure_set"):
        ss = archive.read(decoy["uids"][0])
        assert ss.SOPInstanceUID not in used and ss.FrameOfReferenceUID in planning_frames


def test_unregistered_series_have_a_frame_of_reference_of_their_own() -> None:
    archive = shared()
    registrations = [
        str(archive.read(f["sop_instance_uid"]).RegistrationSequence) for f in archive.of_modality("REG")
    ]
    assert archive.decoys("unregistered_series")
    for decoy in archive.decoys("unregistered_series"):
        (series,) = decoy["series"]
        frame = archive.read(archive.series_files(series)[0]["sop_instance_uid"]).FrameOfReferenceUID
        assert not any(frame in text for text in registrations)
        assert sorted(decoy["uids"]) == sorted(f["sop_instance_uid"] for f in archive.series_files(series))


def test_qa_phantom_plans_and_untreated_courses_have_no_records() -> None:
    archive = shared()
    assert archive.decoys("qa_phantom") and archive.decoys("untreated_course")
    for decoy in archive.decoys("qa_phantom"):
        qa_plans = [pl for _, pl in archive.plans() if pl["sop_instance_uid"] in decoy["uids"]]
        assert {pl["intent"] for pl in qa_plans} == {"verification", "machine_qa"}
        assert not any(pl["treated"] or pl["records"] for pl in qa_plans)
    for decoy in archive.decoys("untreated_course"):
        plans = [pl for _, pl in archive.plans() if pl["sop_instance_uid"] in decoy["uids"]]
        assert plans and not any(pl["records"] or pl["treated"] for pl in plans)
        assert all(pl["harvest_expected"] == {"instances": [], "series": []} for pl in plans)

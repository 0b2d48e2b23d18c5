"""RT parsers and reference extraction on real vendor files."""

from __future__ import annotations

import pydicom

from rtbank.dicom.keys import InstanceKeys
from rtbank.dicom.references import RefKind, references
from rtbank.dicom.rtobjects import DoseInfo, PlanInfo, RecordInfo, RegistrationInfo, StructureSetInfo
from rtbank.dicom.sop import RtKind
from tests.conftest import DATA

RAYSTATION = DATA / "pyplanscoring/raystation_brain_srs_imrt"
PLAN_UID = "1.2.752.243.1.1.20180405114728127.3000.13138"


def read(path):
    return pydicom.dcmread(path, force=True)


def test_raystation_plan() -> None:
    ds = read(next(RAYSTATION.glob("RP*.dcm")))
    info = PlanInfo.from_dataset(ds)
    assert (info.label, info.intent, info.fractions_planned, info.beam_count) == ("imrt 4", "curative", 5, 13)
    assert info.technique == "IMRT" and not info.is_ion
    assert info.structure_set_uid == "1.2.752.243.1.1.20180405120828292.2900.76357"
    assert InstanceKeys.from_dataset(ds).kind == RtKind.PLAN


def test_ion_plan_from_raystation_14() -> None:
    info = PlanInfo.from_dataset(read(DATA / "aptg-dcpt-let/plan03_ramp_full/ramped_2Gy_ver2_full.dcm"))
    assert info.is_ion and info.technique == "PBS" and info.radiation_type == "PROTON"


def test_structure_set_rois_and_first_contour_image() -> None:
    ds = read(next(RAYSTATION.glob("RS*.dcm")))
    info = StructureSetInfo.from_dataset(ds)
    assert len(info.rois) == len(ds.StructureSetROISequence) == 28
    body = next(r for r in info.rois if r.name == "BODY")
    assert body.interpreted_type == "EXTERNAL" and body.contour_count == 256 and body.color.startswith("#")
    first = ds.ROIContourSequence[0].ContourSequence[0].ContourImageSequence[0].ReferencedSOPInstanceUID
    assert info.first_contour_image_uid == first


def test_empty_rois_are_counted_as_empty() -> None:
    info = StructureSetInfo.from_dataset(
        read(DATA / "slicerrt-eclipse-prostate/RS.1.2.246.352.71.4.2088656855.2404649.20110920153449.dcm")
    )
    assert sum(r.is_empty for r in info.rois) == 10


def test_dose_references_its_plan() -> None:
    ds = read(next(RAYSTATION.glob("RD*.dcm")))
    info = DoseInfo.from_dataset(ds)
    assert info.plan_uid == PLAN_UID and info.summation_type == "PLAN" and info.units == "GY"
    assert references(ds) == [references(ds)[0]] and references(ds)[0].kind == RefKind.PLAN


def test_records_reference_their_plan() -> None:
    info = RecordInfo.from_dataset(read(DATA / "synthetic-rtrecord/RTRECORD_fx2.dcm"))
    assert (info.plan_uid, info.fraction_number, info.termination_status) == (PLAN_UID, 2, "NORMAL")
    assert info.delivered_meterset and info.delivered_meterset > 0


def test_registration_without_references_is_still_read() -> None:
    info = RegistrationInfo.from_dataset(read(DATA / "onkodicom/spatial_reg.dcm"))
    assert info.frames == () and len(info.matrices) == 1 and info.registration_types == ("RIGID",)


def test_structure_set_references_frame_series_and_every_contour_image() -> None:
    ds = read(DATA / "nelms-dvh-benchmark/STRUCTURES/Sphere_30_0.dcm")
    refs = references(ds)
    kinds = {r.kind for r in refs}
    assert kinds == {RefKind.FRAME_OF_REFERENCE, RefKind.SERIES, RefKind.IMAGE}
    assert sum(r.kind == RefKind.IMAGE for r in refs) == 20  # all 20 CT slices, de-duplicated

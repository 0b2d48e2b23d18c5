"""Building blocks shared by every generated object: number formatting, sequences, the common modules.

Decimal strings are formatted here, once, so that values that must match across objects (a contour's z and
its slice's ``ImagePositionPatient``) are the same text, and no value exceeds the 16 characters of DS.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian

from rtbank.dicom.synth.context import PatientContext, Series
from rtbank.dicom.uids import uid_from

IMPLEMENTATION_CLASS_UID = uid_from("rtbank-synth", "implementation", "1")
IMPLEMENTATION_VERSION = "RTBANK_SYNTH_1"
CHARACTER_SET = "ISO_IR 100"


def ds_text(value: float, decimals: int = 2) -> str:
    """``value`` as a DS string with at most ``decimals`` decimals and no trailing zeros (``-0`` is ``0``)."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def ds_list(values: Iterable[float], decimals: int = 2) -> list[str]:
    return [ds_text(v, decimals) for v in values]


def set_ds(ds: Dataset, keyword: str, values: Iterable[str]) -> Dataset:
    """Set the DS attribute ``keyword`` of ``ds`` to preformatted ``values``, stored as raw Explicit VR
    Little Endian bytes.

    pydicom otherwise builds and validates one ``DSfloat`` per value, which made contour data and leaf
    positions most of the generator's run time. Reading the attribute back converts it as usual.
    """
    raw = "\\".join(values).encode("ascii")
    if len(raw) % 2:
        raw += b" "
    tag = Tag(tag_for_keyword(keyword))
    ds[tag] = RawDataElement(tag, "DS", len(raw), raw, 0, False, True)
    return ds


def item(**attributes: Any) -> Dataset:
    """A sequence item with ``attributes`` set by keyword (``None`` values are left out)."""
    ds = Dataset()
    for keyword, value in attributes.items():
        if value is not None:
            setattr(ds, keyword, value)
    return ds


def sequence(items: Iterable[Dataset]) -> Sequence:
    return Sequence(list(items))


def code(value: str, scheme: str, meaning: str) -> Dataset:
    """A code sequence item (Code Sequence Macro)."""
    return item(CodeValue=value, CodingSchemeDesignator=scheme, CodeMeaning=meaning)


def reference(sop_class_uid: str, sop_instance_uid: str, **extra: Any) -> Dataset:
    return item(ReferencedSOPClassUID=sop_class_uid, ReferencedSOPInstanceUID=sop_instance_uid, **extra)


def base_dataset(
    ctx: PatientContext,
    series: Series,
    sop_class_uid: str,
    sop_instance_uid: str,
    content_date: str,
    content_time: str,
) -> Dataset:
    """A dataset with file meta and the Patient, General Study, General Series, General Equipment and SOP
    Common modules filled; the caller adds its IOD's own modules.

    The instance number is taken from ``series`` (1, 2, … in creation order).
    """
    study = series.study
    equipment = series.equipment
    ds = Dataset()
    ds.file_meta = file_meta(sop_class_uid, sop_instance_uid)
    ds.SpecificCharacterSet = CHARACTER_SET
    ds.InstanceCreationDate = content_date
    ds.InstanceCreationTime = content_time
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    ds.StudyDate = study.date
    ds.SeriesDate = series.date
    ds.StudyTime = study.time
    ds.SeriesTime = series.time
    ds.AccessionNumber = study.accession
    ds.Modality = series.modality
    ds.Manufacturer = equipment.manufacturer
    ds.InstitutionName = ctx.institution.name
    ds.ReferringPhysicianName = ""
    ds.StationName = equipment.station
    ds.StudyDescription = study.description
    ds.SeriesDescription = series.description
    ds.ManufacturerModelName = equipment.model
    ds.PatientName = ctx.patient_name
    ds.PatientID = ctx.patient_id
    ds.PatientBirthDate = ctx.birth_date.strftime("%Y%m%d")
    ds.PatientSex = ctx.sex
    ds.SoftwareVersions = equipment.software
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = series.uid
    ds.StudyID = study.study_id
    ds.SeriesNumber = series.number
    ds.InstanceNumber = series.take_instance_number()
    if series.frame_of_reference_uid:
        ds.FrameOfReferenceUID = series.frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
    return ds


def file_meta(sop_class_uid: str, sop_instance_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    return meta

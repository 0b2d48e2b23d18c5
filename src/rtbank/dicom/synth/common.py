"""Building blocks shared by every generated object: number formatting, sequences, the common modules.

Decimal strings are formatted here, once, so that values that must match across objects (a contour's z and
its slice's ``ImagePositionPatient``) are the same text, and no value exceeds the 16 characters of DS.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable
from typing import Any

from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID, ExplicitVRLittleEndian

from rtbank.dicom.synth.context import PatientContext, Series
from rtbank.dicom.uids import uid_from

IMPLEMENTATION_CLASS_UID = uid_from("rtbank-synth", "implementation", "1")
IMPLEMENTATION_VERSION = "RTBANK_SYNTH_1"
CHARACTER_SET = "ISO_IR 100"
ENCODINGS = convert_encodings(CHARACTER_SET)
GENERAL_SERIES_MODALITIES = frozenset({"CT", "MR", "PT", "REG"})


def ds_text(value: float, decimals: int = 2) -> str:
    """``value`` as a DS string with at most ``decimals`` decimals and no trailing zeros (``-0`` is ``0``)."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def ds_list(values: Iterable[float], decimals: int = 2) -> list[str]:
    return [ds_text(v, decimals) for v in values]


def put(ds: Dataset, **attributes: Any) -> Dataset:
    """Set ``attributes`` of ``ds`` by keyword (``None`` values are left out) and return ``ds``.

    Text values (CS, DA, DS, IS, LO, PN, SH, TM, UI …) are stored already encoded, as raw Explicit VR Little
    Endian elements; pydicom decodes them when they are read, as it does for a file. Building a ``DSfloat``
    or ``IS`` per value and validating it was most of the generator's run time. Other VRs (sequences,
    binary numbers) are set the usual way. Floats become DS text with up to 6 decimals.
    """
    for keyword, value in attributes.items():
        if value is None:
            continue
        tag, vr = _tag_and_vr(keyword)
        if vr in _TEXT_VRS and isinstance(value, (str, int, float, list, tuple)):
            ds[tag] = _raw_text(tag, vr, value)
        elif vr in _BINARY_FORMATS and isinstance(value, int):
            raw = struct.pack(_BINARY_FORMATS[vr], value)
            ds[tag] = RawDataElement(tag, vr, len(raw), raw, 0, False, True)
        else:
            setattr(ds, keyword, value)
    return ds


_BINARY_FORMATS = {"US": "<H", "UL": "<L", "SS": "<h", "SL": "<l"}
_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UT"}
)


@functools.cache
def _tag_and_vr(keyword: str) -> tuple[BaseTag, str]:
    number = tag_for_keyword(keyword)
    if number is None:
        raise AttributeError(f"{keyword} is not a DICOM keyword")
    return Tag(number), dictionary_VR(number)


def _raw_text(
    tag: BaseTag, vr: str, value: str | int | float | list[Any] | tuple[Any, ...]
) -> RawDataElement:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple)):
        try:
            text = "\\".join(value)
        except TypeError:
            text = "\\".join(_text(v) for v in value)
    else:
        text = _text(value)
    raw = text.encode("latin-1")
    if len(raw) % 2:
        raw += b"\x00" if vr == "UI" else b" "
    return RawDataElement(tag, vr, len(raw), raw, 0, False, True)


def _text(value: object) -> str:
    return ds_text(value, 6) if isinstance(value, float) else str(value)


def new_dataset(character_set: str | list[str] = default_encoding) -> Dataset:
    """An empty dataset marked as already in the encoding it will be written in.

    pydicom otherwise re-checks every element for ambiguous VRs and decodes raw elements while writing
    (most of the write time). Elements with an ambiguous VR (Pixel Data) must be added with an explicit VR.
    Sequence items keep pydicom's default here: they are written in their parent's character set.
    """
    ds = Dataset()
    ds.set_original_encoding(False, True, character_set)
    return ds


def item(**attributes: Any) -> Dataset:
    """A sequence item with ``attributes`` set by keyword (``None`` values are left out)."""
    return put(new_dataset(), **attributes)


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
    ds = new_dataset(ENCODINGS)
    ds.file_meta = file_meta(sop_class_uid, sop_instance_uid)
    put(
        ds,
        SpecificCharacterSet=CHARACTER_SET,
        InstanceCreationDate=content_date,
        InstanceCreationTime=content_time,
        SOPClassUID=sop_class_uid,
        SOPInstanceUID=sop_instance_uid,
        StudyDate=study.date,
        SeriesDate=series.date,
        StudyTime=study.time,
        SeriesTime=series.time,
        AccessionNumber=study.accession,
        Modality=series.modality,
        Manufacturer=equipment.manufacturer,
        InstitutionName=ctx.institution.name,
        ReferringPhysicianName="",
        StationName=equipment.station,
        StudyDescription=study.description,
        SeriesDescription=series.description,
        ManufacturerModelName=equipment.model,
        PatientName=ctx.patient_name,
        PatientID=ctx.patient_id,
        PatientBirthDate=ctx.birth_date.strftime("%Y%m%d"),
        PatientSex=ctx.sex,
        SoftwareVersions=equipment.software,
        StudyInstanceUID=study.uid,
        SeriesInstanceUID=series.uid,
        StudyID=study.study_id,
        SeriesNumber=series.number,
        InstanceNumber=series.take_instance_number(),
    )
    if series.modality in GENERAL_SERIES_MODALITIES:
        # Laterality (2C) is required unless the body part is known to be unpaired.
        if series.body_part:
            put(ds, BodyPartExamined=series.body_part)
        else:
            put(ds, Laterality="")
    if series.frame_of_reference_uid:
        put(ds, FrameOfReferenceUID=series.frame_of_reference_uid, PositionReferenceIndicator="")
    return ds


def file_meta(sop_class_uid: str, sop_instance_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class_uid)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    return meta

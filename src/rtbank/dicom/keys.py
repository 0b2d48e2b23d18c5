"""Key values a researcher filters on, read from a dataset into typed records.

pydicom decodes strings with the dataset's Specific Character Set (ISO_IR 100, ISO_IR 192 and the ISO 2022
sets), so names arrive here as Python text; nothing in rtbank re-decodes bytes by hand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pydicom.dataset import Dataset

from rtbank.dicom.sop import RtKind, rt_kind
from rtbank.dicom.uids import UnsafeUid, check_uid
from rtbank.dicom.validate import RejectedDicom


@dataclass(frozen=True)
class InstanceKeys:
    """Patient, study, series and instance key values of one object."""

    patient_id: str
    issuer_of_patient_id: str
    patient_name: str
    patient_birth_date: dt.date | None
    patient_sex: str
    study_instance_uid: str
    study_date: dt.date | None
    study_description: str
    accession_number: str
    study_id: str
    series_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    series_date: dt.date | None
    frame_of_reference_uid: str
    manufacturer: str
    model_name: str
    station_name: str
    institution_name: str
    sop_class_uid: str
    sop_instance_uid: str
    instance_number: int | None
    content_date: dt.date | None
    slice_position_mm: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing_mm: tuple[float, float] | None
    slice_thickness_mm: float | None
    rows: int | None
    columns: int | None
    frames: int | None
    burned_in_annotation: str
    trial_subject_id: str
    trial_protocol_id: str
    kind: RtKind

    @classmethod
    def from_dataset(cls, ds: Dataset) -> InstanceKeys:
        """Read the keys; raise :class:`RejectedDicom` when an identifying UID is missing or unsafe."""
        try:
            sop_instance = check_uid(ds.get("SOPInstanceUID"), "SOP Instance UID")
            sop_class = check_uid(ds.get("SOPClassUID"), "SOP Class UID")
            study = check_uid(ds.get("StudyInstanceUID"), "Study Instance UID")
            series = check_uid(ds.get("SeriesInstanceUID"), "Series Instance UID")
        except UnsafeUid as exc:
            raise RejectedDicom(str(exc)) from None
        patient_id = text(ds, "PatientID")
        if not patient_id:
            raise RejectedDicom(
                f"object {sop_instance} has no Patient ID; rtbank cannot file it to a patient"
            )
        frame = text(ds, "FrameOfReferenceUID")
        return cls(
            patient_id=patient_id,
            issuer_of_patient_id=text(ds, "IssuerOfPatientID"),
            patient_name=text(ds, "PatientName"),
            patient_birth_date=date(ds, "PatientBirthDate"),
            patient_sex=text(ds, "PatientSex")[:1],
            study_instance_uid=study,
            study_date=date(ds, "StudyDate"),
            study_description=text(ds, "StudyDescription"),
            accession_number=text(ds, "AccessionNumber"),
            study_id=text(ds, "StudyID"),
            series_instance_uid=series,
            modality=text(ds, "Modality").upper(),
            series_number=integer(ds, "SeriesNumber"),
            series_description=text(ds, "SeriesDescription"),
            series_date=date(ds, "SeriesDate"),
            frame_of_reference_uid=frame if _safe(frame) else "",
            manufacturer=text(ds, "Manufacturer"),
            model_name=text(ds, "ManufacturerModelName"),
            station_name=text(ds, "StationName"),
            institution_name=text(ds, "InstitutionName"),
            sop_class_uid=sop_class,
            sop_instance_uid=sop_instance,
            instance_number=integer(ds, "InstanceNumber"),
            content_date=date(ds, "ContentDate"),
            slice_position_mm=floats(ds, "ImagePositionPatient", 3),  # type: ignore[arg-type]
            orientation=floats(ds, "ImageOrientationPatient", 6),
            pixel_spacing_mm=floats(ds, "PixelSpacing", 2),  # type: ignore[arg-type]
            slice_thickness_mm=number(ds, "SliceThickness"),
            rows=integer(ds, "Rows"),
            columns=integer(ds, "Columns"),
            frames=integer(ds, "NumberOfFrames"),
            burned_in_annotation=text(ds, "BurnedInAnnotation").upper(),
            trial_subject_id=text(ds, "ClinicalTrialSubjectID"),
            trial_protocol_id=text(ds, "ClinicalTrialProtocolID"),
            kind=rt_kind(sop_class),
        )


# --- small readers shared by the RT parsers; each returns a neutral value when absent or malformed ---


def text(ds: Dataset, keyword: str, limit: int = 256) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    return str(value).replace("\x00", "").strip()[:limit]


def date(ds: Dataset, keyword: str) -> dt.date | None:
    raw = text(ds, keyword)[:8]
    try:
        return dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:8])) if len(raw) == 8 else None
    except ValueError:
        return None


def time_of_day(ds: Dataset, keyword: str) -> dt.time | None:
    raw = text(ds, keyword).split(".")[0]
    try:
        if len(raw) >= 4:
            return dt.time(int(raw[:2]), int(raw[2:4]), int(raw[4:6]) if len(raw) >= 6 else 0)
    except ValueError:
        pass
    return None


def integer(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def number(ds: Dataset, keyword: str) -> float | None:
    value = ds.get(keyword)
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def floats(ds: Dataset, keyword: str, count: int) -> tuple[float, ...] | None:
    value = ds.get(keyword)
    try:
        out = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return out if len(out) == count else None


def _safe(uid: str) -> bool:
    try:
        check_uid(uid)
    except UnsafeUid:
        return False
    return True

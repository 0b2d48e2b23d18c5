"""A small, fast RT dataset for analysis tests: a planning CT, a structure set of analytic solids, a linear
dose, a plan and treatment records — written with pydicom, imported through the real pipeline.

The solids and dose come from :mod:`rtbank.dicom.dvh.phantoms`, so every metric has a closed-form value:
the dose is ``60 Gy + 0.5 Gy/mm × y``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from rtbank.dicom.dvh.phantoms import LinearDose, Solid, linear_dose_dataset, structure_set_dataset

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
RT_RECORD_STORAGE = "1.2.840.10008.5.1.4.1.1.481.4"
DOSE = LinearDose(axis="y", gradient_gy_per_mm=0.5, centre_gy=60.0)
SOLIDS = {
    "PTV 70": Solid("sphere", 15.0, centre_mm=(0.0, 0.0, 0.0)),
    "Spinal Cord": Solid("cylinder", 5.0, 30.0, axis="z", centre_mm=(0.0, 25.0, 0.0)),
    '=HYPERLINK("x")': Solid("sphere", 6.0, centre_mm=(-25.0, 0.0, 0.0)),
}
CT_Z = [float(z) for z in np.arange(-16.5, 16.6, 3.0)]  # on the contours' planes, 1.5 cm beyond them


@dataclass
class PhantomPatient:
    patient_id: str
    folder: Path
    plan_uid: str = ""
    structure_set_uid: str = ""
    dose_uid: str = ""
    ct_series_uid: str = ""
    records: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


def _patient(ds: Dataset, p: PhantomPatient, study_uid: str, frame: str) -> Dataset:
    ds.PatientID, ds.PatientName = p.patient_id, f"PHANTOM^{p.patient_id}"
    ds.StudyInstanceUID, ds.FrameOfReferenceUID = study_uid, frame
    ds.StudyDate = "20240102"
    return ds


def _save(ds: Dataset, path: Path, p: PhantomPatient, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    p.files[key] = path


def _new(sop_class: str, modality: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.Modality = sop_class, modality
    ds.SeriesInstanceUID = generate_uid()
    return ds


def write_phantom_patient(
    folder: Path,
    patient_id: str = "PH1",
    *,
    roi_names: dict[str, str] | None = None,
    skip_ct: tuple[int, ...] = (),
    treatment_dates: tuple[dt.date, ...] = (),
    prescription_gy: float = 70.0,
    fractions: int = 35,
    dose_lower_mm: tuple[float, float, float] = (-45.0, -45.0, -45.0),
) -> PhantomPatient:
    """Write one patient; ``roi_names`` renames the solids (original name → name written)."""
    p = PhantomPatient(patient_id, folder)
    study, frame = generate_uid(), generate_uid()
    ct_uids = _write_ct(p, study, frame, skip_ct)
    names = roi_names or {}
    solids = [
        Solid(s.kind, s.radius_mm, s.length_mm, s.axis, s.centre_mm, names.get(n, n))
        for n, s in SOLIDS.items()
    ]
    ss = _patient(structure_set_dataset(solids, 3.0, frame), p, study, frame)
    _reference_ct(ss, p.ct_series_uid, study, ct_uids)
    p.structure_set_uid = ss.SOPInstanceUID
    plan = _plan(p, study, frame, prescription_gy, fractions)
    dose = _patient(linear_dose_dataset(DOSE, dose_lower_mm, (37, 37, 37), 2.5, frame), p, study, frame)
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = RT_PLAN_STORAGE, plan.SOPInstanceUID
    dose.ReferencedRTPlanSequence = [ref]
    p.dose_uid = dose.SOPInstanceUID
    _save(ss, folder / "RS.dcm", p, "structure_set")
    _save(plan, folder / "RP.dcm", p, "plan")
    _save(dose, folder / "RD.dcm", p, "dose")
    for number, day in enumerate(treatment_dates, start=1):
        record = _record(p, study, plan.SOPInstanceUID, number, day)
        _save(record, folder / f"RT{number:02d}.dcm", p, f"record{number}")
        p.records.append(record.SOPInstanceUID)
    return p


def _write_ct(p: PhantomPatient, study: str, frame: str, skip: tuple[int, ...]) -> dict[float, str]:
    series = generate_uid()
    p.ct_series_uid = series
    uids = {}
    for index, z in enumerate(CT_Z):
        uid = generate_uid()
        uids[z] = uid
        if index in skip:
            continue  # referenced by the structure set, never sent
        ds = _new(CT_STORAGE, "CT")
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
        _patient(ds, p, study, frame)
        ds.SeriesInstanceUID, ds.InstanceNumber = series, len(CT_Z) - index  # numbered backwards on purpose
        ds.ImagePositionPatient = [-50.0, -50.0, z]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [12.5, 12.5], 3.0
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = np.zeros((8, 8), dtype="<i2").tobytes()
        _save(ds, p.folder / "CT" / f"{index:03d}.dcm", p, f"ct{index}")
    return uids


def _reference_ct(ss: Dataset, series_uid: str, study_uid: str, ct_uids: dict[float, str]) -> None:
    """The structure set lists every slice of the series; the first contour names the middle slice."""
    image_items = []
    for uid in ct_uids.values():
        img = Dataset()
        img.ReferencedSOPClassUID, img.ReferencedSOPInstanceUID = CT_STORAGE, uid
        image_items.append(img)
    series = Dataset()
    series.SeriesInstanceUID, series.ContourImageSequence = series_uid, image_items
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study.ReferencedSOPInstanceUID, study.RTReferencedSeriesSequence = study_uid, [series]
    ss.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence = [study]
    first = Dataset()
    first.ReferencedSOPClassUID, first.ReferencedSOPInstanceUID = (
        CT_STORAGE,
        list(ct_uids.values())[len(ct_uids) // 2],
    )
    ss.ROIContourSequence[0].ContourSequence[0].ContourImageSequence = [first]


def _plan(p: PhantomPatient, study: str, frame: str, prescription_gy: float, fractions: int) -> Dataset:
    ds = _patient(_new(RT_PLAN_STORAGE, "RTPLAN"), p, study, frame)
    ds.RTPlanLabel, ds.RTPlanName, ds.PlanIntent, ds.RTPlanGeometry = (
        "PH_70",
        "Phantom plan",
        "CURATIVE",
        "PATIENT",
    )
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = (
        "1.2.840.10008.5.1.4.1.1.481.3",
        p.structure_set_uid,
    )
    ds.ReferencedStructureSetSequence = [ref]
    target = Dataset()
    target.DoseReferenceNumber, target.DoseReferenceStructureType, target.DoseReferenceType = (
        1,
        "SITE",
        "TARGET",
    )
    target.TargetPrescriptionDose = prescription_gy
    ds.DoseReferenceSequence = [target]
    beam_ref = Dataset()
    beam_ref.ReferencedBeamNumber, beam_ref.BeamMeterset, beam_ref.BeamDose = (
        1,
        250.0,
        prescription_gy / fractions,
    )
    group = Dataset()
    group.FractionGroupNumber, group.NumberOfFractionsPlanned, group.NumberOfBeams = 1, fractions, 1
    group.ReferencedBeamSequence = [beam_ref]
    ds.FractionGroupSequence = [group]
    beam = Dataset()
    beam.BeamNumber, beam.BeamName, beam.BeamType, beam.RadiationType = 1, "A1", "STATIC", "PHOTON"
    beam.TreatmentMachineName, beam.TreatmentDeliveryType = "LINAC1", "TREATMENT"
    beam.ControlPointSequence = []
    ds.BeamSequence = [beam]
    p.plan_uid = ds.SOPInstanceUID
    return ds


def _record(p: PhantomPatient, study: str, plan_uid: str, fraction: int, day: dt.date) -> Dataset:
    ds = _new(RT_RECORD_STORAGE, "RTRECORD")
    ds.PatientID, ds.PatientName, ds.StudyInstanceUID = p.patient_id, f"PHANTOM^{p.patient_id}", study
    ds.TreatmentDate = day.strftime("%Y%m%d")
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = RT_PLAN_STORAGE, plan_uid
    ds.ReferencedRTPlanSequence = [ref]
    beam = Dataset()
    beam.CurrentFractionNumber, beam.TreatmentTerminationStatus = fraction, "NORMAL"
    beam.SpecifiedPrimaryMeterset = beam.DeliveredPrimaryMeterset = 250.0
    beam.ReferencedBeamNumber = 1
    ds.TreatmentSessionBeamSequence = [beam]
    return ds

"""Shared test data for the rules area: the public RayStation course with an added trigger ROI."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from tests.conftest import DATA

COURSE = DATA / "pyplanscoring" / "raystation_brain_srs_imrt"
RS = COURSE / "RS1.2.752.243.1.1.20180405120828292.2900.76357.dcm"
RP = COURSE / "RP1.2.752.243.1.1.20180405114728127.3000.13138.dcm"
RD = COURSE / "RD1.2.752.243.1.1.20180405114728128.4000.85245.dcm"
RECORDS = DATA / "synthetic-rtrecord"
RECORD_FILES = sorted(RECORDS.glob("*.dcm"))  # fx1, fx1 with a dangling plan, fx2
PLAN_UID = "1.2.752.243.1.1.20180405114728127.3000.13138"


def with_empty_roi(dst: Path, name: str, src: Path = RS) -> Path:
    """A copy of the RTSTRUCT ``src`` with one more ROI, ``name``, that has no contours (the classic
    trigger)."""
    ds = pydicom.dcmread(src)
    number = max(int(item.ROINumber) for item in ds.StructureSetROISequence) + 1
    roi = Dataset()
    roi.ROINumber = number
    roi.ReferencedFrameOfReferenceUID = ds.StructureSetROISequence[0].ReferencedFrameOfReferenceUID
    roi.ROIName = name
    roi.ROIGenerationAlgorithm = "MANUAL"
    ds.StructureSetROISequence.append(roi)
    contour = Dataset()
    contour.ReferencedROINumber = number
    contour.ROIDisplayColor = [255, 0, 0]
    ds.ROIContourSequence.append(contour)
    observation = Dataset()
    observation.ObservationNumber = number
    observation.ReferencedROINumber = number
    observation.RTROIInterpretedType = "CONTROL"
    observation.ROIInterpreter = ""
    ds.RTROIObservationsSequence.append(observation)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst, enforce_file_format=True)
    return dst

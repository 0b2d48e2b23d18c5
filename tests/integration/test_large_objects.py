"""A ≥ 100 MB RT Dose is received without holding copies of it in memory, and stored byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset

from tests.integration.conftest import require_tools
from tests.integration.rtbank_env import RtbankEnv


def big_dose(path: Path, frames: int = 256, size: int = 320) -> int:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.2"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.780.1"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.PatientID, ds.Modality = "BIGDOSE", "RTDOSE"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.10.780.2", "1.2.826.0.1.3680043.10.780.3"
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.10.780.4"
    ds.Rows = ds.Columns = size
    ds.NumberOfFrames = frames
    ds.BitsAllocated = ds.BitsStored = 32
    ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 31, 0, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelSpacing = [2.0, 2.0]
    ds.ImagePositionPatient = [0, 0, 0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.GridFrameOffsetVector = [2.0 * i for i in range(frames)]
    ds.DoseGridScaling, ds.DoseUnits, ds.DoseType, ds.DoseSummationType = 1e-6, "GY", "PHYSICAL", "PLAN"
    ds.PixelData = np.arange(frames * size * size, dtype=np.uint32).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path.stat().st_size


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_100_mb_dose_streams_to_disk(open_rtbank_env: RtbankEnv, tmp_path: Path) -> None:
    require_tools("storescu")
    env = open_rtbank_env
    path = tmp_path / "big_dose.dcm"
    size = big_dose(path)
    assert size > 100 * 1024 * 1024
    receiver = env.start_receiver()
    before = peak_rss_mb(receiver.pid)
    result = env.storescu(path)
    assert result.returncode == 0, result.stderr
    growth = peak_rss_mb(receiver.pid) - before
    assert growth < 40, f"receiver peak memory grew by {growth:.0f} MB for a {size / 2**20:.0f} MB object"
    (stored,) = list((env.home / "spool" / "ready").glob("*.dcm"))
    # The file meta is the receiver's own; the dataset arrives byte for byte.
    sent, got = pydicom.dcmread(path), pydicom.dcmread(stored)
    assert got.SOPInstanceUID == sent.SOPInstanceUID
    assert hashlib.sha256(got.PixelData).digest() == hashlib.sha256(sent.PixelData).digest()

"""Small image series with known geometry for the viewer's geometry tests (no Django).

A box of known patient coordinates is burnt into CT slices written for any patient position, so a test can
check that the image, its contour and its dose all land on the same pixels.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

# Image Orientation (Patient) of an axial slice for each patient position (PS3.3 C.7.6.2.1.1).
ORIENTATIONS = {
    "HFS": (1, 0, 0, 0, 1, 0),
    "FFS": (-1, 0, 0, 0, 1, 0),
    "HFP": (-1, 0, 0, 0, -1, 0),
    "FFP": (1, 0, 0, 0, -1, 0),
}
BOX_MM = ((20.0, 40.0), (-30.0, -10.0), (-7.5, 7.5))  # x, y, z ranges of the bright box
BOX_HU = 1000
BACKGROUND_HU = 0


def in_box(points: np.ndarray, box: tuple[tuple[float, float], ...] = BOX_MM) -> np.ndarray:
    inside = np.ones(points.shape[:-1], dtype=bool)
    for axis, (lo, hi) in enumerate(box):
        inside &= (points[..., axis] >= lo) & (points[..., axis] <= hi)
    return inside


def ct_series(
    position: str = "HFS",
    *,
    size: int = 64,
    pixel_mm: float = 2.0,
    slice_mm: float = 3.0,
    z_range: tuple[float, float] = (-30.0, 30.0),
    box: tuple[tuple[float, float], ...] = BOX_MM,
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    frame_uid: str = "1.2.826.0.1.3680043.8.498.1",
) -> list[Dataset]:
    """Axial CT slices (one dataset each, instance numbers in scanning order) with a bright box.

    ``shift_mm`` moves the anatomy (the box) within the frame: for registration tests.
    """
    iop = np.array(ORIENTATIONS[position], dtype=float)
    row, col = iop[:3], iop[3:]
    half = (size - 1) / 2 * pixel_mm
    zs = np.arange(z_range[0], z_range[1] + 1e-6, slice_mm)
    if position.startswith("HF"):  # head first: the scanner starts superior and moves down
        zs = zs[::-1]
    series_uid = generate_uid()
    shifted = tuple((lo + s, hi + s) for (lo, hi), s in zip(box, shift_mm, strict=True))
    out = []
    for n, z in enumerate(zs):
        # first pixel: go back half a field along both in-plane directions from the centre
        ipp = np.array([0.0, 0.0, z]) - half * row - half * col
        i, j = np.meshgrid(np.arange(size), np.arange(size))  # i: column, j: row
        pts = ipp + i[..., None] * pixel_mm * row + j[..., None] * pixel_mm * col
        hu = np.where(in_box(pts, shifted), BOX_HU, BACKGROUND_HU)
        out.append(_ct_dataset(hu, ipp, iop, pixel_mm, slice_mm, n + 1, series_uid, frame_uid, position))
    return out


def _ct_dataset(
    hu: np.ndarray,
    ipp: np.ndarray,
    iop: np.ndarray,
    pixel_mm: float,
    slice_mm: float,
    number: int,
    series_uid: str,
    frame_uid: str,
    position: str,
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "CT"
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.PatientPosition = position
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [f"{v:.4f}" for v in ipp]
    ds.ImageOrientationPatient = [f"{v:g}" for v in iop]
    ds.PixelSpacing = [f"{pixel_mm:g}", f"{pixel_mm:g}"]
    ds.SliceThickness = f"{slice_mm:g}"
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.PixelData = (hu + 1024).astype("<u2").tobytes()
    return ds

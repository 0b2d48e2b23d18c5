"""Axial image series of the phantom: planning and diagnostic CT, MR and PET.

All series are axial, head first supine, one slice per file, as scanners in RT departments write them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from rtbank.dicom import sop
from rtbank.dicom.synth.common import base_dataset, code, ds_list, ds_text, item, put, sequence
from rtbank.dicom.synth.context import Generated, PatientContext, Series, clock_time
from rtbank.dicom.synth.phantom import Anatomy, Pose
from rtbank.dicom.synth.shapes import FloatArray

AXIAL = ["1", "0", "0", "0", "1", "0"]


@dataclass(frozen=True)
class ImageGrid:
    """Pixel centres of an axial series in its frame of reference.

    Attributes
    ----------
    xs, ys
        Column and row centres, mm (increasing).
    zs
        Slice positions in instance order (superior first), mm.
    pixel_mm, thickness_mm
        Pixel spacing and slice spacing (= thickness), mm.
    """

    xs: FloatArray
    ys: FloatArray
    zs: tuple[float, ...]
    pixel_mm: float
    thickness_mm: float

    @classmethod
    def axial(
        cls, fov_mm: float, columns: int, z_top_mm: float, slices: int, thickness_mm: float
    ) -> ImageGrid:
        pixel = round(fov_mm / columns, 3)
        first = round(-(columns - 1) / 2 * pixel, 4)
        axis = first + pixel * np.arange(columns, dtype=np.float64)
        zs = tuple(round(z_top_mm - k * thickness_mm, 2) for k in range(slices))
        return cls(axis, axis.copy(), zs, pixel, thickness_mm)

    @classmethod
    def around(
        cls,
        fov_mm: float,
        columns: int,
        centre_z_mm: float,
        length_mm: float,
        thickness_mm: float,
        max_slices: int,
    ) -> ImageGrid:
        """An axial grid centred (to 0.5 mm) on ``centre_z_mm``, covering ``length_mm`` with at most
        ``max_slices`` slices."""
        count = max(2, min(max_slices, int(length_mm / thickness_mm) + 1))
        top = round((centre_z_mm + 0.5 * (count - 1) * thickness_mm) * 2) / 2
        return cls.axial(fov_mm, columns, top, count, thickness_mm)

    @property
    def size(self) -> int:
        return len(self.xs)


@dataclass
class ImageSeries:
    """A generated image series; ``slice_uids`` includes slices that were then lost (``missing``)."""

    series: Series
    grid: ImageGrid
    pose: Pose
    sop_class_uid: str
    slice_uids: list[str] = field(default_factory=list)
    objects: list[Generated] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def slice_uid_at(self, z: float) -> str:
        return self.slice_uids[self.grid.zs.index(z)]


def ct_series(
    ctx: PatientContext,
    series: Series,
    anatomy: Anatomy,
    pose: Pose,
    grid: ImageGrid,
    day: dt.date,
    drop_slice: int | None = None,
) -> ImageSeries:
    """A CT series of ``anatomy`` placed by ``pose``; ``drop_slice`` (an index) is generated then lost."""
    out = ImageSeries(series, grid, pose, sop.CT_IMAGE)
    noise = ctx.np_rng("noise", series.uid)
    acquired = clock_time(ctx.rng, 8, 15)
    for k, z in enumerate(grid.zs):
        uid = ctx.uid("image", series.uid, k)
        out.slice_uids.append(uid)
        hu = anatomy.sample(pose, grid.xs, grid.ys, z, "ct") + noise.normal(0.0, 6.0, (grid.size, grid.size))
        ds = _image_dataset(ctx, series, sop.CT_IMAGE, uid, grid, z, acquired)
        if k == drop_slice:
            out.missing.append(uid)
            continue
        put(
            ds,
            ImageType=["ORIGINAL", "PRIMARY", "AXIAL"],
            KVP="120",
            AcquisitionNumber=1,
            ConvolutionKernel="B30f" if "SIEMENS" in series.equipment.manufacturer else "STANDARD",
            PatientPosition="HFS",
            RescaleIntercept="-1024",
            RescaleSlope="1",
            RescaleType="HU",
            WindowCenter="40",
            WindowWidth="400",
        )
        _set_pixels(ds, np.clip(np.rint(hu + 1024.0), 0, 4095).astype(np.uint16), bits_stored=12)
        out.objects.append(Generated(ds, series))
    return out


def mr_series(
    ctx: PatientContext,
    series: Series,
    anatomy: Anatomy,
    pose: Pose,
    grid: ImageGrid,
    field_t: float,
    weighting: str = "T1",
) -> ImageSeries:
    """An axial turbo spin echo MR series, ``T1`` or ``T2`` weighted, at ``field_t`` tesla."""
    out = ImageSeries(series, grid, pose, sop.MR_IMAGE)
    noise = ctx.np_rng("noise", series.uid)
    acquired = clock_time(ctx.rng, 8, 15)
    for k, z in enumerate(grid.zs):
        uid = ctx.uid("image", series.uid, k)
        out.slice_uids.append(uid)
        signal = anatomy.sample(pose, grid.xs, grid.ys, z, "mr").astype(np.float64)
        if weighting == "T2":  # fluid and fat bright, muscle dark: a rough inversion of the T1 contrast
            signal = np.where(signal > 0, np.clip(1000.0 - signal, 60.0, None), 0.0)
        signal = signal * (1.0 + noise.normal(0.0, 0.03, signal.shape)) + np.abs(
            noise.normal(0, 4, signal.shape)
        )
        ds = _image_dataset(ctx, series, sop.MR_IMAGE, uid, grid, z, acquired)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = ["SK", "SP"]
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.SequenceName = "tse2d1_3"
        ds.AngioFlag = "N"
        ds.RepetitionTime = "600" if weighting == "T1" else "4500"
        ds.EchoTime = "12" if weighting == "T1" else "96"
        ds.EchoTrainLength = 3 if weighting == "T1" else 15
        ds.MagneticFieldStrength = ds_text(field_t, 1)
        ds.ImagingFrequency = ds_text(42.577 * field_t, 4)
        ds.ImagedNucleus = "1H"
        ds.PatientPosition = "HFS"
        ds.AcquisitionNumber = 1
        _set_pixels(ds, np.clip(np.rint(signal), 0, 4095).astype(np.uint16), bits_stored=12)
        ds.WindowCenter = "400"
        ds.WindowWidth = "800"
        out.objects.append(Generated(ds, series))
    return out


def pet_series(
    ctx: PatientContext, series: Series, anatomy: Anatomy, pose: Pose, grid: ImageGrid, injected: str
) -> ImageSeries:
    """An attenuation-corrected FDG PET series in Bq/ml; ``injected`` is the injection time (TM)."""
    out = ImageSeries(series, grid, pose, sop.PET_IMAGE)
    noise = ctx.np_rng("noise", series.uid)
    weight_kg = 60 + ctx.index % 40
    dose_bq = 3.5e6 * weight_kg
    bq_per_suv = dose_bq / (weight_kg * 1000.0)
    suv = np.stack([anatomy.sample(pose, grid.xs, grid.ys, z, "pet") for z in grid.zs])
    activity = np.clip(suv * (1.0 + noise.normal(0.0, 0.08, suv.shape)), 0, None) * bq_per_suv
    slope = float(activity.max()) / 32767.0 or 1.0
    slope_text = ds_text(slope, 6)
    stored = np.clip(np.rint(activity / float(slope_text)), 0, 32767).astype(np.uint16)
    for k, z in enumerate(grid.zs):
        uid = ctx.uid("image", series.uid, k)
        out.slice_uids.append(uid)
        ds = _image_dataset(ctx, series, sop.PET_IMAGE, uid, grid, z, clock_time(ctx.rng, 9, 12))
        _pet_attributes(ds, len(grid.zs), k, injected, dose_bq, weight_kg)
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = slope_text
        _set_pixels(ds, stored[k], bits_stored=16)
        out.objects.append(Generated(ds, series))
    return out


def _pet_attributes(
    ds: Dataset, slices: int, index: int, injected: str, dose_bq: float, weight_kg: int
) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PatientWeight = str(weight_kg)
    ds.Units = "BQML"
    ds.CountsSource = "EMISSION"
    ds.SeriesType = ["STATIC", "IMAGE"]
    ds.CorrectedImage = ["DECY", "ATTN", "SCAT", "RAN", "NORM"]
    ds.RandomsCorrectionMethod = "DLYD"
    ds.AttenuationCorrectionMethod = "CT-based"
    ds.ReconstructionMethod = "OSEM 3i21s"
    ds.DecayCorrection = "START"
    ds.DecayFactor = "1.1"
    ds.NumberOfSlices = slices
    ds.ImageIndex = index + 1
    ds.FrameReferenceTime = "0"
    ds.ActualFrameDuration = 120000
    ds.AcquisitionNumber = 1
    ds.CollimatorType = "NONE"
    ds.PatientOrientationCodeSequence = sequence([code("102538003", "SCT", "recumbent")])
    ds.PatientOrientationCodeSequence[0].PatientOrientationModifierCodeSequence = sequence(
        [code("40199007", "SCT", "supine")]
    )
    ds.PatientGantryRelationshipCodeSequence = sequence([code("102540008", "SCT", "headfirst")])
    ds.RadiopharmaceuticalInformationSequence = sequence(
        [
            item(
                Radiopharmaceutical="Fluorodeoxyglucose",
                RadiopharmaceuticalStartTime=injected,
                RadionuclideTotalDose=ds_text(dose_bq, 0),
                RadionuclideHalfLife="6586.2",
                RadionuclidePositronFraction="0.9673",
                RadionuclideCodeSequence=sequence([code("77004003", "SCT", "^18^Fluorine")]),
                RadiopharmaceuticalCodeSequence=sequence(
                    [code("35321007", "SCT", "Fluorodeoxyglucose F^18^")]
                ),
            )
        ]
    )


def _image_dataset(
    ctx: PatientContext, series: Series, sop_class: str, uid: str, grid: ImageGrid, z: float, acquired: str
) -> Dataset:
    ds = base_dataset(ctx, series, sop_class, uid, series.date, series.time)
    return put(
        ds,
        ContentDate=series.date,
        ContentTime=series.time,
        AcquisitionDate=series.date,
        AcquisitionTime=acquired,
        PatientOrientation=["L", "P"],
        SliceThickness=ds_text(grid.thickness_mm, 3),
        ImagePositionPatient=[ds_text(grid.xs[0], 4), ds_text(grid.ys[0], 4), ds_text(z, 2)],
        ImageOrientationPatient=AXIAL,
        SliceLocation=ds_text(z, 2),
        PixelSpacing=ds_list((grid.pixel_mm, grid.pixel_mm), 4),
    )


def _set_pixels(ds: Dataset, pixels: NDArray[np.uint16], bits_stored: int) -> None:
    rows, columns = pixels.shape
    put(
        ds,
        SamplesPerPixel=1,
        PhotometricInterpretation="MONOCHROME2",
        Rows=rows,
        Columns=columns,
        BitsAllocated=16,
        BitsStored=bits_stored,
        HighBit=bits_stored - 1,
        PixelRepresentation=0,
    )
    ds.add_new(0x7FE00010, "OW", pixels.astype("<u2").tobytes())

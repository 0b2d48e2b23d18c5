"""RT Dose: a 3-D plan dose grid shaped by the targets, stored 16- or 32-bit as the TPS habitually does.

The dose model is a smooth stand-in for a calculation: about the prescription inside each PTV (≥ 95 % at its
surface), an error-function penumbra outside it, a low-dose bath decaying over a few centimetres, and
nothing outside the body. Simultaneous boosts take the highest level at each point.
"""

from __future__ import annotations

import math
from copy import deepcopy
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from scipy.special import erfc

from rtbank.dicom import sop
from rtbank.dicom.synth.common import base_dataset, ds_list, ds_text, put, reference, sequence
from rtbank.dicom.synth.context import Generated, PatientContext, Series
from rtbank.dicom.synth.images import AXIAL
from rtbank.dicom.synth.shapes import FloatArray, Shape

PENUMBRA_SIGMA_MM = 4.0
# Shift of the penumbra so that 0.5·erfc(-shift/(σ√2)) · 1.02 = 0.95 at the PTV surface.
PENUMBRA_SHIFT_MM = 1.05 * PENUMBRA_SIGMA_MM * math.sqrt(2.0)


@dataclass(frozen=True)
class DoseGrid:
    """Voxel centres of a dose grid in the planning frame, mm; ``zs`` increase from the first frame."""

    xs: FloatArray
    ys: FloatArray
    zs: FloatArray
    spacing_mm: float

    @classmethod
    def covering(
        cls,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        z_range: tuple[float, float],
        spacing_mm: float,
    ) -> DoseGrid:
        """The grid of ``spacing_mm`` voxels covering the three ranges (mm), starting on 0.01 mm."""
        axes: list[FloatArray] = []
        for low, high in (x_range, y_range, z_range):
            count = max(2, int(math.ceil((high - low) / spacing_mm)) + 1)
            axes.append(round(low, 2) + spacing_mm * np.arange(count, dtype=np.float64))
        return cls(axes[0], axes[1], axes[2], spacing_mm)


def plan_dose_gy(
    ptvs: list[tuple[Shape, float]], body: Shape, grid: DoseGrid, hot_spot: float = 1.02
) -> NDArray[np.float64]:
    """Dose (Gy) on ``grid`` for PTVs ``(shape, prescribed Gy)`` inside ``body`` (all in the grid's frame)."""
    z, y, x = np.meshgrid(grid.zs, grid.ys, grid.xs, indexing="ij")
    dose = np.zeros(x.shape)
    for shape, gy in ptvs:
        d = shape.distance(x, y, z)
        core = 0.5 * erfc((d - PENUMBRA_SHIFT_MM) / (PENUMBRA_SIGMA_MM * math.sqrt(2.0)))
        bath = 0.3 * np.exp(-np.maximum(d, 0.0) / 35.0)
        dose = np.maximum(dose, gy * (hot_spot * core + bath * (1.0 - core)))
    return dose * body.contains(x, y, z)


def rt_dose(
    ctx: PatientContext,
    series: Series,
    grid: DoseGrid,
    dose_gy: NDArray[np.float64],
    bits: int,
    plan_uid: str | None,
    structure_set_uid: str | None,
    day: str,
    time: str,
) -> Generated:
    """An RTDOSE (summation PLAN) of ``dose_gy`` (frames along z); it references the plan, or — with
    ``plan_uid=None`` — only the structure set, as TomoTherapy exports do."""
    uid = ctx.uid("rtdose", series.uid, series.instances + 1)
    ds = base_dataset(ctx, series, sop.RT_DOSE, uid, day, time)
    ds.OperatorsName = ""
    ds.ContentDate = day
    ds.ContentTime = time
    ds.ImagePositionPatient = ds_list((grid.xs[0], grid.ys[0], grid.zs[0]), 2)
    ds.ImageOrientationPatient = AXIAL
    ds.PixelSpacing = ds_list((grid.spacing_mm, grid.spacing_mm), 3)
    ds.SliceThickness = ds_text(grid.spacing_mm, 3)
    ds.NumberOfFrames = len(grid.zs)
    ds.FrameIncrementPointer = 0x3004000C
    put(ds, GridFrameOffsetVector=ds_list(grid.zs - grid.zs[0], 2))
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = "PLAN"
    ds.TissueHeterogeneityCorrection = ["IMAGE", "ROI_OVERRIDE"]
    if plan_uid:
        ds.ReferencedRTPlanSequence = sequence([reference(sop.RT_PLAN, plan_uid)])
    if structure_set_uid:
        ds.ReferencedStructureSetSequence = sequence([reference(sop.RT_STRUCTURE_SET, structure_set_uid)])
    _set_dose_pixels(ds, dose_gy, bits)
    return Generated(ds, series)


def _set_dose_pixels(ds: Dataset, dose_gy: NDArray[np.float64], bits: int) -> None:
    top = (1 << bits) - 1
    scaling = float(f"{max(float(dose_gy.max()), 1e-3) / top:.9g}")
    ds.DoseGridScaling = f"{scaling:.9g}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = dose_gy.shape[1], dose_gy.shape[2]
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    stored = np.clip(np.rint(dose_gy / scaling), 0, top).astype("<u4" if bits == 32 else "<u2")
    ds.add_new(0x7FE00010, "OW", stored.tobytes())


def as_16_bit(ds: Dataset) -> Dataset:
    """A copy of a 32-bit RTDOSE rescaled to 16 bits (dciodvfy crashes on 32-bit dose pixel data)."""
    copy = deepcopy(ds)
    if int(ds.BitsAllocated) != 32:
        return copy
    stored = np.frombuffer(ds.PixelData, dtype="<u4").astype(np.float64)
    dose = stored.reshape(int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns)) * float(ds.DoseGridScaling)
    _set_dose_pixels(copy, dose, 16)
    return copy

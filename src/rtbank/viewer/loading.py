"""Reading what the viewer draws from the blob store, through the in-process caches.

No SQL here: callers pass the rows of a :class:`~rtbank.viewer.dataset.ViewerDataset`, so loading can also
run in a background thread (volume warm-up, DVHs) without a database connection.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pydicom
from django.conf import settings
from pydicom.dataset import Dataset

from rtbank.catalog.blobstore import blob_store
from rtbank.dicom.contours import StructureSet as Contours
from rtbank.dicom.dosegrid import DoseGrid, combine_plan_doses
from rtbank.dicom.imaging import (
    FrameRegistration,
    ImageVolume,
    RoiSections,
    modality_pixels,
    structure_set_slabs,
)
from rtbank.viewer.cache import LruCache
from rtbank.viewer.dataset import ImageSeries, ObjectFile

MB = 1024 * 1024
logger = logging.getLogger("rtbank.viewer")


def _limit(name: str, default_mb: int) -> int:
    value = getattr(settings, name, None) or os.environ.get(name) or default_mb
    return int(value) * MB


@dataclass(frozen=True, eq=False)
class LoadedStructures:
    contours: Contours
    sections: dict[int, RoiSections]  # per ROI number, for sagittal and coronal cuts
    nbytes: int


@dataclass(frozen=True, eq=False)
class LoadedDose:
    grid: DoseGrid | None
    error: str
    history: tuple[str, ...]

    @property
    def nbytes(self) -> int:
        return int(self.grid.dose_gy.nbytes) if self.grid is not None else 1


VOLUMES: LruCache[ImageVolume] = LruCache(
    "volumes", _limit("RTBANK_VIEWER_CACHE_MB", 1024), lambda v: v.nbytes
)
STRUCTURES: LruCache[LoadedStructures] = LruCache("structures", 256 * MB, lambda s: s.nbytes)
DOSES: LruCache[LoadedDose] = LruCache("doses", 256 * MB, lambda d: d.nbytes)
REGISTRATIONS: LruCache[FrameRegistration | None] = LruCache("registrations", 4 * MB, lambda r: 1024)
_READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rtbank-viewer-read")


def read(blob_key: str, *, pixels: bool = True) -> Dataset:
    path = blob_store().local_path(blob_key)
    if path is not None:
        return pydicom.dcmread(path, force=True, stop_before_pixels=not pixels)
    with blob_store().open(blob_key) as fh:
        return pydicom.dcmread(fh, force=True, stop_before_pixels=not pixels)


def volume(series: ImageSeries) -> ImageVolume:
    """The assembled volume of a series (cached per series and set of files)."""
    return VOLUMES.get(("volume", series.uid, series.signature), lambda: _read_volume(series))


def cached_volume(series: ImageSeries) -> ImageVolume | None:
    return VOLUMES.peek(("volume", series.uid, series.signature))


def axial_slice(series: ImageSeries, k: int) -> np.ndarray:
    """One axial slice without assembling the volume: a single file read (first view of a series)."""
    layout = series.layout
    ds = read(series.files[layout.order[layout.slice_position(k)]].blob_key)
    return layout.arrange_slice(modality_pixels(ds))


def warm(
    series: ImageSeries | None,
    ss: ObjectFile | None,
    doses: Sequence[ObjectFile],
    fractions: int | None,
    thickness_mm: float = 2.0,
) -> None:
    """Start reading what the first views need, in the background and in the order they need it: the
    structure set (contours of the first slice), the dose, then the volume (reconstructions)."""
    if ss is not None and STRUCTURES.peek(("ss", ss.blob_key)) is None:
        _WARMER.submit(_quietly, structures, ss, thickness_mm)
    if doses:
        _WARMER.submit(_quietly, dose, doses, fractions)
    if series is not None and cached_volume(series) is None:
        _WARMER.submit(_quietly, volume, series)


def _quietly(load: Any, *args: Any) -> None:
    try:
        load(*args)
    except Exception:  # noqa: BLE001 - the request that needs it will raise and report the problem
        logger.warning("viewer warm-up of %s failed", getattr(load, "__name__", load), exc_info=True)


_WARMER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtbank-viewer-warm")


def structures(ss: ObjectFile, default_thickness_mm: float = 2.0) -> LoadedStructures:
    def load() -> LoadedStructures:
        contours = Contours.from_dataset(read(ss.blob_key))
        slabs = structure_set_slabs(contours, default_thickness_mm)
        sections = {number: RoiSections.from_slabs(s) for number, s in slabs.items()}
        points = sum(len(p) for r in contours.rois for plane in r.planes for p in plane.polygons)
        size = 24 * points + sum(s.nbytes for s in sections.values()) + 4096
        return LoadedStructures(contours, sections, size)

    return STRUCTURES.get(("ss", ss.blob_key), load)


def dose(doses: Sequence[ObjectFile], fractions: int | None) -> LoadedDose:
    """The whole-treatment dose of the plan (``combine_plan_doses``); an error message when unusable."""
    key = ("dose", tuple(sorted(d.blob_key for d in doses)), fractions)

    def load() -> LoadedDose:
        grids, problems = [], []
        for d in doses:
            try:
                grids.append(DoseGrid.from_dataset(read(d.blob_key), allow_relative=True))
            except (ValueError, AttributeError) as exc:
                problems.append(str(exc))
        if not grids:
            return LoadedDose(None, "; ".join(problems) or "no RT Dose", ())
        try:
            grid = combine_plan_doses(grids, fractions)
        except ValueError as exc:
            grid = grids[0]
            problems.append(f"{exc}: showing RTDOSE {grid.sop_instance_uid} alone")
        return LoadedDose(grid, "; ".join(problems), grid.history)

    return DOSES.get(key, load)


def registration(reg: ObjectFile) -> FrameRegistration | None:
    def load() -> FrameRegistration | None:
        try:
            return FrameRegistration.from_dataset(read(reg.blob_key, pixels=False))
        except ValueError:
            return None

    return REGISTRATIONS.get(("reg", reg.blob_key), load)


def clear_caches() -> None:
    for cache in (VOLUMES, STRUCTURES, DOSES, REGISTRATIONS):
        cache.clear()


def cache_stats() -> dict[str, Any]:
    return {c.name: vars(c.stats).copy() for c in (VOLUMES, STRUCTURES, DOSES, REGISTRATIONS)}


def _read_volume(series: ImageSeries) -> ImageVolume:
    layout = series.layout
    files = [series.files[n] for n in layout.order]
    datasets = list(_READERS.map(lambda f: read(f.blob_key), files))
    planes = list(_READERS.map(modality_pixels, datasets))
    return ImageVolume.from_pixels([partial(_same, p) for p in planes], layout, datasets[0])


def _same(value: np.ndarray) -> np.ndarray:
    return value

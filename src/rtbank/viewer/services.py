"""The viewer's verbs: the manifest of a dataset, image planes, overlay geometry, dose planes and values.

All coordinates are patient mm in the frame of reference of the primary (planning) series. Planes of
other series are resampled onto the primary's planes (through a Spatial Registration when their frame
differs), so side-by-side and blended views show the same anatomy pixel for pixel.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtbank.dicom.imaging import (
    EncodedPlane,
    Plane,
    View,
    axial_contours,
    contour_tolerance_mm,
    dose_footprint,
    dose_on_plane,
    encode_plane,
    extract,
    frame_transform,
    isodose_lines,
    plane,
    plane_count,
    sample_onto,
    section_contours,
)
from rtbank.dicom.imaging.volume import VolumeGeometry
from rtbank.viewer import loading
from rtbank.viewer.cache import LruCache
from rtbank.viewer.dataset import ImageSeries, ViewerDataset

MAX_LEVELS = 16
# Window presets (width, level) in HU; other modalities get a window from the data in the browser.
CT_WINDOWS = {"soft tissue": (400, 40), "lung": (1600, -600), "bone": (2000, 400)}
DEFAULT_ISODOSE_PERCENT = (107, 100, 95, 80, 50, 30)

PLANES: LruCache[bytes] = LruCache("planes", 96 * loading.MB, len)
GEOMETRY: LruCache[bytes] = LruCache("geometry", 32 * loading.MB, len)


class ViewerError(ValueError):
    """A request the dataset cannot answer (no such series or plane, unusable geometry): HTTP 400/404."""


@dataclass(frozen=True)
class PlaneImage:
    encoded: EncodedPlane
    footprint: tuple[int, int] = (0, 0)  # (first row, first column) of the encoded part within the plane


# --------------------------------------------------------------------- geometry of the primary series
def primary(dataset: ViewerDataset) -> ImageSeries:
    if dataset.primary is None or not dataset.primary.files:
        raise ViewerError("no images to show: the planning images of this dataset are not stored (yet)")
    return dataset.primary


def primary_geometry(dataset: ViewerDataset) -> VolumeGeometry:
    try:
        layout = primary(dataset).layout
    except ValueError as exc:  # no slice with position and orientation
        raise ViewerError(str(exc)) from exc
    if not layout.canonical:
        raise ViewerError(
            "the planning images are oblique (rows and columns do not follow patient axes); "
            "the viewer shows axis-aligned series only"
        )
    return layout.geometry


def display_plane(dataset: ViewerDataset, view: str, index: int) -> Plane:
    try:
        return plane(primary_geometry(dataset), View(view), index)
    except ValueError as exc:
        raise ViewerError(str(exc)) from exc


def warm(dataset: ViewerDataset) -> None:
    """Start reading the dataset's structure set, dose and planning volume in the background."""
    plan = dataset.plan
    thickness = dataset.primary.layout.geometry.k.typical_step_mm if dataset.primary else 2.0
    loading.warm(
        dataset.primary,
        dataset.structure_set,
        dataset.doses,
        plan.fractions_planned if plan else None,
        thickness,
    )


# --------------------------------------------------------------------- manifest
def manifest(dataset: ViewerDataset, rois: list[dict[str, Any]], subject_label: str) -> dict[str, Any]:
    """Everything the page needs before the first slice: geometry, series, ROIs, dose, presets.

    Without usable images (the planning CT has not arrived, or is oblique) the manifest still lists the
    ROIs, the dose and the DVHs, with ``primary`` None and the reason in ``problem``.
    """
    plan = dataset.plan
    out: dict[str, Any] = {
        "root": {
            "uid": dataset.root_uid,
            "kind": dataset.root_kind,
            "subject": subject_label,
            "label": plan.label if plan else "",
            "name": plan.name if plan else "",
            "fractions": plan.fractions_planned if plan else None,
        },
        "primary": None,
        "views": {},
        "others": [],
        "rois": rois,
        "dose": {"available": False, "error": "", "prescription_gy": plan.prescription_gy if plan else None},
        "windows": {},
        "isodose_percent": list(DEFAULT_ISODOSE_PERCENT),
        "problem": "",
    }
    try:
        series = primary(dataset)
        geometry = primary_geometry(dataset)
    except ViewerError as exc:
        out["problem"] = str(exc)
        return out
    out["primary"] = _series_json(series) | {
        "x": _axis(geometry.i.positions_mm),
        "y": _axis(geometry.j.positions_mm),
        "z_mm": [round(float(z), 3) for z in geometry.k.positions_mm],
        "notes": list(series.layout.notes),
    }
    out["views"] = {
        v.value: {"count": plane_count(geometry, v), "plane": plane(geometry, v, 0).describe()} for v in View
    }
    out["others"] = [_other_json(dataset, s) for s in dataset.others]
    out["dose"] = dose_summary(dataset)
    if series.modality == "CT":
        out["windows"] = {name: {"width": w, "level": c} for name, (w, c) in CT_WINDOWS.items()}
    return out


def dose_summary(dataset: ViewerDataset) -> dict[str, Any]:
    plan = dataset.plan
    prescription = plan.prescription_gy if plan and plan.prescription_gy else None
    if not dataset.doses:
        return {"available": False, "error": "no RT Dose in this dataset", "prescription_gy": prescription}
    loaded = loading.dose(dataset.doses, plan.fractions_planned if plan else None)
    if loaded.grid is None:
        return {"available": False, "error": loaded.error, "prescription_gy": prescription}
    grid = loaded.grid
    frame_ok = (
        not grid.frame_of_reference_uid
        or grid.frame_of_reference_uid == primary(dataset).frame_of_reference_uid
    )
    return {
        "available": frame_ok,
        "max_gy": round(grid.max_gy, 4),
        "units": grid.units,
        "prescription_gy": prescription,
        "history": list(loaded.history),
        "error": loaded.error if frame_ok else "the dose is in another frame of reference than the images",
    }


def _series_json(series: ImageSeries) -> dict[str, Any]:
    return {
        "uid": series.uid,
        "modality": series.modality,
        "description": series.description,
        "frame_uid": series.frame_of_reference_uid,
        "role": series.role,
        "slices": len(series.files),
    }


def _other_json(dataset: ViewerDataset, series: ImageSeries) -> dict[str, Any]:
    found = _transform(dataset, series)
    return _series_json(series) | {
        "same_frame": series.frame_of_reference_uid == primary(dataset).frame_of_reference_uid,
        "registered": found is not None,
        "registration": found[1] if found else "",
    }


def _axis(positions: np.ndarray) -> dict[str, Any]:
    step = float(positions[1] - positions[0]) if len(positions) > 1 else 1.0
    return {"start_mm": round(float(positions[0]), 4), "step_mm": round(step, 6), "count": len(positions)}


# --------------------------------------------------------------------- image planes
def image_plane(dataset: ViewerDataset, series_uid: str, view: str, index: int) -> bytes:
    """Encoded values of ``series_uid`` on display plane ``(view, index)``, as a compact response body."""
    target = display_plane(dataset, view, index)
    series = dataset.series(series_uid)
    if series is None:
        raise ViewerError("no such series in this dataset")
    found = None if series is dataset.primary else _transform(dataset, series)
    if series is not dataset.primary and found is None:
        raise ViewerError("this series has no registration to the planning images")
    key = (
        "plane",
        series.uid,
        _digest(series.signature),
        target.view.value,
        index,
        _digest(found[0].round(6).tolist()) if found else "",
    )
    return PLANES.get(key, lambda: _pack(encode_plane(_values(dataset, series, target, found))))


def _values(dataset: ViewerDataset, series: ImageSeries, target: Plane, found: Any) -> np.ndarray:
    if series is dataset.primary:
        cached = loading.cached_volume(series)
        if cached is None and target.view == View.AXIAL:
            warm(dataset)  # reconstructions will need the volume; this slice needs one file
            return loading.axial_slice(series, target.index)
        return extract(cached if cached is not None else loading.volume(series), target)
    matrix = np.linalg.inv(found[0])  # found: other → primary; sampling needs primary → other
    return sample_onto(loading.volume(series), target, matrix)


def _transform(dataset: ViewerDataset, series: ImageSeries) -> tuple[np.ndarray, str] | None:
    """(other → primary matrix, registration UID) for a series; identity within the same frame."""
    regs = [r for r in (loading.registration(x) for x in dataset.registrations) if r is not None]
    return frame_transform(regs, series.frame_of_reference_uid, primary(dataset).frame_of_reference_uid)


def _pack(encoded: EncodedPlane, footprint: tuple[int, int] = (0, 0)) -> bytes:
    """Header line (JSON) + the gzip-compressed uint16 data: compressed once, when cached; the view splits
    it into a header and a body."""
    head = json.dumps(
        {
            "rows": encoded.rows,
            "columns": encoded.columns,
            "scale": encoded.scale,
            "offset": encoded.offset,
            "row0": footprint[0],
            "column0": footprint[1],
        },
        separators=(",", ":"),
    )
    return head.encode() + b"\n" + compress(encoded.data)


def unpack(blob: bytes) -> tuple[str, bytes]:
    """(header JSON, gzip-compressed body) of a packed plane."""
    head, _, data = blob.partition(b"\n")
    return head.decode(), data


def compress(data: bytes) -> bytes:
    # Level 1: planes shrink 2–10× in a few ms; higher levels cost more time than they save bytes.
    return gzip.compress(data, compresslevel=1, mtime=0)


# --------------------------------------------------------------------- overlays
def parse_levels(text: str) -> list[float]:
    """Isodose levels in Gy from ``"60,57.5,30"`` (at most 16 positive numbers)."""
    levels = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError as exc:
            raise ViewerError(f"isodose level {part[:20]!r} is not a number") from exc
        if not math.isfinite(value) or value <= 0:
            raise ViewerError("isodose levels must be positive doses in Gy")
        levels.append(round(value, 4))
    if len(levels) > MAX_LEVELS:
        raise ViewerError(f"at most {MAX_LEVELS} isodose levels")
    return sorted(set(levels), reverse=True)


def overlay_geometry(dataset: ViewerDataset, view: str, index: int, levels: Sequence[float]) -> bytes:
    """gzip-compressed JSON: the plane, every ROI's contour polylines and the isodose polylines, in (u, v)
    patient mm."""
    target = display_plane(dataset, view, index)
    ss, doses = dataset.structure_set, dataset.doses
    key = (
        "geometry",
        _digest(primary(dataset).signature),
        ss.blob_key if ss else "",
        tuple(sorted(d.blob_key for d in doses)),
        target.view.value,
        index,
        tuple(levels),
    )
    return GEOMETRY.get(
        key, lambda: compress(json.dumps(_geometry(dataset, target, levels), separators=(",", ":")).encode())
    )


def _geometry(dataset: ViewerDataset, target: Plane, levels: Sequence[float]) -> dict[str, Any]:
    out: dict[str, Any] = {"plane": target.describe(), "rois": [], "isodose": []}
    geometry = primary_geometry(dataset)
    if dataset.structure_set is not None:
        loaded = loading.structures(dataset.structure_set, geometry.k.typical_step_mm)
        z = geometry.k.positions_mm
        tolerance = contour_tolerance_mm(z, target.index) if target.view == View.AXIAL else 0.0
        out["tolerance_mm"] = round(tolerance, 4)
        for roi in loaded.contours.rois:
            if roi.is_empty:
                continue
            if target.view == View.AXIAL:
                lines = axial_contours(roi, target.fixed_mm, tolerance)
            else:
                lines = (
                    section_contours(loaded.sections[roi.number], target)
                    if roi.number in loaded.sections
                    else []
                )
            if lines:
                out["rois"].append({"number": roi.number, "lines": [_flat(line) for line in lines]})
    grid = _dose_grid(dataset)
    if grid is not None and levels:
        for level, lines in isodose_lines(grid, target, levels).items():
            out["isodose"].append({"level_gy": level, "lines": [_flat(line) for line in lines]})
    return out


def _dose_grid(dataset: ViewerDataset) -> Any:
    if not dataset.doses:
        return None
    loaded = loading.dose(dataset.doses, dataset.plan.fractions_planned if dataset.plan else None)
    grid = loaded.grid
    if grid is None:
        return None
    if grid.frame_of_reference_uid and grid.frame_of_reference_uid != primary(dataset).frame_of_reference_uid:
        return None
    return grid


def _flat(line: np.ndarray) -> list[float]:
    return np.round(np.asarray(line, dtype=float), 2).ravel().tolist()


# --------------------------------------------------------------------- dose
def dose_plane(dataset: ViewerDataset, view: str, index: int) -> bytes:
    """The dose (Gy) on the display plane's pixels inside the dose grid's footprint (for the colour wash
    and the value under the cursor)."""
    target = display_plane(dataset, view, index)
    grid = _dose_grid(dataset)
    if grid is None:
        raise ViewerError("this dataset has no dose in the images' frame of reference")
    key = (
        "dose",
        tuple(sorted(d.blob_key for d in dataset.doses)),
        _digest(primary(dataset).signature),
        target.view.value,
        index,
    )

    def load() -> bytes:
        footprint = dose_footprint(grid, target)
        if footprint is None:
            return _pack(encode_plane(np.full((0, 0), np.nan, dtype=np.float32)))
        rows, columns = footprint
        values = dose_on_plane(grid, target, rows, columns)
        return _pack(encode_plane(values), (rows.start, columns.start))

    return PLANES.get(key, load)


def dose_at(dataset: ViewerDataset, point_mm: Sequence[float]) -> float | None:
    """Trilinear dose (Gy) at one patient point; None outside the dose grid."""
    grid = _dose_grid(dataset)
    if grid is None:
        raise ViewerError("this dataset has no dose in the images' frame of reference")
    value = float(grid.dose_at(np.asarray(point_mm, dtype=float))[0])
    return None if math.isnan(value) else round(value, 4)


def _digest(value: Any) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:24]


def reset_caches() -> None:
    """Empty every viewer cache of this process (tests, benchmarks)."""
    from rtbank.viewer import access, dvh

    for cache in (PLANES, GEOMETRY, dvh.COMPUTED):
        cache.clear()
    loading.clear_caches()
    access._SEEN.clear()
    with access._DATASETS_LOCK:
        access._DATASETS.clear()

"""Shared helpers for the ``rtbank synth`` tests: one small archive per session, and ways to look into it.

Generating an archive is the slow part, so the tests share one (four patients, three institutions: the first
three patients carry every quirk between them) written once per test session.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from rtbank.dicom.synth import generate_archive

SEED = 11
PATIENTS = 4


@functools.cache
def shared_archive() -> tuple[Path, dict[str, Any]]:
    """``(folder, manifest)`` of the session's archive (seed 11, 4 patients, 3 institutions)."""
    folder = Path(tempfile.mkdtemp(prefix="rtbank-synth-test-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    manifest = generate_archive(folder / "archive", patients=PATIENTS, seed=SEED, workers=2)
    return folder / "archive", manifest


class Archive:
    """Read access to a written archive by UID."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest
        self.by_uid = {f["sop_instance_uid"]: f for f in manifest["files"]}
        self._cache: dict[str, Dataset] = {}

    def read(self, uid: str) -> Dataset:
        if uid not in self._cache:
            self._cache[uid] = pydicom.dcmread(self.root / self.by_uid[uid]["path"])
        return self._cache[uid]

    def series_files(self, series_uid: str) -> list[dict[str, str]]:
        return [f for f in self.manifest["files"] if f["series_instance_uid"] == series_uid]

    def series(self, series_uid: str) -> list[Dataset]:
        return [self.read(f["sop_instance_uid"]) for f in self.series_files(series_uid)]

    def patient_files(self, patient_id: str) -> list[dict[str, str]]:
        return [f for f in self.manifest["files"] if f["patient_id"] == patient_id]

    def of_modality(self, modality: str) -> list[dict[str, str]]:
        return [f for f in self.manifest["files"] if f["modality"] == modality]

    def plans(self, **match: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """``(patient, plan)`` manifest entries whose plan fields equal ``match``."""
        return [
            (patient, plan)
            for patient in self.manifest["patients"]
            for plan in patient["plans"]
            if all(plan.get(k) == v for k, v in match.items())
        ]

    def anomalies(self, kind: str) -> list[dict[str, Any]]:
        return [a for p in self.manifest["patients"] for a in p["anomalies"] if a["kind"] == kind]

    def decoys(self, kind: str) -> list[dict[str, Any]]:
        return [d for p in self.manifest["patients"] for d in p["decoys"] if d["kind"] == kind]


@functools.cache
def shared() -> Archive:
    root, manifest = shared_archive()
    return Archive(root, manifest)


def dose_at(ds: Dataset, points: np.ndarray) -> np.ndarray:
    """Dose (Gy) of an axial RTDOSE at patient points ``(n, 3)`` (mm), trilinear; 0 outside the grid."""
    grid = ds.pixel_array.astype(float) * float(ds.DoseGridScaling)
    x0, y0, z0 = (float(v) for v in ds.ImagePositionPatient)
    spacing = float(ds.PixelSpacing[1]), float(ds.PixelSpacing[0])
    zs = z0 + np.array([float(v) for v in ds.GridFrameOffsetVector])
    fx = (points[:, 0] - x0) / spacing[0]
    fy = (points[:, 1] - y0) / spacing[1]
    fz = np.interp(points[:, 2], zs, np.arange(len(zs)), left=-1, right=-1)
    out = np.zeros(len(points))
    inside = (fx >= 0) & (fy >= 0) & (fz >= 0) & (fx <= grid.shape[2] - 1) & (fy <= grid.shape[1] - 1)
    from scipy.ndimage import map_coordinates

    coords = np.vstack([fz[inside], fy[inside], fx[inside]])
    out[inside] = map_coordinates(grid, coords, order=1)
    return out


def roi_points(structure_set: Dataset, name: str) -> np.ndarray:
    """All contour points ``(n, 3)`` of the ROI called ``name`` (mm)."""
    number = next(r.ROINumber for r in structure_set.StructureSetROISequence if r.ROIName == name)
    contour_item = next(c for c in structure_set.ROIContourSequence if c.ReferencedROINumber == number)
    points = [
        np.array([float(v) for v in c.ContourData]).reshape(-1, 3) for c in contour_item.ContourSequence
    ]
    return np.vstack(points)


def manifest_json(root: Path) -> dict[str, Any]:
    return json.loads((root / "manifest.json").read_text(encoding="utf-8"))

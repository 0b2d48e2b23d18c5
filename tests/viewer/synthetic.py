"""One synthetic patient for the viewer's Django and browser tests, generated once per test process.

Seed 5 gives a head-and-neck plan whose bundle has a planning CT, a registered MR, a PET/CT pair registered
through the diagnostic CT, a structure set with PTVs and a plan dose; and a spine plan of the same patient
(the "other project" in access tests). Only the plans' bundles are imported (no treatment records), to keep
each test's import short.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom

from rtbank.dicom.synth import generate_archive

SEED = 5
HOSTILE_ROI = '<img src=x onerror="window.__xss=1">'


@dataclass(frozen=True)
class SynthPlan:
    label: str
    uid: str
    prescription_gy: float
    files: tuple[Path, ...]
    structure_set_file: Path
    dose_file: Path
    ct_series_uid: str


@functools.lru_cache(maxsize=1)
def archive() -> tuple[Path, dict[str, Any]]:
    out = Path(tempfile.mkdtemp(prefix="rtbank-viewer-synth-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    manifest = generate_archive(out / "archive", 1, seed=SEED, institutions=1, workers=1)
    return out / "archive", manifest


def plan(site: str) -> SynthPlan:
    """The first treated plan with a dose at ``site`` (``head_neck``, ``spine``)."""
    root, manifest = archive()
    patient = manifest["patients"][0]
    entry = next(p for p in patient["plans"] if p["site"] == site and p["doses"] and p["treated"])
    wanted = set(entry["harvest_expected"]["instances"])
    by_uid = {f["sop_instance_uid"]: f for f in manifest["files"]}
    files = tuple(
        root / by_uid[uid]["path"]
        for uid in sorted(wanted)
        if uid in by_uid and by_uid[uid]["modality"] != "RTRECORD"
    )
    return SynthPlan(
        label=entry["label"],
        uid=entry["sop_instance_uid"],
        prescription_gy=float(entry["prescription_gy"]),
        files=files,
        structure_set_file=root / by_uid[entry["structure_set"]]["path"],
        dose_file=root / by_uid[entry["doses"][0]]["path"],
        ct_series_uid=entry["planning_ct_series"],
    )


def with_hostile_roi_name(plan_: SynthPlan, folder: Path) -> tuple[list[Path], str]:
    """The plan's files with one organ ROI renamed to an HTML payload; (files, the renamed ROI's old name)."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = pydicom.dcmread(plan_.structure_set_file)
    types = {
        int(o.ReferencedROINumber): o.get("RTROIInterpretedType", "") for o in ds.RTROIObservationsSequence
    }
    item = next(r for r in ds.StructureSetROISequence if types.get(int(r.ROINumber)) == "ORGAN")
    old = str(item.ROIName)
    item.ROIName = HOSTILE_ROI
    target = folder / "rtstruct-hostile.dcm"
    ds.save_as(target)
    files = [f for f in plan_.files if f != plan_.structure_set_file] + [target]
    return files, old


def load(paths: list[Path] | tuple[Path, ...]) -> None:
    """Import files through the real pipeline (filing and plan bundles only)."""
    from rtbank.ingest.importer import import_paths
    from rtbank.work.worker import run_until_idle

    import_paths(list(paths), {})
    run_until_idle(["ingest", "analysis"])

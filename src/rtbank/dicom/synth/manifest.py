"""``manifest.json``: what an archive holds, so tests and benchmarks can assert against it.

Format 1 (keys are never renamed; new keys may be added)::

    {"generator": "rtbank synth", "format": 1, "seed": S, "full_size": false,
     "institutions": [{"code", "name", "roi_style", ...}],
     "counts": {"patients", "studies", "series", "instances", "by_modality": {...},
                "rt": {"plans", "structure_sets", "doses", "records", "registrations"}},
     "files": [{"path", "sop_instance_uid", "sop_class_uid", "modality", "series_instance_uid",
                "study_instance_uid", "patient_id"}],
     "patients": [{"patient_id", "institution", "patient_name", "plans": [...], "decoys": [...],
                   "anomalies": [...], "rois": [...]}]}

See :func:`patient_entry` for a patient's entry and :mod:`rtbank.dicom.synth.walk` for ``harvest_expected``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rtbank.dicom.synth.naming import Institution
from rtbank.dicom.synth.result import PatientArchive

GENERATOR = "rtbank synth"
FORMAT = 1
MANIFEST_NAME = "manifest.json"
RT_COUNTS = {
    "RTPLAN": "plans",
    "RTSTRUCT": "structure_sets",
    "RTDOSE": "doses",
    "RTRECORD": "records",
    "REG": "registrations",
}


def patient_entry(archive: PatientArchive) -> dict[str, Any]:
    """A patient's manifest entry: identity, plans (with ``harvest_expected``), decoys, anomalies, ROIs."""
    ctx = archive.context
    return {
        "patient_id": ctx.patient_id,
        "institution": ctx.institution.code,
        "patient_name": ctx.patient_name,
        "sex": ctx.sex,
        "birth_date": ctx.birth_date.strftime("%Y%m%d"),
        "index": ctx.index,
        "plans": [facts.entry() for facts in archive.plans],
        "decoys": archive.decoys,
        "anomalies": archive.anomalies,
        "rois": archive.rois,
    }


def file_entry(path: str, ds: Any) -> dict[str, str]:
    return {
        "path": path,
        "sop_instance_uid": str(ds.SOPInstanceUID),
        "sop_class_uid": str(ds.SOPClassUID),
        "modality": str(ds.Modality),
        "series_instance_uid": str(ds.SeriesInstanceUID),
        "study_instance_uid": str(ds.StudyInstanceUID),
        "patient_id": str(ds.PatientID),
    }


def build_manifest(
    seed: int,
    full_size: bool,
    institutions: Sequence[Institution],
    patients: Sequence[dict[str, Any]],
    files: Sequence[dict[str, str]],
) -> dict[str, Any]:
    return {
        "generator": GENERATOR,
        "format": FORMAT,
        "seed": seed,
        "full_size": full_size,
        "institutions": [
            {
                "code": i.code,
                "name": i.name,
                "roi_style": i.roi_style,
                "tps": i.tps.model,
                "record_and_verify": i.record_and_verify.model,
                "dose_bits": i.dose_bits,
            }
            for i in institutions
        ],
        "counts": counts(patients, files),
        "files": list(files),
        "patients": list(patients),
    }


def counts(patients: Sequence[dict[str, Any]], files: Sequence[dict[str, str]]) -> dict[str, Any]:
    """The same counts ``rtbank stats --json`` reports, computed from the files."""
    by_modality = Counter(f["modality"] for f in files)
    return {
        "patients": len(patients),
        "studies": len({f["study_instance_uid"] for f in files}),
        "series": len({f["series_instance_uid"] for f in files}),
        "instances": len(files),
        "by_modality": dict(sorted(by_modality.items())),
        "rt": {name: by_modality.get(modality, 0) for modality, name in RT_COUNTS.items()},
    }


def write_manifest(out: Path, manifest: dict[str, Any]) -> Path:
    path = out / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The manifest of a previous archive in ``out``, or ``None`` when there is none."""
    path = out / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("generator") == GENERATOR else None

"""Catalog verbs shared by the CLI and the web: statistics, verification, export as a folder tree."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db.models import Count

from rtbank.catalog.blobstore import blob_store
from rtbank.catalog.models import (
    Dose,
    Instance,
    InstanceState,
    Patient,
    Registration,
    RTPlan,
    Series,
    StructureSet,
    Study,
    TreatmentRecord,
)
from rtbank.fileio import fsync_dirs, safe_name
from rtbank.work.services import counts as work_counts


def stats() -> dict[str, Any]:
    """The ``rtbank stats --json`` contract (see the brief). Counts current objects only."""
    current = Instance.objects.filter(state=InstanceState.CURRENT)
    by_modality = dict(
        current.values("series__modality")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("series__modality", "n")
    )
    current_rt = {"instance__state": InstanceState.CURRENT}
    return {
        "patients": Patient.objects.count(),
        "studies": Study.objects.count(),
        "series": Series.objects.count(),
        "instances": current.count(),
        "by_modality": {k or "?": v for k, v in sorted(by_modality.items(), key=lambda kv: kv[0] or "")},
        "rt": {
            "plans": RTPlan.objects.filter(**current_rt).count(),
            "structure_sets": StructureSet.objects.filter(**current_rt).count(),
            "doses": Dose.objects.filter(**current_rt).count(),
            "records": TreatmentRecord.objects.filter(**current_rt).count(),
            "registrations": Registration.objects.filter(**current_rt).count(),
        },
        "quarantined": Instance.objects.filter(state=InstanceState.QUARANTINED).count(),
        "work": work_counts(),
    }


@dataclass
class VerifyReport:
    checked: int = 0
    missing: list[int] = field(default_factory=list)
    corrupt: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt


def verify(progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Re-read every stored file and compare its SHA-256 with the catalog."""
    store = blob_store()
    report = VerifyReport()
    for pk, key, expected in Instance.objects.values_list("pk", "blob_key", "file_sha256").iterator(
        chunk_size=2000
    ):
        path = store.local_path(key)
        try:
            digest = _sha256_file(path) if path else None
        except FileNotFoundError:
            digest = None
        if digest is None:
            report.missing.append(pk)
        elif digest != expected:
            report.corrupt.append(pk)
        report.checked += 1
        if progress:
            progress(report.checked)
    return report


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def export_tree(
    instances: Iterable[Instance],
    out: Path,
    progress: Callable[[int], None] | None = None,
    subject_label: Callable[[Patient], str] | None = None,
) -> int:
    """Copy ``instances`` into ``out`` as ``patient/study/series/file.dcm`` with readable, sanitised names.

    Names come from DICOM values made safe (:func:`rtbank.fileio.safe_name`) and every target path is
    checked to lie inside ``out``: a ``../`` in a PatientID never leaves the export folder.
    """
    store = blob_store()
    root = out.resolve()
    root.mkdir(parents=True, exist_ok=True)
    touched: set[Path] = set()
    n = 0
    for inst in instances:
        series = inst.series
        study = series.study
        patient = study.patient
        label = subject_label(patient) if subject_label else f"{patient.issuer}_{patient.patient_id}"
        folder = (
            root
            / safe_name(label, f"patient-{patient.pk}")
            / safe_name(f"{study.date or 'nodate'}_{study.description}", f"study-{study.pk}")[:60]
            / safe_name(
                f"{series.modality}_{series.number if series.number is not None else ''}"
                f"_{series.description}",
                f"series-{series.pk}",
            )[:60]
        )
        number = inst.instance_number if inst.instance_number is not None else inst.pk
        target = (folder / f"{inst.kind}_{number:05d}_{inst.pk}.dcm").resolve()
        if not target.is_relative_to(root):
            raise ValueError("export path escapes the output folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        with store.open(inst.blob_key) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
            dst.flush()
            os.fsync(dst.fileno())
        touched.add(target.parent)
        n += 1
        if progress:
            progress(n)
    fsync_dirs(touched)
    return n

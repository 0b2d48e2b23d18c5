"""Writing a synthetic archive to disk: the folder layout, Part-10 files, parallel patients, the manifest.

Layout: ``<institution>/<patient_id>/<study-date>_<study-kind>/<modality>_<series-number>/<n>.dcm``, every
part sanitised. Patients are independent, so they are generated in worker processes; the files and the
manifest are the same whatever the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtbank.dicom.synth.context import Generated
from rtbank.dicom.synth.encode import write_part10
from rtbank.dicom.synth.manifest import (
    build_manifest,
    file_entry,
    patient_entry,
    read_manifest,
    write_manifest,
)
from rtbank.dicom.synth.naming import Institution, safe_path_part
from rtbank.dicom.synth.naming import institutions as institution_list
from rtbank.dicom.synth.patient import generate_patient

MAX_PATIENTS = 100_000
Progress = Callable[[int, int], None]


class ArchiveError(ValueError):
    """Arguments or an output folder the generator refuses, with a message that says what to change."""


@dataclass(frozen=True)
class _Job:
    out: str
    seed: int
    index: int
    institution: Institution
    patients: int
    institution_count: int
    full_size: bool


def generate_archive(
    out: Path,
    patients: int,
    seed: int = 0,
    institutions: int = 3,
    full_size: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write a synthetic multi-centre RT archive to ``out`` and return its manifest.

    Parameters
    ----------
    out
        Folder to write; created if missing. It must be empty or hold an earlier archive of this generator
        (whose files are then replaced).
    patients
        Number of patients, spread over the institutions in turn.
    seed
        Same seed ⇒ byte-identical files and manifest.
    institutions
        Number of institutions (1–99).
    full_size
        512 × 512 CT with realistic slice counts (benchmarks) instead of 128 × 128.
    workers
        Processes generating patients in parallel (default: the CPU count, at most the patients).
    progress
        Called with ``(patients done, patients)`` after each patient.

    Raises
    ------
    ArchiveError
        For a bad count or seed, or an output folder holding something else.
    """
    check_arguments(patients, seed, institutions)
    clinics = institution_list(institutions)
    _prepare(out)
    jobs = [
        _Job(str(out), seed, i, clinics[i % institutions], patients, institutions, full_size)
        for i in range(patients)
    ]
    results = _run(jobs, workers, progress)
    entries = [entry for entry, _ in results]
    files = [f for _, patient_files in results for f in patient_files]
    manifest = build_manifest(seed, full_size, clinics, entries, files)
    write_manifest(out, manifest)
    return manifest


def check_arguments(patients: int, seed: int, institutions: int) -> None:
    if not 1 <= patients <= MAX_PATIENTS:
        raise ArchiveError(f"--patients must be between 1 and {MAX_PATIENTS}, not {patients}")
    if seed < 0:
        raise ArchiveError(f"--seed must be zero or positive, not {seed}")
    if not 1 <= institutions <= 99:
        raise ArchiveError(f"--institutions must be between 1 and 99, not {institutions}")


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ArchiveError(f"{out} is a file; give a folder for the archive")
    out.mkdir(parents=True, exist_ok=True)
    if not any(out.iterdir()):
        return
    previous = read_manifest(out)
    if previous is None:
        raise ArchiveError(f"{out} is not empty and holds no rtbank synth archive; choose an empty folder")
    for entry in previous.get("files", []):
        path = (out / str(entry.get("path", ""))).resolve()
        if path.is_file() and out.resolve() in path.parents:
            path.unlink()
    for folder in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def _run(
    jobs: list[_Job], workers: int | None, progress: Progress | None
) -> list[tuple[dict[str, Any], list[dict[str, str]]]]:
    count = workers if workers is not None else (os.cpu_count() or 1)
    count = max(1, min(count, len(jobs)))
    results: list[tuple[dict[str, Any], list[dict[str, str]]]] = []
    if count == 1:
        for job in jobs:
            results.append(_write_patient(job))
            if progress:
                progress(len(results), len(jobs))
        return results
    # "spawn": fresh interpreters. A fork would copy the caller's open database connections and threads
    # (a web or test process), and a child closing its copy can end the parent's PostgreSQL session.
    with ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("spawn")) as pool:
        for result in pool.map(_write_patient, jobs):
            results.append(result)
            if progress:
                progress(len(results), len(jobs))
    return results


def _write_patient(job: _Job) -> tuple[dict[str, Any], list[dict[str, str]]]:
    archive = generate_patient(
        job.seed, job.index, job.institution, job.patients, job.institution_count, job.full_size
    )
    out = Path(job.out)
    folders = StudyFolders(job.institution.code, archive.context.patient_id)
    files = []
    for generated in archive.objects:
        relative = folders.path(generated)
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        write_part10(target, generated.dataset)
        files.append(file_entry(relative, generated.dataset))
    return patient_entry(archive), files


class StudyFolders:
    """Relative paths of one patient's files; two studies of the same date and kind get distinct folders."""

    def __init__(self, institution_code: str, patient_id: str) -> None:
        self.root = f"{safe_path_part(institution_code)}/{safe_path_part(patient_id)}"
        self.studies: dict[str, str] = {}

    def path(self, generated: Generated) -> str:
        series = generated.series
        study = series.study
        folder = self.studies.get(study.uid)
        if folder is None:
            base = safe_path_part(f"{study.date}_{study.kind}")
            folder, number = base, 1
            while folder in self.studies.values():
                number += 1
                folder = f"{base}-{number}"
            self.studies[study.uid] = folder
        series_folder = safe_path_part(f"{series.modality}_{series.number}")
        return f"{self.root}/{folder}/{series_folder}/{int(generated.dataset.InstanceNumber)}.dcm"

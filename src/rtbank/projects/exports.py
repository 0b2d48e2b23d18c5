"""Bulk export of a project's raw DICOM: a zip streamed to the browser, or a background job writing a folder.

Both contain exactly :meth:`Access.export_instances` — what the user's ``download`` grant allows — under
the same folder tree as ``rtbank export`` (``subject/study/series/file.dcm``), named by subject ID unless the
user holds ``identifiers``. Every export writes one access-log row per patient when it starts, and every
download of a finished job writes them again.

The background job is a work row (kind ``export``) that writes ``EXPORT_CHUNK_FILES`` files per run, each
run one short transaction that advances ``ExportJob.cursor``; the row re-arms itself until the last chunk.
So progress is visible while it runs, SQLite is never locked for the length of an export, and a killed
worker resumes at the chunk it was writing. The grant is checked again before every chunk.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from rtbank.catalog.blobstore import blob_store
from rtbank.catalog.models import Instance, Patient
from rtbank.catalog.services import export_tree
from rtbank.fileio import safe_name
from rtbank.projects.access import ALLOWED, DENIED, Access
from rtbank.projects.models import ExportJob, JobState, Permission, Project
from rtbank.work import services as work
from rtbank.work.models import WorkItem
from rtbank.work.registry import Batch

EXPORT = "export"
STREAM_CHUNK = 1024 * 1024


def size_of(instances: QuerySet[Instance]) -> tuple[int, int]:
    """(files, bytes) of an export."""
    totals = Instance.objects.filter(pk__in=instances.values("pk")).aggregate(n=Count("pk"), size=Sum("size"))
    return totals["n"] or 0, totals["size"] or 0


def fits_stream(files: int, size: int) -> bool:
    return files <= settings.EXPORT_STREAM_MAX_FILES and size <= settings.EXPORT_STREAM_MAX_BYTES


def relative_path(inst: Instance, label: str) -> PurePosixPath:
    """The file's place in an export: the same tree :func:`rtbank.catalog.services.export_tree` writes."""
    series = inst.series
    study = series.study
    number = inst.instance_number if inst.instance_number is not None else inst.pk
    return PurePosixPath(
        safe_name(label, f"patient-{study.patient_id}"),
        safe_name(f"{study.date or 'nodate'}_{study.description}", f"study-{study.pk}")[:60],
        safe_name(
            f"{series.modality}_{series.number if series.number is not None else ''}_{series.description}",
            f"series-{series.pk}",
        )[:60],
        f"{inst.kind}_{number:05d}_{inst.pk}.dcm",
    )


def ordered(instances: QuerySet[Instance]) -> QuerySet[Instance]:
    return instances.select_related("series__study__patient").order_by("pk")


def patients_of(instances: QuerySet[Instance]) -> list[int]:
    return sorted(
        set(
            Instance.objects.filter(pk__in=instances.values("pk")).values_list(
                "series__study__patient_id", flat=True
            )
        )
    )


# --- streamed zip ----------------------------------------------------------------------------------------
class _Pipe(io.RawIOBase):
    """A write-only, unseekable buffer the zip writer fills and the response drains."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.parts.append(data)
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def drain(self) -> Iterator[bytes]:
        if self.parts:
            data = b"".join(self.parts)
            self.parts.clear()
            yield data


def zip_stream(entries: Iterable[tuple[str, Callable[[], Any]]]) -> Iterator[bytes]:
    """Yield a zip (stored, zip64) of ``(name, opener)`` entries, one file at a time, never all in memory."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, opener in entries:
            info = zipfile.ZipInfo(name, date_time=timezone.localtime().timetuple()[:6])
            with opener() as src, archive.open(info, "w", force_zip64=True) as dst:
                while chunk := src.read(STREAM_CHUNK):
                    dst.write(chunk)
                    yield from pipe.drain()
            yield from pipe.drain()
    yield from pipe.drain()


def stream_instances(instances: QuerySet[Instance], label: Callable[[Patient], str]) -> Iterator[bytes]:
    store = blob_store()

    def entries() -> Iterator[tuple[str, Callable[[], Any]]]:
        for inst in ordered(instances).iterator(chunk_size=500):
            yield (
                str(relative_path(inst, label(inst.series.study.patient))),
                lambda key=inst.blob_key: store.open(key),
            )

    return zip_stream(entries())


def stream_folder(folder: Path) -> Iterator[bytes]:
    """A finished background export, zipped on the fly."""
    root = folder.resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    return zip_stream((str(p.relative_to(root).as_posix()), lambda p=p: open(p, "rb")) for p in files)


# --- background jobs ----------------------------------------------------------------------------------
def start_job(access: Access, project: Project, subject_ids: list[str]) -> ExportJob:
    """Create the job and its work row; the caller has checked ``download`` on ``project``."""
    instances = access.export_instances(project, subject_ids)
    files, size = size_of(instances)
    job = ExportJob.objects.create(
        user=access.user,
        project=project,
        subject_ids=subject_ids,
        identifiers=access.shows_identifiers(project),
        total_files=files,
        total_bytes=size,
    )
    job.folder = safe_name(f"{project.code}-{timezone.localdate():%Y%m%d}-{job.pk}", f"export-{job.pk}")
    job.save(update_fields=["folder"])
    access.record_many(
        "export_job", "patient", patients_of(instances), ALLOWED, project=project, job=job.pk, files=files
    )
    work.enqueue(EXPORT, f"job:{job.pk}", {"job": job.pk})
    return job


def job_folder(job: ExportJob) -> Path:
    root = Path(settings.EXPORT_DIR).resolve()
    folder = (root / job.folder).resolve()
    if not job.folder or not folder.is_relative_to(root):
        raise ValueError("export folder escapes the export directory")
    return folder


def run_export_step(item: WorkItem, batch: Batch) -> dict[str, Any]:
    """Work handler: write the next chunk of one export job (see the module docstring)."""
    job = ExportJob.objects.select_related("project", "user").get(pk=item.payload["job"])
    if job.state in (JobState.DONE, JobState.FAILED):
        return {"state": job.state}
    access = Access(job.user)
    refusal = _refusal(access, job)
    if refusal:
        access.record("export_job", "export", job.pk, DENIED, project=job.project, reason=refusal)
        _finish(job, JobState.FAILED, refusal)
        return {"state": job.state}
    chunk = list(
        ordered(access.export_instances(job.project, job.subject_ids).filter(pk__gt=job.cursor))[
            : settings.EXPORT_CHUNK_FILES
        ]
    )
    if chunk:
        label = (lambda p: p.patient_id) if job.identifiers else access.labeller(job.project)
        export_tree(chunk, job_folder(job), subject_label=label)
        job.cursor = chunk[-1].pk
        job.done_files += len(chunk)
        job.done_bytes += sum(i.size for i in chunk)
    job.total_files = max(job.total_files, job.done_files)
    job.total_bytes = max(job.total_bytes, job.done_bytes)
    if len(chunk) < settings.EXPORT_CHUNK_FILES:
        _finish(job, JobState.DONE, "")
    else:
        job.state = JobState.RUNNING
        job.save(update_fields=["cursor", "done_files", "done_bytes", "total_files", "total_bytes", "state"])
        work.enqueue(EXPORT, item.key, item.payload)  # running: re-armed to run once more (the next chunk)
    return {"state": job.state, "done_files": job.done_files}


def _refusal(access: Access, job: ExportJob) -> str:
    if not access.has(job.project, Permission.DOWNLOAD):
        return "the 'download' permission on this project has ended"
    if job.identifiers and not access.shows_identifiers(job.project):
        return "the 'identifiers' permission on this project has ended"
    return ""


def _finish(job: ExportJob, state: str, error: str) -> None:
    from rtbank.notifications.services import notify

    job.state, job.error, job.finished_at = state, error, timezone.now()
    if state == JobState.DONE:
        job_folder(job).mkdir(parents=True, exist_ok=True)
    job.save()
    what = "is ready" if state == JobState.DONE else "failed"
    notify(
        [job.user],
        "export_ready" if state == JobState.DONE else "export_failed",
        f"Export of {job.project.code} {what}",
        f"Your export #{job.pk} of project {job.project.code} {what}: {job.done_files} files"
        f"{' — ' + error if error else ''}.",
        url=f"/exports/{job.pk}/",
    )


def remove_old_exports(older_than: dt.timedelta = dt.timedelta(days=14)) -> int:
    """Delete finished export folders older than ``older_than`` (for the scheduler's daily clean-up)."""
    import shutil

    removed = 0
    cutoff = timezone.now() - older_than
    for job in ExportJob.objects.filter(state__in=[JobState.DONE, JobState.FAILED], finished_at__lt=cutoff):
        folder = job_folder(job)
        if folder.exists():
            shutil.rmtree(folder)
            removed += 1
        ExportJob.objects.filter(pk=job.pk).delete()
    return removed


def folder_size(folder: Path) -> int:
    return sum(os.path.getsize(p) for p in folder.rglob("*") if p.is_file())

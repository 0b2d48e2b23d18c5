"""Bulk export (``download``), the plans CSV (``export``), and the person's export jobs."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from rtbank.catalog.models import Roi
from rtbank.projects import exports, summaries
from rtbank.projects.access import ALLOWED, Access
from rtbank.projects.csvfiles import csv_response
from rtbank.projects.models import ExportJob, JobState, Permission
from rtbank.projects.summaries import plan_subject_labels


@login_required
@require_POST
def project_export(request: HttpRequest, code: str) -> HttpResponse:
    """Download all or the selected subjects: a streamed zip when small, else a background job."""
    acc = Access.of(request)
    project = acc.project(code, Permission.DOWNLOAD, "download")
    subject_ids = sorted({s.strip() for s in request.POST.getlist("subjects") if s.strip()})[:10000]
    if request.POST.get("scope", "all") == "all":
        subject_ids = []
    elif not subject_ids:
        messages.error(request, "select the patients to download (or download the whole project)")
        return redirect("project_detail", code=project.code)
    instances = acc.export_instances(project, subject_ids)
    files, size = exports.size_of(instances)
    if not files:
        messages.error(request, "nothing to export: no data in the selected subjects")
        return redirect("project_detail", code=project.code)
    if request.POST.get("mode") != "job" and exports.fits_stream(files, size):
        acc.record_many(
            "download",
            "patient",
            exports.patients_of(instances),
            ALLOWED,
            project=project,
            files=files,
            bytes=size,
        )
        name = f"{project.code}-{timezone.localdate():%Y%m%d}.zip"
        response = StreamingHttpResponse(
            exports.stream_instances(instances, acc.labeller(project)), content_type="application/zip"
        )
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    job = exports.start_job(acc, project, subject_ids)
    messages.success(
        request, f"Export #{job.pk} started ({files} files); you get a notification when it is ready."
    )
    return redirect("export_detail", pk=job.pk)


@login_required
@require_GET
def plans_csv(request: HttpRequest, code: str) -> HttpResponse:
    """One row per plan of the project with its key values and ROI names (``export`` permission)."""
    acc = Access.of(request)
    project = acc.project(code, Permission.EXPORT, "csv")
    plans = list(summaries.plan_rows(project))
    labels = plan_subject_labels(acc, project, plans)
    identifiers = acc.shows_identifiers(project)
    rois: dict[str, list[str]] = defaultdict(list)
    uids = {p.plan.structure_set_uid for p in plans if hasattr(p, "plan") and p.plan.structure_set_uid}
    for ss_uid, name in Roi.objects.filter(
        structure_set__instance__sop_instance_uid__in=uids, structure_set__instance__state="current"
    ).values_list("structure_set__instance__sop_instance_uid", "name"):
        rois[ss_uid].append(name)
    acc.record_many(
        "csv",
        "patient",
        sorted({p.series.study.patient_id for p in plans}),
        ALLOWED,
        project=project,
        what="plans",
    )
    header = [
        "subject",
        *(["patient_id", "patient_name"] if identifiers else []),
        "institution",
        "plan_label",
        "plan_name",
        "intent",
        "prescription_gy",
        "fractions",
        "beams",
        "approval",
        "received",
        "bundle_missing",
        "rois",
    ]

    def rows():  # noqa: ANN202
        for p in plans:
            info = getattr(p, "plan", None)
            patient = p.series.study.patient
            yield [
                labels.get(p.pk, ("", ""))[0],
                *([patient.patient_id, patient.name] if identifiers else []),
                patient.institution.code if patient.institution else "",
                info.label if info else "",
                info.name if info else "",
                info.intent if info else "",
                info.prescription_gy if info else "",
                info.fractions_planned if info else "",
                info.beam_count if info else "",
                info.approval_status if info else "",
                f"{p.received_at:%Y-%m-%d}",
                len(info.bundle_missing) if info else "",
                "; ".join(rois.get(info.structure_set_uid, [])) if info else "",
            ]

    return csv_response(f"{project.code}-plans.csv", header, rows())


@login_required
@require_GET
def export_list(request: HttpRequest) -> HttpResponse:
    jobs = ExportJob.objects.filter(user=request.user).select_related("project")
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    running = any(j.state in (JobState.PENDING, JobState.RUNNING) for j in page)
    return render(request, "projects/exports.html", {"page": page, "refresh": running})


@login_required
@require_GET
def export_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = Access.of(request).export_job(pk, "view_export")
    return render(
        request,
        "projects/export.html",
        {"job": job, "refresh": job.state in (JobState.PENDING, JobState.RUNNING)},
    )


@login_required
@require_GET
def export_download(request: HttpRequest, pk: int) -> HttpResponse:
    acc = Access.of(request)
    job = acc.export_job(pk, "download_export")
    if job.state != JobState.DONE:
        messages.error(request, "this export is not ready")
        return redirect("export_detail", pk=job.pk)
    folder = exports.job_folder(job)
    patients = exports.patients_of(acc.export_instances(job.project, job.subject_ids))
    acc.record_many("download", "patient", patients, ALLOWED, project=job.project, job=job.pk)
    response = StreamingHttpResponse(exports.stream_folder(folder), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{job.folder}.zip"'
    return response

"""Audit pages under ``/projects/<code>/audits/``: every one needs the ``audit`` permission on the project.

Outsiders get 404 and members without ``audit`` 403 (:meth:`rtbank.projects.access.Access.project`, which
also logs the attempt); an audit of another project is 404. Downloads, sends and uploads write
access-log rows per patient (see :mod:`rtbank.audits.services`).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rtbank.audits import reports, services, uploads
from rtbank.audits.forms import AuditForm
from rtbank.audits.models import Audit, AuditState, Content, Participant, PseudonymousPatient
from rtbank.projects.access import ALLOWED, Access
from rtbank.projects.csvfiles import csv_response
from rtbank.projects.models import Permission, Project


def _audit(
    request: HttpRequest, code: str, pk: int | None, action: str
) -> tuple[Access, Project, Audit | None]:
    acc = Access.of(request)
    project = acc.project(code, Permission.AUDIT, action)
    if pk is None:
        return acc, project, None
    audit = Audit.objects.filter(pk=pk, project=project).first()
    if audit is None:
        acc.record(action, "audit", pk, "not_found", project=project)
        raise Http404("no such audit in this project")
    return acc, project, audit


def _detail_url(audit: Audit) -> str:
    return reverse("audit_detail", args=[audit.project.code, audit.pk])


@login_required
@require_GET
def audit_list(request: HttpRequest, code: str) -> HttpResponse:
    acc, project, _ = _audit(request, code, None, "list_audits")
    audits = Audit.objects.filter(project=project).prefetch_related("participants", "datasets")
    acc.record("list_audits", "project", project.code, ALLOWED, project=project)
    return render(request, "audits/list.html", {"project": project, "audits": audits})


@login_required
@require_http_methods(["GET", "POST"])
def audit_new(request: HttpRequest, code: str) -> HttpResponse:
    acc, project, _ = _audit(request, code, None, "create_audit")
    form = AuditForm(acc, project, request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            audit = services.create_audit(
                acc,
                project,
                name=data["name"],
                description=data["description"],
                subjects=data["subjects"],
                plans=data["plans"],
                participants=data["participants"],
                contents=data["contents"],
                remove_roi_types=data["remove_roi_types"],
                options=data["options"],
            )
        except ValidationError as exc:
            form.add_error(None, "; ".join(exc.messages))
        else:
            messages.success(request, f"Audit '{audit.name}' created: make the copies when you are ready.")
            return redirect(_detail_url(audit))
    return render(request, "audits/new.html", {"project": project, "form": form})


@login_required
@require_GET
def audit_detail(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    acc, project, audit = _audit(request, code, pk, "view_audit")
    assert audit is not None
    label = acc.labeller(project)
    datasets = list(audit.datasets.select_related("patient", "plan__plan", "reference_structure_set"))
    pseudonyms = {
        (p.participant_id, p.dataset_id): p.pseudonym
        for p in PseudonymousPatient.objects.filter(participant__audit=audit)
    }
    statuses = services.participant_statuses(audit)
    acc.record("view_audit", "audit", audit.pk, ALLOWED, project=project)
    return render(
        request,
        "audits/detail.html",
        {
            "project": project,
            "audit": audit,
            "access": acc,
            "statuses": statuses,
            "datasets": [(d, label(d.patient)) for d in datasets],
            "pseudonym_rows": [
                (s.participant, [pseudonyms.get((s.participant.pk, d.pk), "") for d in datasets])
                for s in statuses
            ],
            "contents": [Content(c).label for c in audit.contents],
            "open": audit.state == AuditState.OPEN,
            "identifiers": acc.shows_identifiers(project),
        },
    )


@login_required
@require_POST
def audit_copies(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    """Make (again) the chosen participants' copies, or send them (making the ones not made yet)."""
    acc, project, audit = _audit(request, code, pk, "audit_copies")
    assert audit is not None
    chosen = _participants(audit, request.POST.getlist("participants"))
    try:
        if request.POST.get("action") == "send":
            sent, queued = services.send_copies(acc, audit, chosen)
            messages.success(
                request,
                f"{sent} cop{'y' if sent == 1 else 'ies'} queued in the outbox, "
                f"{queued} to be made and then sent.",
            )
        else:
            made = services.request_copies(acc, audit, chosen)
            messages.success(request, f"{made} cop{'y' if made == 1 else 'ies'} being made.")
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    return redirect(_detail_url(audit))


@login_required
@require_GET
def audit_download(request: HttpRequest, code: str, pk: int, participant: int) -> HttpResponse:
    acc, project, audit = _audit(request, code, pk, "audit_download")
    assert audit is not None
    chosen = Participant.objects.filter(audit=audit, pk=participant).select_related("audit__project").first()
    if chosen is None:
        raise Http404("no such participant")
    try:
        stream = services.download_copy(acc, chosen)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
        return redirect(_detail_url(audit))
    response = StreamingHttpResponse(stream, content_type="application/zip")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{audit.pk}-copy-{int(chosen.copy_id)}.zip"'
    )
    return response


@login_required
@require_http_methods(["GET", "POST"])
def audit_returns(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    """Upload what participants sent by other means (e-mail, file share): only recognised objects are kept."""
    acc, project, audit = _audit(request, code, pk, "audit_upload")
    assert audit is not None
    results = None
    if request.method == "POST":
        results = uploads.receive_returns(acc, audit, request.FILES.getlist("files"))
    returned = reports.returned_objects(audit)
    return render(
        request,
        "audits/returns.html",
        {"project": project, "audit": audit, "results": results, "returned": returned},
    )


@login_required
@require_GET
def audit_report(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    acc, project, audit = _audit(request, code, pk, "view_audit_report")
    assert audit is not None
    acc.record("view_audit_report", "audit", audit.pk, ALLOWED, project=project)
    return render(
        request, "audits/report.html", {"project": project, "audit": audit, "report": reports.report(audit)}
    )


@login_required
@require_GET
def audit_report_csv(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    acc, project, audit = _audit(request, code, pk, "audit_report_csv")
    assert audit is not None
    acc.record("audit_report_csv", "audit", audit.pk, ALLOWED, project=project)
    return csv_response(f"audit-{audit.pk}-qa.csv", reports.CSV_HEADER, reports.csv_rows(audit))


@login_required
@require_POST
def audit_close(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    acc, project, audit = _audit(request, code, pk, "close_audit")
    assert audit is not None
    services.close_audit(acc, audit)
    messages.success(request, "Audit closed: nothing more is sent; returns are still recognised and scored.")
    return redirect(_detail_url(audit))


def _participants(audit: Audit, ids: list[str]) -> list[Participant]:
    wanted = [int(i) for i in ids if i.isdigit()]
    chosen = audit.participants.select_related("audit__project", "node")
    return list(chosen.filter(pk__in=wanted) if wanted else chosen)

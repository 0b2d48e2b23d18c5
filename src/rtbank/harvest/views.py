"""Harvest pages for site admins: the runs, one run's progress and manifest, starting a run."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from rtbank.harvest import report, services
from rtbank.harvest.models import HarvestRun
from rtbank.harvest.sources import HarvestError
from rtbank.institutions.models import Node
from rtbank.projects.access import Access


def _admin(request: HttpRequest, action: str) -> Access:
    acc = Access.of(request)
    if not acc.site_admin:
        acc.record(action, "harvest_run", "", "denied")
        raise PermissionDenied("harvest runs are for site admins")
    return acc


@login_required
def runs(request: HttpRequest) -> HttpResponse:
    acc = _admin(request, "list_harvest")
    if request.method == "POST":
        return _start(request, acc)
    rows = [(run, services.progress(run)) for run in HarvestRun.objects.select_related("source")[:100]]
    sources = [n for n in Node.objects.all() if n.has_role("harvest")]
    return render(request, "harvest/runs.html", {"rows": rows, "sources": sources})


def _start(request: HttpRequest, acc: Access) -> HttpResponse:
    try:
        date_from = dt.date.fromisoformat(request.POST.get("from", ""))
        date_to = dt.date.fromisoformat(request.POST.get("to", ""))
    except ValueError:
        messages.error(request, "give the window as YYYY-MM-DD dates")
        return redirect("harvest_runs")
    objects_from = [n.strip() for n in request.POST.get("objects_from", "").split(",") if n.strip()]
    try:
        run = services.start_run(
            request.POST.get("source", ""),
            actor=acc.label,
            date_from=date_from,
            date_to=date_to,
            objects_from=objects_from,
            project=request.POST.get("project") or None,
        )
    except HarvestError as exc:
        messages.error(request, str(exc))
        return redirect("harvest_runs")
    messages.success(request, f"harvest run #{run.pk} started; the workers collect it")
    return redirect("harvest_run", pk=run.pk)


@login_required
def run_page(request: HttpRequest, pk: int) -> HttpResponse:
    acc = _admin(request, "view_harvest")
    run = get_object_or_404(HarvestRun.objects.select_related("source"), pk=pk)
    acc.record("view_harvest", "harvest_run", run.pk, "allowed")
    rep = report.build(run)
    return render(
        request,
        "harvest/run.html",
        {"run": run, "progress": services.progress(run), "report": rep, "stats": rep.stats},
    )


@login_required
def run_csv(request: HttpRequest, pk: int) -> HttpResponse:
    acc = _admin(request, "export_harvest")
    run = get_object_or_404(HarvestRun.objects.select_related("source"), pk=pk)
    acc.record("export_harvest", "harvest_run", run.pk, "allowed")
    response = HttpResponse(report.to_csv(report.build(run)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="harvest-run-{run.pk}.csv"'
    return response

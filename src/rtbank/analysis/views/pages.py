"""Analysis pages of a project: overview, matrix, completeness, plans, protocol QA (``view`` to read).

Every page asks :class:`rtbank.projects.access.Access` for the project first (404 for outsiders, 403
without the permission, both logged) and reads only the plans the project holds.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from rtbank.analysis import calculation, services
from rtbank.analysis.exports import plan_facts
from rtbank.analysis.models import (
    DoseConstraint,
    PlanQa,
    PlanSummary,
    QaResult,
    RequiredRoi,
    SeriesCompleteness,
)
from rtbank.analysis.overview import overview_matrix, project_plans
from rtbank.analysis.protocol import constraint_text
from rtbank.analysis.suggestions import tg263_suggester
from rtbank.dicom.completeness import DatasetFlag, SeriesFlag
from rtbank.projects.access import ALLOWED, Access
from rtbank.projects.models import Permission, Project

PAGE_SIZE = 50


def _page(acc: Access, request: HttpRequest, code: str, name: str) -> Project:
    project = acc.project(code, Permission.VIEW, f"analysis_{name}")
    acc.record(f"analysis_{name}", "project", project.code, ALLOWED, project=project)
    return project


def _editor(acc: Access, code: str, name: str) -> Project:
    """POSTs change the project's analysis setup: ``rules`` permission (managers)."""
    return acc.project(code, Permission.RULES, f"analysis_{name}_edit")


def _context(acc: Access, project: Project, **extra: Any) -> dict[str, Any]:
    return {
        "project": project,
        "access": acc,
        "may_edit": acc.has(project, Permission.RULES),
        "may_export": acc.has(project, Permission.EXPORT),
        "identifiers": acc.shows_identifiers(project),
        **extra,
    }


@login_required
@require_http_methods(["GET", "POST"])
def overview(request: HttpRequest, code: str) -> HttpResponse:
    acc = Access.of(request)
    if request.method == "POST":
        project = _editor(acc, code, "metrics")
        try:
            names = services.set_project_metrics(
                project, request.POST.get("metrics", "").replace("\n", ",").split(",")
            )
            messages.success(
                request, f"Metric list saved ({len(names)} metrics); missing values are being calculated."
            )
        except ValueError as exc:
            messages.error(request, str(exc))
        return redirect("analysis_overview", code=project.code)
    project = _page(acc, request, code, "overview")
    plans = project_plans(project)
    summaries = PlanSummary.objects.filter(plan__in=plans)
    qa = Counter(PlanQa.objects.filter(project=project, plan__in=plans).values_list("status", flat=True))
    return render(
        request,
        "analysis/overview.html",
        _context(
            acc,
            project,
            progress=calculation.dvh_progress(plans),
            metrics=services.project_metrics(project),
            incomplete=summaries.filter(complete=False).count(),
            complete=summaries.filter(complete=True).count(),
            series_flagged=SeriesCompleteness.objects.filter(
                complete=False, series__instances__in=acc.instances(project)
            )
            .distinct()
            .count(),
            qa=sorted(qa.items()),
            has_protocol=RequiredRoi.objects.filter(project=project).exists()
            or DoseConstraint.objects.filter(project=project).exists(),
            offered=calculation.required_metric_names(),
        ),
    )


@login_required
@require_http_methods(["GET"])
def matrix(request: HttpRequest, code: str) -> HttpResponse:
    """Plans × standard ROI names: none / one / several matches; unmatched names with TG-263 suggestions."""
    acc = Access.of(request)
    project = _page(acc, request, code, "matrix")
    page = Paginator(project_plans(project), PAGE_SIZE).get_page(request.GET.get("page"))
    result = overview_matrix(project, list(page), acc.labeller(project))
    suggester = tg263_suggester()
    unmatched = [(name, key, count, suggester.suggest(name)) for name, key, count in result.unmatched]
    return render(
        request, "analysis/matrix.html", _context(acc, project, page=page, matrix=result, unmatched=unmatched)
    )


@login_required
@require_http_methods(["GET"])
def completeness(request: HttpRequest, code: str) -> HttpResponse:
    """Plans and image series of the project with their completeness flags; filter by status and flag."""
    acc = Access.of(request)
    project = _page(acc, request, code, "completeness")
    status, flag = request.GET.get("status", ""), request.GET.get("flag", "")[:40]
    plans = project_plans(project)
    summaries = (
        PlanSummary.objects.filter(plan__in=plans)
        .select_related("plan__plan", "plan__series__study__patient__institution")
        .order_by("plan__series__study__patient_id", "pk")
    )
    if status in {"complete", "incomplete"}:
        summaries = summaries.filter(complete=status == "complete")
    if flag:
        summaries = [s for s in summaries if flag in s.flags]
    page = Paginator(summaries, PAGE_SIZE).get_page(request.GET.get("page"))
    series = (
        SeriesCompleteness.objects.filter(complete=False, series__instances__in=acc.instances(project))
        .select_related("series__study__patient")
        .distinct()
        .order_by("patient_id", "series_id")[:200]
    )
    label = acc.labeller(project)
    rows = [(label(s.plan.series.study.patient), s) for s in page]
    return render(
        request,
        "analysis/completeness.html",
        _context(
            acc,
            project,
            page=page,
            rows=rows,
            status=status,
            flag=flag,
            series=[(label(s.series.study.patient), s) for s in series],
            plan_flags=[f.value for f in DatasetFlag],
            series_flags=[f.value for f in SeriesFlag],
        ),
    )


@login_required
@require_http_methods(["GET"])
def plans(request: HttpRequest, code: str) -> HttpResponse:
    """Classification and delivery of each plan (intent, technique, fractions, MU, interruptions)."""
    acc = Access.of(request)
    project = _page(acc, request, code, "plans")
    intent, treated = request.GET.get("intent", "")[:16], request.GET.get("treated", "")
    qs = project_plans(project).select_related("analysis_summary", "series__study__patient__institution")
    if intent:
        qs = qs.filter(analysis_summary__intent=intent)
    if treated in {"yes", "no"}:
        qs = qs.filter(analysis_summary__treated=treated == "yes")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    label = acc.labeller(project)
    rows = [
        (
            label(p.series.study.patient),
            p,
            plan_facts(p, getattr(p, "plan", None), getattr(p, "analysis_summary", None)),
        )
        for p in page
    ]
    intents = sorted(
        set(PlanSummary.objects.filter(plan__in=project_plans(project)).values_list("intent", flat=True))
    )
    return render(
        request,
        "analysis/plans.html",
        _context(acc, project, page=page, rows=rows, intent=intent, treated=treated, intents=intents),
    )


@login_required
@require_http_methods(["GET", "POST"])
def qa(request: HttpRequest, code: str) -> HttpResponse:
    """The protocol (required ROIs, dose constraints) and each plan's result; managers edit the protocol."""
    acc = Access.of(request)
    if request.method == "POST":
        project = _editor(acc, code, "protocol")
        _edit_protocol(request, project, acc)
        return redirect("analysis_qa", code=project.code)
    project = _page(acc, request, code, "qa")
    status, uid = request.GET.get("status", "")[:16], request.GET.get("plan", "")[:64]
    results = (
        PlanQa.objects.filter(project=project, plan__in=project_plans(project))
        .select_related("plan__plan", "plan__series__study__patient")
        .order_by("plan__series__study__patient_id", "plan_id")
    )
    if status:
        results = results.filter(status=status)
    if uid:
        results = results.filter(plan__sop_instance_uid=uid)
    page = Paginator(results, PAGE_SIZE).get_page(request.GET.get("page"))
    details: dict[int, list[QaResult]] = {}
    for r in QaResult.objects.filter(project=project, plan__in=[p.plan_id for p in page]).select_related(
        "constraint"
    ):
        details.setdefault(r.plan_id, []).append(r)
    label = acc.labeller(project)
    rows = [(label(p.plan.series.study.patient), p, details.get(p.plan_id, [])) for p in page]
    constraints = [(c, constraint_text(c)) for c in DoseConstraint.objects.filter(project=project)]
    return render(
        request,
        "analysis/qa.html",
        _context(
            acc,
            project,
            page=page,
            rows=rows,
            status=status,
            plan_uid=uid,
            constraints=constraints,
            required=RequiredRoi.objects.filter(project=project),
            counts=sorted(
                Counter(PlanQa.objects.filter(project=project).values_list("status", flat=True)).items()
            ),
        ),
    )


def _edit_protocol(request: HttpRequest, project: Project, acc: Access) -> None:
    action = request.POST.get("action", "")
    try:
        if action == "add_roi":
            services.add_required_roi(project, request.POST.get("standard_name", ""))
        elif action == "remove_roi":
            services.remove_required_roi(project, int(request.POST.get("pk", "0")))
        elif action == "add_constraint":
            services.add_constraint(project, request.POST.get("constraint", "")[:200], actor=acc.label)
        elif action == "remove_constraint":
            services.remove_constraint(project, int(request.POST.get("pk", "0")))
        else:
            raise ValueError("unknown action")
        messages.success(request, "Protocol saved; the plans were graded again.")
    except ValueError as exc:
        messages.error(request, str(exc))

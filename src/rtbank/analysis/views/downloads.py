"""CSV downloads of a project's analysis (``export`` permission): metrics, DVH curves, plans, protocol QA.

Patients appear by project subject ID unless the person holds ``identifiers``; every download writes one
access-log row per patient it contains. Cells are written by :func:`rtbank.projects.csvfiles.csv_response`,
which neutralises text starting with ``=``, ``+``, ``-``, ``@`` (spreadsheet formulas).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils import timezone
from django.views.decorators.http import require_GET

from rtbank.analysis import calculation, exports, services
from rtbank.analysis.overview import project_plans
from rtbank.projects.access import ALLOWED, Access
from rtbank.projects.csvfiles import csv_response
from rtbank.projects.models import Permission, Project

Table = Callable[..., tuple[list[str], Iterator[list[Any]]]]


def _start(request: HttpRequest, code: str, what: str) -> tuple[Access, Project, list, exports.Identity]:
    acc = Access.of(request)
    project = acc.project(code, Permission.EXPORT, "csv")
    plans = list(project_plans(project))
    acc.record_many(
        "csv",
        "patient",
        sorted({p.series.study.patient_id for p in plans}),
        ALLOWED,
        project=project,
        what=what,
    )
    return acc, project, plans, exports.Identity(acc.labeller(project), acc.shows_identifiers(project))


def _filename(project: Project, what: str) -> str:
    return f"{project.code}-{what}-{timezone.localdate():%Y%m%d}.csv"


def _list(request: HttpRequest, key: str) -> list[str]:
    values = []
    for raw in request.GET.getlist(key):
        values += [v.strip() for v in raw.split(",") if v.strip()]
    return values[:200]


@login_required
@require_GET
def metrics_csv(request: HttpRequest, code: str) -> HttpResponse:
    """One row per subject × plan × standard ROI; ``?metrics=`` and ``?rois=`` choose columns and rows."""
    acc = Access.of(request)
    project = acc.project(code, Permission.EXPORT, "csv")
    offered = list(dict.fromkeys(services.project_metrics(project) + calculation.required_metric_names()))
    try:
        chosen = exports.check_metrics(
            _list(request, "metrics") or services.project_metrics(project), offered
        )
    except ValueError as exc:
        acc.record(
            "csv", "project", project.code, "error", project=project, what="metrics", error=str(exc)[:200]
        )
        return HttpResponseBadRequest(f"{exc}\n", content_type="text/plain; charset=utf-8")
    acc, project, plans, who = _start(request, code, "dvh_metrics")
    rois = set(_list(request, "rois")) or None
    header, rows = exports.metric_rows(project, plans, who, chosen, rois)
    return csv_response(_filename(project, "dvh-metrics"), header, rows)


@login_required
@require_GET
def curves_csv(request: HttpRequest, code: str) -> HttpResponse:
    """The stored cumulative DVH of each unambiguous standard ROI, one row per dose point (``?rois=``)."""
    acc, project, plans, who = _start(request, code, "dvh_curves")
    header, rows = exports.curve_rows(project, plans, who, set(_list(request, "rois")) or None)
    return csv_response(_filename(project, "dvh-curves"), header, rows)


@login_required
@require_GET
def plans_csv(request: HttpRequest, code: str) -> HttpResponse:
    """Classification, delivery and completeness of every plan."""
    acc, project, plans, who = _start(request, code, "plan_delivery")
    header, rows = exports.plan_rows(project, plans, who)
    return csv_response(_filename(project, "plans-delivery"), header, rows)


@login_required
@require_GET
def qa_csv(request: HttpRequest, code: str) -> HttpResponse:
    """Each plan × protocol item: required ROIs and dose constraints with pass / minor / major."""
    acc, project, plans, who = _start(request, code, "protocol_qa")
    header, rows = exports.qa_rows(project, plans, who)
    return csv_response(_filename(project, "protocol-qa"), header, rows)

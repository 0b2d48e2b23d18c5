"""The access log for site admins: browse and filter; reading it is itself an access and is logged."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from rtbank.projects.access import ALLOWED, Access, search_fingerprint
from rtbank.projects.csvfiles import csv_response
from rtbank.projects.models import AccessLog

FILTERS = ("actor", "action", "outcome", "project", "object_type", "object_id", "since", "until", "searched")
OUTCOMES = ("allowed", "denied", "not_found", "refused", "error")


def _date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def filtered(params: dict[str, str]):  # noqa: ANN201 - an AccessLog queryset
    qs = AccessLog.objects.select_related("project")
    if params.get("actor"):
        qs = qs.filter(actor__icontains=params["actor"])
    if params.get("action"):
        qs = qs.filter(action=params["action"])
    if params.get("outcome"):
        qs = qs.filter(outcome=params["outcome"])
    if params.get("project"):
        qs = qs.filter(project__code=params["project"])
    if params.get("object_type"):
        qs = qs.filter(object_type=params["object_type"])
    if params.get("object_id"):
        qs = qs.filter(object_id=params["object_id"])
    if params.get("searched"):
        qs = qs.filter(details__search=search_fingerprint(params["searched"]))
    tz = timezone.get_current_timezone()
    if since := _date(params.get("since", "")):
        qs = qs.filter(time__gte=dt.datetime.combine(since, dt.time.min, tzinfo=tz))
    if until := _date(params.get("until", "")):
        qs = qs.filter(time__lt=dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, tzinfo=tz))
    return qs.order_by("-time", "-id")


@login_required
@require_GET
def access_log(request: HttpRequest) -> HttpResponse:
    acc = Access.of(request)
    acc.require_site_admin("read_access_log", "access_log")
    params = {k: request.GET.get(k, "").strip()[:100] for k in FILTERS}
    filters = {k: v for k, v in params.items() if v and k != "searched"}
    if params["searched"]:
        filters["searched"] = search_fingerprint(params["searched"])
    acc.record("read_access_log", "access_log", "", ALLOWED, filters=filters)
    qs = filtered(params)
    if request.GET.get("format") == "csv":
        rows = (
            [
                f"{r.time:%Y-%m-%d %H:%M:%S}",
                r.actor,
                r.action,
                r.object_type,
                r.object_id,
                r.project.code if r.project else "",
                r.outcome,
                r.remote_addr,
            ]
            for r in qs.iterator(chunk_size=2000)
        )
        return csv_response(
            "access-log.csv",
            ["time", "actor", "action", "object_type", "object_id", "project", "outcome", "remote_addr"],
            rows,
        )
    page = Paginator(qs, 100).get_page(request.GET.get("page"))
    actions = AccessLog.objects.order_by("action").values_list("action", flat=True).distinct()[:200]
    query = urlencode({k: v for k, v in params.items() if v})
    return render(
        request,
        "rtbank/access_log.html",
        {"page": page, "params": params, "actions": actions, "outcomes": OUTCOMES, "filter_query": query},
    )

"""Pages of the web interface. Every read of patient data goes through :mod:`rtbank.projects.access`."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from rtbank.catalog.patient_view import patient_view
from rtbank.projects.access import Access
from rtbank.web.health import health

PAGE_SIZE = 50


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report = health()
    return JsonResponse(report, status=200 if report["ok"] else 503)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("inbox")


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """Data in no project yet: site admins and the submitting institution's data managers route it."""
    acc = Access.of(request)
    qs = acc.inbox_patients().annotate(study_count=Count("studies", distinct=True)).order_by("-created_at", "pk")
    query = request.GET.get("q", "").strip()[:64]
    if query:
        qs = qs.filter(Q(patient_id__icontains=query) | Q(name__icontains=query))
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    acc.record("list_inbox", "patient_list", "", "allowed", query=query, page=page.number)
    return render(request, "rtbank/patients.html", {"page": page, "query": query})


@login_required
@require_GET
def inbox_patient(request: HttpRequest, pk: int) -> HttpResponse:
    found = Access.of(request).inbox_patient(pk, "view_patient")
    return render(request, "rtbank/patient.html", {"view": patient_view(found)})

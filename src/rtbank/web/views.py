"""Pages of the web interface. Every read of patient data goes through :mod:`rtbank.projects.access`."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from rtbank.catalog.patient_view import patient_view
from rtbank.projects import access
from rtbank.web.health import health

PAGE_SIZE = 50


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report = health()
    return JsonResponse(report, status=200 if report["ok"] else 503)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("patients")


@login_required
@require_GET
def patients(request: HttpRequest) -> HttpResponse:
    viewer = access.Viewer.of(request)
    qs = access.visible_patients(viewer).annotate(study_count=Count("studies", distinct=True)).order_by("-created_at", "pk")
    query = request.GET.get("q", "").strip()[:64]
    if query:
        qs = qs.filter(Q(patient_id__icontains=query) | Q(name__icontains=query))
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    access.record(viewer, "list_patients", "patient_list", "", "allowed", query=query, page=page.number)
    return render(request, "rtbank/patients.html", {"page": page, "query": query})


@login_required
@require_GET
def patient(request: HttpRequest, pk: int) -> HttpResponse:
    viewer = access.Viewer.of(request)
    found = access.patient_for(viewer, pk, "view_patient")
    return render(request, "rtbank/patient.html", {"view": patient_view(found)})

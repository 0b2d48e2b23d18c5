"""Viewer page and endpoints. Each one asks :mod:`rtbank.viewer.access` first (the access helper, logged)."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from rtbank.projects.models import ProjectSubject
from rtbank.viewer import access, services
from rtbank.viewer.dvh import dvh_panel
from rtbank.viewer.names import roi_rows
from rtbank.viewer.services import ViewerError


@login_required
@require_GET
def viewer_page(request: HttpRequest, uid: str) -> HttpResponse:
    viewer, token = access.open_viewer(request, uid)
    dataset = viewer.dataset
    try:
        services.warm(dataset)  # contours, dose and volume start loading while the page loads
    except ValueError:
        pass  # no usable planning images: the manifest request reports it
    plan = dataset.plan
    context = {
        "uid": viewer.uid,
        "token": token,
        "project": viewer.project,
        "plan": plan,
        "kind": dataset.root_kind,
        "subject_label": _subject_label(viewer),
        "title": (plan.label if plan and plan.label else dataset.root_kind.replace("_", " ")),
    }
    return render(request, "viewer/viewer.html", context)


@login_required
@require_GET
def manifest(request: HttpRequest, uid: str) -> HttpResponse:
    viewer = access.check(request, uid, "viewer_manifest")
    dataset = viewer.dataset
    return _answer(
        lambda: JsonResponse(
            services.manifest(
                dataset, roi_rows(viewer.project, dataset.structure_set), _subject_label(viewer)
            )
        )
    )


@login_required
@require_GET
def image(request: HttpRequest, uid: str, series_uid: str, view: str, index: int) -> HttpResponse:
    viewer = access.check(request, uid, "viewer_slice")
    return _answer(lambda: _binary(request, services.image_plane(viewer.dataset, series_uid, view, index)))


@login_required
@require_GET
def geometry(request: HttpRequest, uid: str, view: str, index: int) -> HttpResponse:
    viewer = access.check(request, uid, "viewer_geometry")

    def answer() -> HttpResponse:
        levels = services.parse_levels(request.GET.get("levels", ""))
        body = services.overlay_geometry(viewer.dataset, view, index, levels)
        return _compressed(request, HttpResponse(content_type="application/json"), body)

    return _answer(answer)


@login_required
@require_GET
def dose_plane(request: HttpRequest, uid: str, view: str, index: int) -> HttpResponse:
    viewer = access.check(request, uid, "viewer_dose")
    return _answer(lambda: _binary(request, services.dose_plane(viewer.dataset, view, index)))


@login_required
@require_GET
def dose_at(request: HttpRequest, uid: str) -> HttpResponse:
    viewer = access.check(request, uid, "viewer_dose")

    def answer() -> HttpResponse:
        try:
            point = [float(request.GET[axis]) for axis in ("x", "y", "z")]
        except (KeyError, ValueError) as exc:
            raise ViewerError("give the point as x, y and z in mm") from exc
        return JsonResponse({"point_mm": point, "dose_gy": services.dose_at(viewer.dataset, point)})

    return _answer(answer)


@login_required
@require_GET
def dvh(request: HttpRequest, uid: str) -> HttpResponse:
    viewer = access.check(request, uid, "viewer_dvh")
    return _nostore(JsonResponse(dvh_panel(viewer.dataset)))  # "status": "computing" until it is there


# --------------------------------------------------------------------- helpers
def _subject_label(viewer: access.ViewerRequest) -> str:
    patient_id = viewer.root.series.study.patient_id if viewer.root.series_id else None
    subject = (
        ProjectSubject.objects.filter(project=viewer.project, patient_id=patient_id)
        .select_related("patient")
        .first()
    )
    return viewer.acc.patient_label(viewer.project, subject) if subject else ""


def _answer(make: Callable[[], HttpResponse]) -> HttpResponse:
    try:
        return _nostore(make())
    except ViewerError as exc:
        status = 404 if str(exc).startswith("no such") else 400
        return _nostore(JsonResponse({"error": str(exc)}, status=status))


def _binary(request: HttpRequest, blob: bytes) -> HttpResponse:
    head, body = services.unpack(blob)
    response = HttpResponse(content_type="application/octet-stream")
    response["X-Rtbank-Plane"] = head
    return _compressed(request, response, body)


def _compressed(request: HttpRequest, response: HttpResponse, gzipped: bytes) -> HttpResponse:
    """Send a body compressed once when cached: as is to browsers (all accept gzip), else expanded."""
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response.content = gzipped
        response["Content-Encoding"] = "gzip"
    else:
        response.content = gzip.decompress(gzipped)
    response["Vary"] = "Accept-Encoding"
    return response


def _nostore(response: Any) -> Any:
    response["Cache-Control"] = "no-store"  # patient data: nothing stays in browser or proxy caches
    return response

"""Pages of the web interface. Every read of patient data goes through :mod:`rtbank.projects.access`."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rtbank.catalog.models import Instance, InstanceState
from rtbank.catalog.patient_view import patient_view
from rtbank.projects.access import ALLOWED, DENIED, PLAN_KINDS, Access
from rtbank.projects.models import Project
from rtbank.projects.services import AssignmentRefused, assign_patient, assign_plan
from rtbank.web.health import health

PAGE_SIZE = 50


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report = health()
    return JsonResponse(report, status=200 if report["ok"] else 503)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("project_list")


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """Data in no project yet: site admins and the submitting institution's data managers route it."""
    acc = Access.of(request)
    qs = (
        acc.inbox_patients()
        .select_related("institution")
        .annotate(study_count=Count("studies", distinct=True))
        .order_by("-created_at", "pk")
    )
    query = request.GET.get("q", "").strip()[:64]
    if query:
        qs = qs.filter(Q(patient_id__icontains=query) | Q(name__icontains=query))
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    acc.record_search("list_inbox", "patient_list", "", query, page=page.number)
    projects = acc.assignable_projects() if _may_route(acc) else Project.objects.none()
    return render(request, "rtbank/patients.html", {"page": page, "query": query, "projects": projects})


@login_required
@require_GET
def inbox_patient(request: HttpRequest, pk: int) -> HttpResponse:
    acc = Access.of(request)
    found = acc.inbox_patient(pk, "view_patient")
    return render(
        request, "rtbank/patient.html", {"view": patient_view(found), "projects": acc.assignable_projects()}
    )


@login_required
@require_POST
def inbox_assign(request: HttpRequest) -> HttpResponse:
    """Assign selected inbox patients (or one plan with its bundle) to a project the person may assign to."""
    acc = Access.of(request)
    project = acc.assignable_projects().filter(code=request.POST.get("project", "")).first()
    if not _may_route(acc) or project is None:
        acc.record("assign", "project", request.POST.get("project", "")[:32], DENIED)
        raise PermissionDenied("you may not assign to that project")
    pks = [int(v) for v in request.POST.getlist("patients") if v.isdigit()][:1000]
    patients = list(acc.inbox_patients().filter(pk__in=pks).order_by("pk"))
    if not patients:
        messages.error(request, "select at least one patient from your inbox")
        return redirect("inbox")
    plan_uid = request.POST.get("plan", "").strip()[:64]
    try:
        if plan_uid:
            plan = Instance.objects.filter(
                sop_instance_uid=plan_uid,
                state=InstanceState.CURRENT,
                kind__in=PLAN_KINDS,
                series__study__patient=patients[0],
            ).first()
            if plan is None or len(patients) != 1:
                raise ValidationError("choose one plan of one patient")
            subject = assign_plan(project, plan, actor=acc.label).subject
            done = [subject.subject_id]
        else:
            done = [assign_patient(project, p, actor=acc.label).subject_id for p in patients]
    except AssignmentRefused as exc:
        messages.error(request, "; ".join(exc.messages))
        return redirect("inbox")
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
        return redirect("inbox")
    acc.record_many("assign", "patient", [p.pk for p in patients], ALLOWED, project=project, plan=plan_uid)
    messages.success(request, f"assigned to {project.code}: {', '.join(done)}")
    return redirect("inbox")


def _may_route(acc: Access) -> bool:
    profile = getattr(acc.user, "profile", None)
    return acc.site_admin or bool(profile and profile.institution_id and profile.has_role("data_manager"))


# --- upload -------------------------------------------------------------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    from rtbank.projects import uploads
    from rtbank.projects.models import Upload

    acc = Access.of(request)
    institution = acc.upload_institution()
    if institution is None:
        acc.record("upload", "page", "", DENIED)
        raise PermissionDenied("web upload is for uploaders of an institution")
    projects = acc.upload_projects()
    context = {
        "institution": institution,
        "projects": projects,
        "uploads": Upload.objects.filter(user=request.user).select_related("project")[:20],
    }
    if request.method == "POST":
        uploads.ensure_temp_dir()
        project = (
            projects.filter(code=request.POST.get("project", "")).first()
            if request.POST.get("project")
            else None
        )
        if request.POST.get("project") and project is None:
            raise PermissionDenied("you may not upload into that project")
        try:
            done = uploads.receive(
                acc,
                request.FILES.getlist("files"),
                project=project,
                deidentified=request.POST.get("deidentified") == "on",
            )
        except uploads.UploadRefused as exc:
            return render(
                request,
                "rtbank/upload.html",
                {**context, "refused": str(exc), "problems": exc.problems},
                status=400,
            )
        finally:
            for f in request.FILES.getlist("files"):
                f.close()
        return redirect("upload_detail", pk=done.pk)
    return render(request, "rtbank/upload.html", context)


@login_required
@require_GET
def upload_detail(request: HttpRequest, pk: int) -> HttpResponse:
    from rtbank.projects.models import Upload

    found = Upload.objects.filter(pk=pk, user=request.user).select_related("project", "institution").first()
    if found is None:
        Access.of(request).record("view_upload", "upload", pk, "not_found")
        from django.http import Http404

        raise Http404("no such upload")
    return render(
        request, "rtbank/upload_detail.html", {"upload": found, "refresh": found.assignment == "pending"}
    )

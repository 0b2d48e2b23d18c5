"""Project list, project page, subject (patient-in-project) page and plan page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from rtbank.catalog.models import RTPlan
from rtbank.institutions.models import Institution
from rtbank.projects import summaries
from rtbank.projects.access import Access, active_projects
from rtbank.projects.models import Permission, Project, ProjectPlan
from rtbank.projects.subject_view import bundle_groups, plan_references, subject_view

PAGE_SIZE = 50


@login_required
@require_GET
def project_list(request: HttpRequest) -> HttpResponse:
    """Projects the person holds (or held) a grant on, marked when it no longer gives anything; site admins
    (who manage projects) see every project. A list of projects names no patient."""
    acc = Access.of(request)
    projects = (
        Project.objects.all()
        if acc.site_admin
        else Project.objects.filter(grants__user=request.user).distinct()
    )
    query = request.GET.get("q", "").strip()[:64]
    if query:
        projects = projects.filter(Q(code__icontains=query) | Q(name__icontains=query))
    projects = projects.annotate(subject_count=Count("subjects", distinct=True)).order_by("code")
    page = Paginator(projects, PAGE_SIZE).get_page(request.GET.get("page"))
    active = set(active_projects().filter(pk__in=[p.pk for p in page]).values_list("pk", flat=True))
    held = set(
        Project.objects.filter(grants__user=request.user, pk__in=[p.pk for p in page]).values_list(
            "pk", flat=True
        )
    )
    rows = [(p, sorted(acc.permissions.get(p.pk, set())), p.pk in active, p.pk in held) for p in page]
    acc.record_search("list_projects", "project_list", "", query, page=page.number)
    return render(request, "projects/list.html", {"page": page, "rows": rows, "query": query})


@login_required
@require_GET
def project_detail(request: HttpRequest, code: str) -> HttpResponse:
    acc = Access.of(request)
    project = acc.project(code, Permission.VIEW, "view_project")
    query = request.GET.get("q", "").strip()[:64]
    institution = request.GET.get("institution", "").strip()[:32]
    subjects = summaries.filtered_subjects(acc, project, query, institution)
    page = Paginator(subjects, PAGE_SIZE).get_page(request.GET.get("page"))
    acc.record_search("view_project", "project", project.code, query, project=project, page=page.number)
    context = {
        "project": project,
        "access": acc,
        "page": page,
        "query": query,
        "institution": institution,
        "rows": summaries.subject_rows(acc, project, list(page)),
        "by_institution": summaries.counts_by_institution(project),
        "over_time": summaries.patients_over_time(project),
        "institutions": Institution.objects.filter(projects=project).order_by("code"),
        "permissions": sorted(acc.permissions.get(project.pk, set())),
        "identifiers": acc.shows_identifiers(project),
        "may": {p: acc.has(project, p) for p in ("download", "export", "members", "assign")},
    }
    return render(request, "projects/detail.html", context)


@login_required
@require_GET
def subject_detail(request: HttpRequest, code: str, subject_id: str) -> HttpResponse:
    """One patient as the project holds them: only the project's instances, named by subject ID."""
    acc = Access.of(request)
    project = acc.project(code, Permission.VIEW, "view_subject")
    subject = acc.subject(project, subject_id, "view_subject")
    allowed = set(acc.subject_instances(project, subject).values_list("pk", flat=True))
    view = subject_view(subject.patient, allowed)
    context = {
        "project": project,
        "access": acc,
        "subject": subject,
        "view": view,
        "label": acc.patient_label(project, subject),
        "identifiers": acc.shows_identifiers(project),
        "instances": allowed,
        "may_download": acc.has(project, Permission.DOWNLOAD),
        "plans": ProjectPlan.objects.filter(subject=subject).select_related("plan"),
    }
    return render(request, "projects/subject.html", context)


@login_required
@require_GET
def plan_detail(request: HttpRequest, code: str, uid: str) -> HttpResponse:
    """A plan: key values, its bundle by role, and references both ways (within the project)."""
    acc = Access.of(request)
    project = acc.project(code, Permission.VIEW, "view_plan")
    plan = acc.plan(project, uid[:64], "view_plan")
    subject = project.subjects.select_related("patient").get(patient_id=plan.series.study.patient_id)
    allowed = set(acc.subject_instances(project, subject).values_list("pk", flat=True))
    outgoing, incoming = plan_references(plan, allowed)
    context = {
        "project": project,
        "access": acc,
        "subject": subject,
        "plan": plan,
        "rtplan": RTPlan.objects.filter(instance=plan).first(),
        "label": acc.patient_label(project, subject),
        "identifiers": acc.shows_identifiers(project),
        "bundle": bundle_groups(plan, allowed),
        "outgoing": outgoing,
        "incoming": incoming,
    }
    return render(request, "projects/plan.html", context)

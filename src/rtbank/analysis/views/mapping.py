"""ROI mapping rules of a project (``view`` reads, ``rules`` changes) and the TG-263 list (site admins)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from rtbank.analysis import mapping, services
from rtbank.analysis.mapping import RULES_CSV_HEADER, RuleError
from rtbank.analysis.models import NO_INSTITUTION, RoiMappingRule, Tg263Name
from rtbank.analysis.views.pages import _context, _editor, _page
from rtbank.institutions.models import Institution
from rtbank.projects.access import ALLOWED, Access
from rtbank.projects.csvfiles import csv_response
from rtbank.projects.models import Permission, Project

MAX_IMPORT_BYTES = 1024 * 1024


def _institutions(project: Project) -> list[Institution]:
    chosen = list(project.institutions.order_by("code"))
    return chosen or list(Institution.objects.order_by("code"))


@login_required
@require_http_methods(["GET", "POST"])
def rules(request: HttpRequest, code: str) -> HttpResponse:
    acc = Access.of(request)
    if request.method == "POST":
        project = _editor(acc, code, "mapping")
        _edit(request, project, acc)
        return redirect("analysis_mapping", code=project.code)
    project = _page(acc, request, code, "mapping")
    institutions = _institutions(project)
    test_name = request.GET.get("test", "")[:128]
    test_inst = request.GET.get("institution", "")
    explained = None
    if test_name.strip():
        key = next((i.pk for i in institutions if i.code == test_inst), NO_INSTITUTION)
        explained = mapping.explain(project, test_name, key)
    names = sorted(
        set(Tg263Name.objects.values_list("name", flat=True))
        | set(RoiMappingRule.objects.filter(project=project).values_list("standard_name", flat=True))
    )
    return render(
        request,
        "analysis/mapping.html",
        _context(
            acc,
            project,
            rules=RoiMappingRule.objects.filter(project=project).select_related("institution"),
            institutions=institutions,
            test_name=test_name,
            test_institution=test_inst,
            explained=explained,
            standard_names=names,
            prefill_pattern=request.GET.get("pattern", "")[:128],
            prefill_standard=request.GET.get("standard", "")[:64],
        ),
    )


def _edit(request: HttpRequest, project: Project, acc: Access) -> None:
    action = request.POST.get("action", "")
    if action == "add":
        code = request.POST.get("institution", "")
        institution = Institution.objects.filter(code=code).first() if code else None
        try:
            mapping.add_rule(
                project,
                request.POST.get("pattern", ""),
                request.POST.get("standard_name", ""),
                institution=institution,
                actor=acc.label,
            )
            messages.success(request, "Rule added; the mapping of all data is up to date.")
        except RuleError as exc:
            messages.error(request, str(exc))
    elif action == "delete":
        if mapping.delete_rule(project, _int(request.POST.get("pk"))):
            messages.success(request, "Rule deleted; the mapping of all data is up to date.")
    elif action == "import":
        _import(request, project, acc)
    else:
        messages.error(request, "unknown action")
    services.qa_after_mapping(project)


def _import(request: HttpRequest, project: Project, acc: Access) -> None:
    upload = request.FILES.get("file")
    if upload is not None and upload.size > MAX_IMPORT_BYTES:
        messages.error(request, "the file is larger than 1 MB")
        return
    text = upload.read().decode("utf-8-sig", errors="replace") if upload else request.POST.get("text", "")
    report = mapping.import_rules_csv(
        project, text, actor=acc.label, replace=request.POST.get("replace") == "on"
    )
    if report.errors:
        messages.error(request, "Nothing imported: " + "; ".join(report.errors[:10]))
    else:
        messages.success(request, f"{report.added} rule(s) added, {report.unchanged} already present.")


def _int(value: str | None) -> int:
    try:
        return int(value or "0")
    except ValueError:
        return 0


@login_required
@require_GET
def rules_csv(request: HttpRequest, code: str) -> HttpResponse:
    """The rules as ``pattern,standard_name,institution`` (no patient data; ``view`` suffices)."""
    acc = Access.of(request)
    project = acc.project(code, Permission.VIEW, "analysis_mapping_csv")
    acc.record("analysis_mapping_csv", "project", project.code, ALLOWED, project=project)
    return csv_response(f"{project.code}-roi-mapping.csv", RULES_CSV_HEADER, mapping.rules_csv_rows(project))


@login_required
@require_http_methods(["GET", "POST"])
def tg263(request: HttpRequest) -> HttpResponse:
    """The TG-263 list: site admins import the official spreadsheet (saved as CSV); used for suggestions."""
    acc = Access.of(request)
    acc.require_site_admin("analysis_tg263")
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None or upload.size > 5 * MAX_IMPORT_BYTES:
            messages.error(request, "choose the TG-263 spreadsheet saved as CSV (at most 5 MB)")
        else:
            try:
                count = services.import_tg263(upload.read(), upload.name)
                messages.success(request, f"{count} TG-263 names imported.")
            except services.Tg263Error as exc:
                messages.error(request, str(exc))
        return redirect("analysis_tg263")
    query = request.GET.get("q", "").strip()[:64]
    names = Tg263Name.objects.all()
    if query:
        names = names.filter(name__icontains=query)
    first = Tg263Name.objects.first()
    return render(
        request,
        "analysis/tg263.html",
        {
            "names": names[:200],
            "count": Tg263Name.objects.count(),
            "source": first.source if first else "",
            "query": query,
        },
    )

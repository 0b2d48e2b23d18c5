"""Rule pages (project rules under /projects/<code>/rules/, site-wide rules under /rules/site/), the outbox,
manual sends and the cleanup report. Every decision goes through :class:`rtbank.projects.access.Access`:
outsiders get 404, members without the permission 403, and site-wide pages are 404 to everyone but admins.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rtbank.catalog.models import Instance, InstanceState
from rtbank.institutions.models import Node
from rtbank.projects.access import ALLOWED, NOT_FOUND, Access, instances_in
from rtbank.projects.models import Permission, Project
from rtbank.rules import engine, outbox, services
from rtbank.rules.dryrun import dry_run
from rtbank.rules.forms import RuleForm
from rtbank.rules.models import (
    CleanupNotice,
    CleanupRun,
    Forward,
    NoticeState,
    Rule,
    RuleFiring,
    TrashedInstance,
)

PAGE_SIZE = 50
PLAN_KINDS = ("plan", "ion_plan")


# --- rules -----------------------------------------------------------------------------------------------
def _owner(request: HttpRequest, code: str | None, action: str) -> tuple[Access, Project | None]:
    """The project (with ``rules``) or, for site-wide pages, a site admin; else 404/403."""
    acc = Access.of(request)
    if code is None:
        if not acc.site_admin:
            acc.record(action, "site_rules", "", NOT_FOUND)
            raise Http404("no such page")
        return acc, None
    return acc, acc.project(code, Permission.RULES, action)


def _rule(project: Project | None, pk: int) -> Rule:
    rule = Rule.objects.filter(pk=pk, project=project).select_related("project").first()
    if rule is None:
        raise Http404("no such rule")
    return rule


def _rule_url(rule: Rule, name: str = "rule") -> str:
    if rule.project is None:
        return reverse(f"site_{name}", args=[rule.pk])
    return reverse(f"project_{name}", args=[rule.project.code, rule.pk])


@login_required
@require_GET
def rule_list(request: HttpRequest, code: str | None = None) -> HttpResponse:
    acc, project = _owner(request, code, "list_rules")
    rules = Rule.objects.filter(project=project).order_by("name", "pk")
    return render(request, "rules/list.html", {"project": project, "rules": rules, "access": acc})


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, code: str | None = None, pk: int | None = None) -> HttpResponse:
    acc, project = _owner(request, code, "edit_rule")
    rule = _rule(project, pk) if pk is not None else None
    form = RuleForm(request.POST or None, project=project, rule=rule)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = services.save_rule(
                acc,
                rule=rule,
                project=project,
                name=data["name"],
                scope=data["scope"],
                conditions=data["conditions"],
                actions=data["actions"],
                enabled=data["enabled"],
                description=data["description"],
            )
        except ValidationError as exc:
            form.add_error(None, "; ".join(exc.messages))
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Rule '{saved.name}' saved (version {saved.version}).")
            return redirect(_rule_url(saved))
    return render(request, "rules/edit.html", {"project": project, "rule": rule, "form": form})


@login_required
@require_GET
def rule_detail(request: HttpRequest, code: str | None = None, pk: int = 0) -> HttpResponse:
    acc, project = _owner(request, code, "view_rule")
    rule = _rule(project, pk)
    firings = Paginator(RuleFiring.objects.filter(rule=rule).select_related("forward"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "rules/detail.html",
        {
            "project": project,
            "rule": rule,
            "firings": firings,
            "labels": _firing_labels(acc, project, list(firings)),
            "description": _describe(rule),
            "actions": _action_labels(rule),
        },
    )


@login_required
@require_GET
def rule_dry_run(request: HttpRequest, code: str | None = None, pk: int = 0) -> HttpResponse:
    acc, project = _owner(request, code, "dry_run_rule")
    rule = _rule(project, pk)
    report = dry_run(rule, acc)
    acc.record(
        "dry_run_rule",
        "rule",
        rule.pk,
        ALLOWED,
        project=project,
        shown=len(report.rows),
        hidden=report.hidden,
    )
    return render(request, "rules/dry_run.html", {"project": project, "rule": rule, "report": report})


@login_required
@require_POST
def rule_apply(request: HttpRequest, code: str | None = None, pk: int = 0) -> HttpResponse:
    """Evaluate an enabled rule on the data already stored (the dry run shows what that will do)."""
    acc, project = _owner(request, code, "apply_rule")
    rule = _rule(project, pk)
    if not rule.enabled:
        messages.error(request, "Enable the rule first.")
    else:
        patients = engine.apply_to_stored(rule)
        acc.record("apply_rule", "rule", rule.pk, ALLOWED, project=project, patients=patients)
        messages.success(request, f"Rule queued for {patients} patient(s) with matching stored data.")
    return redirect(_rule_url(rule))


@login_required
@require_POST
def rule_delete(request: HttpRequest, code: str | None = None, pk: int = 0) -> HttpResponse:
    acc, project = _owner(request, code, "delete_rule")
    rule = _rule(project, pk)
    services.delete_rule(acc, rule)
    messages.success(request, f"Rule '{rule.name}' deleted.")
    return redirect(reverse("project_rules", args=[project.code]) if project else reverse("site_rules"))


def _describe(rule: Rule) -> str:
    from rtbank.rules.conditions import RuleError, parse

    try:
        return parse(rule.conditions).describe()
    except RuleError as exc:
        return f"(invalid: {exc})"


def _action_labels(rule: Rule) -> list[str]:
    from django.contrib.auth.models import User

    labels = []
    for action in rule.actions:
        if action["type"] == "assign":
            target = rule.project or Project.objects.filter(pk=action.get("project")).first()
            labels.append(f"assign to {target.code if target else '(a removed project)'}")
        elif action["type"] == "forward":
            node = Node.objects.filter(pk=action.get("node")).first()
            labels.append(
                f"forward to {node.name} ({node.ae_title})" if node else "forward to (a removed node)"
            )
        elif action["type"] == "notify":
            names = list(
                User.objects.filter(pk__in=action.get("users", [])).values_list("username", flat=True)
            )
            labels.append("notify " + ", ".join(names + [f"{r} holders" for r in action.get("roles", [])]))
    return labels


def _firing_labels(acc: Access, project: Project | None, firings: list[RuleFiring]) -> dict[int, str]:
    """Subject IDs for people who may view the project's data; nothing else ever names a patient here."""
    if project is None or not acc.has(project, Permission.VIEW):
        return {}
    subjects = dict(
        project.subjects.filter(patient_id__in=[f.patient_id for f in firings]).values_list(
            "patient_id", "subject_id"
        )
    )
    return {f.pk: subjects[f.patient_id] for f in firings if f.patient_id in subjects}


# --- outbox ------------------------------------------------------------------------------------------------
@login_required
@require_GET
def outbox_list(request: HttpRequest, code: str | None = None) -> HttpResponse:
    acc = Access.of(request)
    if code is None:
        if not acc.site_admin:
            acc.record("view_outbox", "outbox", "", NOT_FOUND)
            raise Http404("no such page")
        project, forwards = None, Forward.objects.all()
    else:
        project = acc.project(code, Permission.FORWARD, "view_outbox")
        forwards = Forward.objects.filter(project=project)
    state = request.GET.get("state", "")
    rows = outbox.with_state(forwards.select_related("destination", "project"))
    if state in ("pending", "in_progress", "done", "failed"):
        rows = rows.filter(work_state=state)
    page = Paginator(rows.order_by("-created_at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "rules/outbox.html", {"project": project, "page": page, "state": state})


@login_required
@require_POST
def forward_resubmit(request: HttpRequest, pk: int) -> HttpResponse:
    acc = Access.of(request)
    forward = Forward.objects.filter(pk=pk).select_related("project").first()
    if forward is None or (forward.project is None and not acc.site_admin):
        acc.record("resubmit_forward", "forward", pk, NOT_FOUND)
        raise Http404("no such forward")
    if forward.project is not None:
        acc.project(forward.project.code, Permission.FORWARD, "resubmit_forward")
    if outbox.resubmit(forward, actor=acc.label):
        acc.record("resubmit_forward", "forward", pk, ALLOWED, project=forward.project)
        messages.success(request, f"Forward #{forward.pk} will be sent again.")
    else:
        messages.error(request, f"Forward #{forward.pk} has not failed: nothing to resubmit.")
    back = reverse("project_outbox", args=[forward.project.code]) if forward.project else reverse("outbox")
    return redirect(back)


@login_required
@require_http_methods(["GET", "POST"])
def project_send(request: HttpRequest, code: str) -> HttpResponse:
    """Send a subject's project data, or one plan bundle, to a destination on the project's allow-list."""
    acc = Access.of(request)
    project = acc.project(code, Permission.FORWARD, "forward")
    nodes = project.destinations.all().order_by("name")
    subject_id = (request.POST.get("subject") or request.GET.get("subject") or "").strip()[:64]
    plan_uid = (request.POST.get("plan") or request.GET.get("plan") or "").strip()[:64]
    if request.method == "POST":
        node = nodes.filter(pk=request.POST.get("node") or 0).first()
        if node is None:
            messages.error(request, "Choose a destination on the project's list.")
        else:
            forward = _queue_send(acc, project, node, subject_id, plan_uid)
            messages.success(request, f"Queued to {node.name} as outbox #{forward.pk}.")
            return redirect("project_outbox", code=project.code)
    return render(
        request,
        "rules/send.html",
        {"project": project, "nodes": nodes, "subject": subject_id, "plan": plan_uid},
    )


def _queue_send(acc: Access, project: Project, node: Node, subject_id: str, plan_uid: str) -> Forward:
    held = instances_in(project)
    if plan_uid:
        plan = held.filter(sop_instance_uid=plan_uid, kind__in=PLAN_KINDS).first()
        if plan is None:
            acc.record("forward", "instance", plan_uid, NOT_FOUND, project=project)
            raise Http404("no such plan in this project")
        acc.record("forward_request", "instance", plan.pk, ALLOWED, project=project, node=node.name)
        return outbox.send_plan(node, plan, project=project, actor=acc.label, user=acc.user)
    subject = acc.subject(project, subject_id, "forward_request")
    objects = held.filter(series__study__patient=subject.patient, state=InstanceState.CURRENT)
    return outbox.send_instances(
        node,
        list(Instance.objects.filter(pk__in=objects.values("pk"))),
        project=project,
        actor=acc.label,
        user=acc.user,
    )


# --- firings on the data's pages, and the cleanup report ----------------------------------------------------
@login_required
@require_GET
def subject_firings(request: HttpRequest, code: str, subject_id: str) -> HttpResponse:
    acc = Access.of(request)
    project = acc.project(code, Permission.VIEW, "view_firings")
    subject = acc.subject(project, subject_id, "view_firings")
    firings = services.firings_of_patient(subject.patient_id, projects=[project])
    return render(
        request, "rules/firings.html", {"project": project, "subject": subject, "firings": firings[:200]}
    )


@login_required
@require_GET
def cleanup_report(request: HttpRequest) -> HttpResponse:
    """Site admins: the last report, pending notices, the trash. Data managers: their institution's
    notices."""
    acc = Access.of(request)
    profile = getattr(request.user, "profile", None)
    manager = profile is not None and profile.institution_id and profile.has_role("data_manager")
    if not acc.site_admin and not manager:
        acc.record("view_cleanup", "cleanup", "", NOT_FOUND)
        raise Http404("no such page")
    notices = CleanupNotice.objects.filter(state=NoticeState.PENDING).select_related("institution", "patient")
    if not acc.site_admin:
        notices = notices.filter(institution_id=profile.institution_id)
    acc.record("view_cleanup", "cleanup", "", ALLOWED)
    context = {
        "notices": notices.order_by("delete_after", "pk")[:500],
        "last": CleanupRun.objects.filter(dry_run=True).first() if acc.site_admin else None,
        "last_real": CleanupRun.objects.filter(dry_run=False).first() if acc.site_admin else None,
        "trash": TrashedInstance.objects.filter(purged_at__isnull=True).count() if acc.site_admin else None,
    }
    return render(request, "rules/cleanup.html", context)

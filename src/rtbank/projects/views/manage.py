"""Member management (``members`` permission or site admin) and reuse by agreement (site admins)."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from rtbank.projects import members as membership
from rtbank.projects.access import Access, today
from rtbank.projects.models import ROLE_BUNDLES, Permission, Project, ProjectSubject
from rtbank.projects.services import AssignmentRefused, assign_patient, assign_plan


@login_required
@require_http_methods(["GET", "POST"])
def project_members(request: HttpRequest, code: str) -> HttpResponse:
    acc = Access.of(request)
    project = acc.members_project(code, "manage_members")
    if request.method == "POST":
        try:
            _change_members(request, acc, project)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        return redirect("project_members", code=project.code)
    day = today()
    context = {
        "project": project,
        "members": membership.members_of(project),
        "today": day,
        "grantable": membership.grantable(acc, project),
        "roles": ROLE_BUNDLES,
        "default_until": min(project.renew_by, day + dt.timedelta(days=365))
        if project.renew_by >= day
        else day + dt.timedelta(days=365),
        "suspended": project.is_suspended(day),
        "permission_labels": dict(Permission.choices),
    }
    return render(request, "projects/members.html", context)


def _change_members(request: HttpRequest, acc: Access, project: Project) -> None:
    action = request.POST.get("action")
    if action == "add":
        names = request.POST.getlist("permissions") + (
            [request.POST["role"]] if request.POST.get("role") else []
        )
        grants = membership.give(
            acc, project, request.POST.get("username", "").strip(), names, _date(request)
        )
        messages.success(
            request,
            f"{request.POST.get('username')} holds {', '.join(g.permission for g in grants)} "
            f"until {grants[0].expires_on:%Y-%m-%d}",
        )
        return
    user = User.objects.filter(pk=_int(request.POST.get("user"))).first()
    if user is None or not project.grants.filter(user=user).exists():
        raise ValidationError("no such member")
    if action == "renew":
        grants = membership.renew(acc, project, user, _date(request))
        messages.success(request, f"renewed {user.get_username()} until {grants[0].expires_on:%Y-%m-%d}")
    elif action == "revoke":
        n = membership.revoke(acc, project, user, request.POST.getlist("permissions") or None)
        messages.success(request, f"revoked {n} permission{'s' if n != 1 else ''} of {user.get_username()}")
    else:
        raise ValidationError("unknown action")


def _date(request: HttpRequest) -> dt.date:
    try:
        return dt.date.fromisoformat(request.POST.get("until", ""))
    except ValueError:
        raise ValidationError("give the expiry date as YYYY-MM-DD") from None


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        return 0


@login_required
@require_http_methods(["GET", "POST"])
def project_reuse(request: HttpRequest, code: str) -> HttpResponse:
    """Bring subjects of another project into this one under a reuse agreement (site admins only).

    The admin names the source project and its subject IDs (as the researchers agreed them) and never sees
    the patients: the result lists only the new subject IDs.
    """
    acc = Access.of(request)
    acc.require_site_admin("reuse")
    project = Project.objects.filter(code=code).first()
    if project is None:
        acc.record("reuse", "project", code, "not_found")
        from django.http import Http404

        raise Http404("no such project")
    result: list[str] = []
    if request.method == "POST":
        try:
            result = _reuse(acc, project, request)
            messages.success(request, f"brought {len(result)} subject(s) into {project.code}")
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
    return render(
        request,
        "projects/reuse.html",
        {"project": project, "result": result, "sources": Project.objects.exclude(pk=project.pk)},
    )


def _reuse(acc: Access, project: Project, request: HttpRequest) -> list[str]:
    agreement = request.POST.get("agreement", "").strip()[:200]
    if not agreement:
        raise ValidationError("a reuse needs the agreement reference")
    source = Project.objects.filter(code=request.POST.get("source", "")).first()
    if source is None or source == project:
        raise ValidationError("choose the project the data comes from")
    wanted = [
        s.strip() for s in request.POST.get("subjects", "").replace(",", "\n").splitlines() if s.strip()
    ]
    subjects = list(
        ProjectSubject.objects.filter(project=source, subject_id__in=wanted).prefetch_related("plans__plan")
    )
    missing = set(wanted) - {s.subject_id for s in subjects}
    if missing or not wanted:
        raise ValidationError(f"not in {source.code}: {', '.join(sorted(missing)) or 'no subject IDs given'}")
    created = []
    try:
        with transaction.atomic():
            for s in subjects:
                if s.whole_patient:
                    created.append(
                        assign_patient(
                            project, s.patient, actor=acc.label, agreement=agreement, actor_is_site_admin=True
                        ).subject_id
                    )
                    continue
                plans = [
                    assign_plan(
                        project, item.plan, actor=acc.label, agreement=agreement, actor_is_site_admin=True
                    )
                    for item in s.plans.all()
                ]
                created += sorted({item.subject.subject_id for item in plans})
    except AssignmentRefused as exc:
        raise ValidationError(exc.messages) from None
    acc.record_many(
        "reuse",
        "patient",
        [s.patient_id for s in subjects],
        "allowed",
        project=project,
        source=source.code,
        agreement=agreement,
    )
    return created

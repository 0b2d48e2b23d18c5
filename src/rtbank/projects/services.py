"""Project verbs shared by the CLI, the web and the worker: people, projects, grants, assignment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from rtbank.catalog.indexing import AUDIT_ISSUER
from rtbank.catalog.models import Instance, InstanceState, Patient
from rtbank.eventlog.services import log_event
from rtbank.institutions.models import Institution, InstitutionRole, UserProfile
from rtbank.institutions.services import check_roles, institution_by_code
from rtbank.projects.models import (
    AssignedVia,
    Grant,
    Permission,
    Project,
    ProjectPlan,
    ProjectSubject,
)


def add_user(
    username: str,
    *,
    password: str | None,
    email: str = "",
    institution: str | None = None,
    roles: Iterable[str] = (),
    site_admin: bool = False,
    actor: str,
) -> User:
    check_roles(roles, InstitutionRole.values)
    inst = institution_by_code(institution)
    if roles and inst is None:
        raise ValidationError("institution roles need --institution")
    if User.objects.filter(username=username).exists():
        raise ValidationError(f"user {username!r} exists already")
    with transaction.atomic():
        user = User.objects.create_user(
            username, email, password, is_superuser=site_admin, is_staff=site_admin
        )
        if password is None:
            user.set_unusable_password()
            user.save()
        UserProfile.objects.create(user=user, institution=inst, roles=sorted(set(roles)))
        log_event(
            "admin",
            "user_added",
            actor=actor,
            object_type="user",
            object_id=user.pk,
            details={"institution": institution, "roles": sorted(set(roles)), "site_admin": site_admin},
        )
    return user


def add_project(
    code: str,
    *,
    name: str,
    renew_by: dt.date,
    institutions: Iterable[str] = (),
    actor: str,
    description: str = "",
    principal_investigator: str = "",
    ae_title: str = "",
    subject_prefix: str = "",
) -> Project:
    project = Project(
        code=code,
        name=name,
        renew_by=renew_by,
        description=description,
        principal_investigator=principal_investigator,
        ae_title=ae_title.strip(),
        subject_prefix=subject_prefix or code,
    )
    project.full_clean()
    found = list(Institution.objects.filter(code__in=list(institutions)))
    missing = set(institutions) - {i.code for i in found}
    if missing:
        raise ValidationError(f"no institution(s) {', '.join(sorted(missing))}")
    with transaction.atomic():
        project.save()
        project.institutions.set(found)
        log_event("admin", "project_added", actor=actor, object_type="project", object_id=code)
    return project


def grant(
    user: User, project: Project, permissions: Iterable[str], until: dt.date, *, actor: str
) -> list[Grant]:
    """Give (or renew until ``until``) each permission; unknown names are refused, nothing half-done."""
    perms = sorted(set(permissions))
    unknown = set(perms) - set(Permission.values)
    if unknown:
        raise ValidationError(
            f"unknown permission(s) {', '.join(sorted(unknown))}; use {', '.join(Permission.values)}"
        )
    grants = []
    with transaction.atomic():
        for perm in perms:
            g, _ = Grant.objects.update_or_create(
                user=user,
                project=project,
                permission=perm,
                defaults={"expires_on": until, "granted_by": actor},
            )
            grants.append(g)
        log_event(
            "admin",
            "grant",
            actor=actor,
            object_type="user",
            object_id=user.pk,
            details={"project": project.code, "permissions": perms, "until": until.isoformat()},
        )
    return grants


def revoke(user: User, project: Project, permissions: Iterable[str], *, actor: str) -> int:
    deleted, _ = Grant.objects.filter(user=user, project=project, permission__in=list(permissions)).delete()
    log_event(
        "admin",
        "revoke",
        actor=actor,
        object_type="user",
        object_id=user.pk,
        details={"project": project.code, "permissions": sorted(permissions)},
    )
    return deleted


class AssignmentRefused(ValidationError):
    """The assignment needs another route (e.g. a site admin with a reuse agreement)."""


def assign_patient(
    project: Project,
    patient: Patient,
    *,
    actor: str,
    via: str = AssignedVia.PERSON,
    agreement: str = "",
    actor_is_site_admin: bool = False,
) -> ProjectSubject:
    """Put all of a patient's data (now and later) into ``project``."""
    with transaction.atomic():
        subject = _subject_for(
            project,
            patient,
            actor=actor,
            via=via,
            agreement=agreement,
            actor_is_site_admin=actor_is_site_admin,
        )
        if not subject.whole_patient:
            ProjectSubject.objects.filter(pk=subject.pk).update(whole_patient=True)
            subject.whole_patient = True
        log_event(
            "projects",
            "assigned_patient",
            actor=actor,
            object_type="patient",
            object_id=patient.pk,
            details={"project": project.code, "via": via, "agreement": agreement},
        )
    return subject


def assign_plan(
    project: Project,
    plan: Instance,
    *,
    actor: str,
    via: str = AssignedVia.PERSON,
    agreement: str = "",
    actor_is_site_admin: bool = False,
) -> ProjectPlan:
    """Put a plan and its bundle (structure set, CT, doses, records, registrations…) into ``project``."""
    if plan.kind not in ("plan", "ion_plan") or plan.state != InstanceState.CURRENT or plan.series_id is None:
        raise ValidationError("only a current treatment plan can be assigned as a plan")
    patient = plan.series.study.patient
    with transaction.atomic():
        subject = _subject_for(
            project,
            patient,
            actor=actor,
            via=via,
            agreement=agreement,
            actor_is_site_admin=actor_is_site_admin,
        )
        item, created = ProjectPlan.objects.get_or_create(
            subject=subject,
            plan=plan,
            defaults={"assigned_via": via, "assigned_by": actor, "agreement": agreement},
        )
        if created:
            log_event(
                "projects",
                "assigned_plan",
                actor=actor,
                object_type="instance",
                object_id=plan.pk,
                details={"project": project.code, "via": via, "agreement": agreement},
            )
    return item


def _subject_for(
    project: Project, patient: Patient, *, actor: str, via: str, agreement: str, actor_is_site_admin: bool
) -> ProjectSubject:
    if patient.issuer.startswith(AUDIT_ISSUER):
        raise AssignmentRefused(
            "this is data an audit participant sent back, not clinical data: it stays with its audit"
        )
    existing = ProjectSubject.objects.filter(project=project, patient=patient).first()
    if existing:
        return existing
    elsewhere = ProjectSubject.objects.filter(patient=patient).exclude(project=project).exists()
    if (
        elsewhere
        and via in (AssignedVia.PERSON, AssignedVia.REUSE)
        and not (actor_is_site_admin and agreement)
    ):
        raise AssignmentRefused(
            "this patient's data is already in another project: "
            "reuse is a site-admin action with an agreement reference"
        )
    for _ in range(5):
        try:
            with transaction.atomic():
                return ProjectSubject.objects.create(
                    project=project,
                    patient=patient,
                    subject_id=_new_subject_id(project, patient),
                    assigned_via=AssignedVia.REUSE if elsewhere and via == AssignedVia.PERSON else via,
                    assigned_by=actor,
                    agreement=agreement,
                )
        except IntegrityError:
            continue  # another assignment took the same number: take the next one
    raise ValidationError("could not allocate a subject ID")


def _new_subject_id(project: Project, patient: Patient) -> str:
    """The Clinical Trial Subject ID the data carries, when free in the project; else PREFIX-0001, …"""
    carried = (
        Instance.objects.filter(series__study__patient=patient)
        .exclude(trial_subject_id="")
        .values_list("trial_subject_id", flat=True)
        .first()
    )
    taken = set(ProjectSubject.objects.filter(project=project).values_list("subject_id", flat=True))
    if carried and carried not in taken:
        return carried
    prefix = project.subject_prefix or project.code
    n = len(taken) + 1
    while f"{prefix}-{n:04d}" in taken:
        n += 1
    return f"{prefix}-{n:04d}"


# --- reminders (called daily by the scheduler) ------------------------------------------------------------
def remind_expiring_grants(today: dt.date | None = None, *, days: int | None = None) -> int:
    """Tell people whose access ends soon, and the project's member managers; remind of project renewals.

    The scheduler calls this once a day. A grant expiring within ``days`` (default ``GRANT_REMIND_DAYS``)
    gets one reminder per expiry date (renewing it to a new date arms a new reminder); a project whose
    ``renew_by`` falls within 30 days reminds its member managers and the site admins once per date.
    Returns the number of notifications stored. Texts name projects and people, never patients.
    """
    from django.conf import settings
    from django.db.models import F

    from rtbank.notifications.services import notify
    from rtbank.projects.access import active_projects

    day = today or timezone.localdate()
    horizon = day + dt.timedelta(days=settings.GRANT_REMIND_DAYS if days is None else days)
    due = (
        Grant.objects.filter(
            expires_on__gte=day,
            expires_on__lte=horizon,
            user__is_active=True,
            project__in=active_projects(day),
        )
        .exclude(reminded_for=F("expires_on"))
        .select_related("user", "project")
        .order_by("project_id", "user_id", "permission")
    )
    groups: dict[tuple[int, int, dt.date], list[Grant]] = {}
    for g in due:
        groups.setdefault((g.project_id, g.user_id, g.expires_on), []).append(g)
    sent = 0
    for (_project_id, _user_id, expires), grants in groups.items():
        project, user = grants[0].project, grants[0].user
        names = ", ".join(g.permission for g in grants)
        sent += len(
            notify(
                [user],
                "grant_expiring",
                f"Your access to {project.code} ends on {expires:%Y-%m-%d}",
                f"Your permissions on project {project.code} ({project.name}) — {names} — end on "
                f"{expires:%Y-%m-%d}. Ask the project's manager to renew them if you still need them.",
                url=f"/projects/{project.code}/",
            )
        )
        managers = _member_managers(project, day).exclude(pk=user.pk)
        sent += len(
            notify(
                managers,
                "grant_expiring",
                f"{user.get_username()}'s access to {project.code} ends on {expires:%Y-%m-%d}",
                f"{user.get_username()} holds {names} on {project.code} until {expires:%Y-%m-%d}. "
                f"Renew or let it lapse on the members page.",
                url=f"/projects/{project.code}/members/",
            )
        )
        Grant.objects.filter(pk__in=[g.pk for g in grants]).update(reminded_for=expires)
    for project in (
        active_projects(day)
        .filter(renew_by__lte=day + dt.timedelta(days=30))
        .exclude(renewal_reminded_for=F("renew_by"))
    ):
        people = _member_managers(project, day, with_site_admins=True)
        sent += len(
            notify(
                people,
                "project_renewal",
                f"Project {project.code} must be renewed by {project.renew_by:%Y-%m-%d}",
                f"Project {project.code} ({project.name}) is renewed until {project.renew_by:%Y-%m-%d}. "
                "If it is not renewed by then, every grant on it is suspended.",
                url=f"/projects/{project.code}/members/",
            )
        )
        Project.objects.filter(pk=project.pk).update(renewal_reminded_for=project.renew_by)
    return sent


def _member_managers(project: Project, day: dt.date, *, with_site_admins: bool = False):  # noqa: ANN202
    """Active people holding a live ``members`` grant on ``project`` (and the site admins, if asked)."""
    from django.db.models import Q

    managers = Q(grants__project=project, grants__permission=Permission.MEMBERS, grants__expires_on__gte=day)
    if with_site_admins:
        managers |= Q(is_superuser=True)
    return User.objects.filter(managers, is_active=True).distinct()

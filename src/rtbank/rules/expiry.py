"""Grants past their expiry and projects past their renewal date are suspended — recorded and announced.

The access helper already ignores such grants (:func:`rtbank.projects.access.live_grants`); this job
records each suspension once (:class:`ExpiryNotice`, an event-log row) and tells the people concerned.
Reminders *before* the date are the projects area's (``rtbank.projects.services.remind_expiring_grants``),
run by this same daily job.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from rtbank.eventlog.services import log_event
from rtbank.notifications.events import Event
from rtbank.notifications.services import notify
from rtbank.projects.models import Grant, Project, ProjectStatus
from rtbank.projects.services import remind_expiring_grants
from rtbank.rules.models import ExpiryNotice

logger = logging.getLogger("rtbank.expiry")


def run_scheduled(period: str) -> dict[str, Any]:
    """Scheduled job ``expiry``: the projects area's reminders, then today's suspensions."""
    today = timezone.localdate()
    reminders = remind_expiring_grants(today)
    return {"reminders": reminders, **record_suspensions(today)}


def record_suspensions(today: dt.date | None = None) -> dict[str, int]:
    today = today or timezone.localdate()
    announce_since = today - dt.timedelta(days=settings.SUSPENSION_NOTICE_DAYS)
    grants = projects = 0
    for grant in Grant.objects.filter(expires_on__lt=today).select_related("user", "project").order_by("pk"):
        if _record(
            "grant_suspended",
            f"grant:{grant.pk}",
            grant.expires_on,
            grant=grant,
            project=grant.project,
            user=grant.user,
            details={"permission": grant.permission},
        ):
            grants += 1
            if grant.expires_on >= announce_since and not grant.project.is_suspended(today):
                notify(
                    [grant.user],
                    Event.ACCESS_SUSPENDED,
                    f"Your '{grant.permission}' access to {grant.project.code} has ended",
                    f"Your '{grant.permission}' permission on project {grant.project.code} expired on "
                    f"{grant.expires_on:%Y-%m-%d}. "
                    "Ask the project's manager to renew it if you still need it.",
                    url=f"/projects/{grant.project.code}/",
                )
    for project in (
        Project.objects.filter(renew_by__lt=today).exclude(status=ProjectStatus.ARCHIVED).order_by("pk")
    ):
        if _record("project_suspended", f"project:{project.pk}", project.renew_by, project=project):
            projects += 1
            if project.renew_by >= announce_since:
                _announce_project(project)
    return {"grants_suspended": grants, "projects_suspended": projects}


def _record(kind: str, key: str, for_date: dt.date, **fields: Any) -> bool:
    """Record one suspension; False if it was recorded before (the job runs daily, N workers)."""
    try:
        with transaction.atomic():
            ExpiryNotice.objects.create(kind=kind, object_key=key, for_date=for_date, **fields)
    except IntegrityError:
        return False
    log_event(
        "expiry",
        kind,
        actor="scheduler",
        object_type=key.split(":")[0],
        object_id=key.split(":")[1],
        details={"date": for_date.isoformat()},
    )
    return True


def _announce_project(project: Project) -> None:
    """Everyone who held a grant on the project, and the site admins (who renew projects)."""
    holders = Grant.objects.filter(project=project).values("user_id")
    people = User.objects.filter(is_active=True).filter(pk__in=holders) | User.objects.filter(
        is_superuser=True, is_active=True
    )
    notify(
        people.distinct(),
        Event.ACCESS_SUSPENDED,
        f"Project {project.code} is suspended: not renewed",
        f"Project {project.code} ({project.name}) was due for renewal on {project.renew_by:%Y-%m-%d}. "
        f"Every grant "
        f"on it is suspended until a site admin renews the project.",
        url=f"/projects/{project.code}/",
    )

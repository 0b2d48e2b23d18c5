"""Member management on the web: who may give which permission, until when.

The rules (on top of :func:`rtbank.projects.services.grant`, which the CLI uses with operator authority):

* people with ``members`` on a project give, renew and revoke grants there; site admins on any project;
* nobody gives more than they hold: a member manager grants only permissions they hold themselves
  (``identifiers`` therefore stays with whoever was deliberately given it); site admins grant any;
* a grant runs at most ``GRANT_MAX_DAYS`` from today and never starts in the past;
* revoking is always allowed to a member manager (it only ever reduces access).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError

from rtbank.projects import services
from rtbank.projects.access import Access, today
from rtbank.projects.models import ROLE_BUNDLES, Grant, Permission, Project


@dataclass
class Member:
    user: User
    grants: list[Grant] = field(default_factory=list)

    @property
    def permissions(self) -> list[str]:
        return [g.permission for g in self.grants]

    @property
    def expires_on(self) -> dt.date | None:
        return min((g.expires_on for g in self.grants), default=None)

    def live(self, on: dt.date) -> bool:
        return any(g.expires_on >= on for g in self.grants)


def members_of(project: Project) -> list[Member]:
    by_user: dict[int, Member] = {}
    for g in (
        Grant.objects.filter(project=project).select_related("user").order_by("user__username", "permission")
    ):
        by_user.setdefault(g.user_id, Member(g.user)).grants.append(g)
    return list(by_user.values())


def grantable(access: Access, project: Project) -> list[str]:
    """Permissions this person may give on ``project``."""
    if access.site_admin:
        return list(Permission.values)
    return [p for p in Permission.values if access.has(project, p)]


def expand(names: Iterable[str]) -> list[str]:
    """Permission names, with role bundles (viewer, analyst, manager) expanded."""
    out: list[str] = []
    for name in names:
        out += ROLE_BUNDLES.get(name, [name])
    return sorted(set(out))


def check_until(until: dt.date) -> None:
    day = today()
    if until < day:
        raise ValidationError("the expiry date is in the past")
    if until > day + dt.timedelta(days=settings.GRANT_MAX_DAYS):
        raise ValidationError(f"a grant runs at most {settings.GRANT_MAX_DAYS} days; choose an earlier date")


def give(
    access: Access, project: Project, username: str, permissions: Iterable[str], until: dt.date
) -> list[Grant]:
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationError(f"no active user {username!r}")
    wanted = expand(permissions)
    if not wanted:
        raise ValidationError("choose a role or at least one permission")
    beyond = set(wanted) - set(grantable(access, project))
    if beyond:
        raise ValidationError(f"you cannot give permissions you do not hold: {', '.join(sorted(beyond))}")
    check_until(until)
    return services.grant(user, project, wanted, until, actor=access.label)


def renew(access: Access, project: Project, user: User, until: dt.date) -> list[Grant]:
    """Extend every permission ``user`` holds on ``project`` that this person may give."""
    held = list(Grant.objects.filter(project=project, user=user).values_list("permission", flat=True))
    mine = set(grantable(access, project))
    renewable = [p for p in held if p in mine]
    if not renewable:
        raise ValidationError("nothing you may renew")
    check_until(until)
    return services.grant(user, project, renewable, until, actor=access.label)


def revoke(access: Access, project: Project, user: User, permissions: Iterable[str] | None = None) -> int:
    names = list(permissions) if permissions else list(Permission.values)
    return services.revoke(user, project, names, actor=access.label)

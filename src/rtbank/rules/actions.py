"""A rule's actions on one target, each recorded as a :class:`RuleFiring` (rule, action, target) once.

A firing that is ``done`` never runs again (firing twice has no extra effect); one that was refused, failed
or is waiting is tried again at the next evaluation. The one exception is by design: a forward that is
done sends the target's *late* objects when they arrive (its outbox entry only sends what the destination
has not received).
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone

from rtbank.catalog.models import Instance, Patient
from rtbank.institutions.models import Node, UserProfile
from rtbank.notifications.events import Event
from rtbank.notifications.services import notify
from rtbank.projects.models import AssignedVia, Grant, Permission, Project, ProjectStatus, ProjectSubject
from rtbank.projects.services import assign_patient, assign_plan
from rtbank.rules import outbox
from rtbank.rules.engine import Target, outside_project
from rtbank.rules.models import FiringOutcome, Forward, Rule, RuleFiring

logger = logging.getLogger("rtbank.rules")
SITE_ROLES = ("site_admin", "data_manager")  # who site-wide rules may notify by role
PROJECT_ROLES = tuple(p.value for p in Permission) + ("data_manager",)


def fire(rule: Rule, target: Target) -> int:
    """Run the rule's actions on ``target``; returns how many firings became done now."""
    if target.waiting:
        _record(
            rule, "match", target, FiringOutcome.WAITING, "matching object(s) not referenced by a plan yet"
        )
        return 0
    outside = outside_project(rule, target)
    if outside:
        message = f"{outside} object(s) come from outside the project's institutions and AE title"
        for action in rule.actions:
            _record(rule, _action_key(action), target, FiringOutcome.REFUSED, message)
        return 0
    done = 0
    for action in rule.actions:
        key = _action_key(action)
        firing = RuleFiring.objects.filter(rule=rule, action=key, target=target.key).first()
        if firing is not None and firing.outcome == FiringOutcome.DONE:
            if firing.forward_id and action["type"] == "forward":
                outbox.refresh(Forward.objects.get(pk=firing.forward_id))
            continue
        outcome, message, forward = _run(rule, action, target)
        _record(rule, key, target, outcome, message, forward=forward)
        done += outcome == FiringOutcome.DONE
    return done


def settle_waiting(rule: Rule, patient_id: int) -> None:
    """A patient's matching objects are all in plans now: its "waiting" firing is resolved."""
    RuleFiring.objects.filter(
        rule=rule, action="match", target=f"patient:{patient_id}", outcome=FiringOutcome.WAITING
    ).update(
        outcome=FiringOutcome.DONE, message="the matching objects are in a plan now", fired_at=timezone.now()
    )


def _run(rule: Rule, action: dict[str, Any], target: Target) -> tuple[str, str, Forward | None]:
    try:
        if action["type"] == "assign":
            return (*_assign(rule, action, target), None)
        if action["type"] == "forward":
            return _forward(rule, action, target)
        if action["type"] == "notify":
            return (*_notify(rule, action, target), None)
        return FiringOutcome.ERROR, f"unknown action {action.get('type')!r}", None
    except ValidationError as exc:
        return FiringOutcome.REFUSED, "; ".join(exc.messages)[:500], None


def _assign(rule: Rule, action: dict[str, Any], target: Target) -> tuple[str, str]:
    project = rule.project or Project.objects.filter(pk=action.get("project")).first()
    if project is None:
        return FiringOutcome.ERROR, "the project to assign to no longer exists"
    if project.status != ProjectStatus.COLLECTING or project.is_suspended():
        return FiringOutcome.REFUSED, f"project {project.code} is not collecting data"
    actor = f"rule:{rule.pk}"
    if target.plan_id is not None:
        plan = Instance.objects.get(pk=target.plan_id)
        item = assign_plan(project, plan, actor=actor, via=AssignedVia.RULE)
        subject, what = (
            item.subject,
            f"plan {getattr(getattr(plan, 'plan', None), 'label', '') or '#' + str(plan.pk)}",
        )
    else:
        subject = assign_patient(
            project, Patient.objects.get(pk=target.patient_id), actor=actor, via=AssignedVia.RULE
        )
        what = "all data of the patient"
    people = _holders(project, [Permission.RULES, Permission.MEMBERS])
    notify(
        people,
        Event.RULE_ASSIGNED,
        f"Rule '{rule.name}' assigned data to {project.code}",
        f"Trigger rule '{rule.name}' put {what} of subject {subject.subject_id} into project {project.code}.",
        url=f"/projects/{project.code}/rules/{rule.pk}/" if rule.project_id else "/rules/site/",
    )
    return FiringOutcome.DONE, f"{what} in {project.code} as {subject.subject_id}"


def _forward(rule: Rule, action: dict[str, Any], target: Target) -> tuple[str, str, Forward | None]:
    node = Node.objects.filter(pk=action.get("node")).first()
    if node is None:
        return FiringOutcome.ERROR, "the destination node no longer exists", None
    origin_key = f"rule:{rule.pk}:node:{node.pk}:{target.key}"
    common = {
        "project": rule.project,
        "actor": f"rule:{rule.pk}",
        "origin": f"rule:{rule.pk}",
        "origin_key": origin_key,
        "only_new": True,
    }
    if target.plan_id is not None:
        forward = outbox.send_plan(node, Instance.objects.get(pk=target.plan_id), **common)
    else:
        forward = outbox.send_patient(node, Patient.objects.get(pk=target.patient_id), **common)
    return FiringOutcome.DONE, f"queued to {node.name} (outbox #{forward.pk})", forward


def _notify(rule: Rule, action: dict[str, Any], target: Target) -> tuple[str, str]:
    people = recipients(rule, action, target)
    if not people:
        return FiringOutcome.REFUSED, "nobody to notify (no live grant or role holder)"
    label = _label(rule, target)
    where = f"project {rule.project.code}" if rule.project else "the site"
    notify(
        people,
        Event.RULE_MATCHED,
        f"Rule '{rule.name}' matched {label}",
        f"Trigger rule '{rule.name}' of {where} matched {label} "
        f"({'a plan bundle' if target.plan_id else 'a patient'}) on {timezone.localtime():%Y-%m-%d %H:%M}.",
        url=f"/projects/{rule.project.code}/rules/{rule.pk}/" if rule.project else "/rules/site/",
    )
    return FiringOutcome.DONE, f"notified {len(people)} person(s)"


def recipients(rule: Rule, action: dict[str, Any], target: Target | None) -> list[User]:
    """Users and role holders of a notify action; for a project rule only people with a live grant there."""
    people = {u.pk: u for u in User.objects.filter(pk__in=action.get("users", []), is_active=True)}
    roles = set(action.get("roles", []))
    if rule.project is not None:
        for user in _holders(rule.project, [r for r in roles if r in Permission.values]):
            people[user.pk] = user
        allowed = set(_holders(rule.project, list(Permission.values)).values_list("pk", flat=True))
        people = {pk: u for pk, u in people.items() if pk in allowed}
    elif "site_admin" in roles:
        for user in User.objects.filter(is_superuser=True, is_active=True):
            people[user.pk] = user
    if "data_manager" in roles and target is not None:
        institution = (
            Patient.objects.filter(pk=target.patient_id).values_list("institution_id", flat=True).first()
        )
        managers = (
            UserProfile.objects.filter(institution_id=institution).select_related("user")
            if institution
            else []
        )
        for profile in managers:
            if profile.has_role("data_manager") and profile.user.is_active:
                people[profile.user_id] = profile.user
    return list(people.values())


def _holders(project: Project, permissions: list[str]):  # noqa: ANN202 - a User queryset
    today = timezone.localdate()
    granted = Grant.objects.filter(project=project, permission__in=permissions, expires_on__gte=today).values(
        "user_id"
    )
    return User.objects.filter(pk__in=granted, is_active=True)


def _label(rule: Rule, target: Target) -> str:
    """How a message names the target: its subject ID in the rule's project, never a patient ID or name."""
    if rule.project is not None:
        subject = ProjectSubject.objects.filter(project=rule.project, patient_id=target.patient_id).first()
        if subject is not None:
            return f"subject {subject.subject_id}"
    return f"patient #{target.patient_id} (not yet in a project)"


def _action_key(action: dict[str, Any]) -> str:
    if action.get("type") == "forward":
        return f"forward:{action.get('node')}"
    return str(action.get("type"))[:48]


def _record(
    rule: Rule, action: str, target: Target, outcome: str, message: str, *, forward: Forward | None = None
) -> RuleFiring:
    firing, _ = RuleFiring.objects.update_or_create(
        rule=rule,
        action=action,
        target=target.key,
        defaults={
            "patient_id": target.patient_id,
            "plan_id": target.plan_id,
            "matched_id": target.matched_id,
            "outcome": outcome,
            "message": message[:500],
            "rule_version": rule.version,
            **({"forward": forward} if forward is not None else {}),
        },
    )
    return firing

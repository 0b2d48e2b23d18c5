"""Rule verbs shared by the web and the CLI: who may write which rule, saving, deleting, firings of data.

Writing rules is an authorisation decision: a project rule needs ``rules`` on the project (and ``forward``
when it forwards, to a node on the project's allow-list; it notifies only people with a grant there); a
site-wide rule is written by site admins only. The checks live here so that every entry point applies them.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet

from rtbank.eventlog.services import log_event
from rtbank.institutions.models import Node, NodeRole
from rtbank.projects.access import Access
from rtbank.projects.models import Permission, Project, ProjectStatus
from rtbank.rules.actions import PROJECT_ROLES, SITE_ROLES
from rtbank.rules.conditions import RuleError, parse
from rtbank.rules.models import Rule, RuleFiring, RuleScope

MAX_ACTIONS = 10


def may_write(access: Access, project: Project | None) -> bool:
    if project is None:
        return access.site_admin
    return access.has(project, Permission.RULES)


def save_rule(
    access: Access,
    *,
    rule: Rule | None,
    project: Project | None,
    name: str,
    scope: str,
    conditions: dict[str, Any],
    actions: list[dict[str, Any]],
    enabled: bool,
    description: str = "",
) -> Rule:
    """Create or change a rule after every check; raises ``PermissionDenied`` or ``ValidationError``."""
    if rule is not None and rule.project_id != (project.pk if project else None):
        raise PermissionDenied("a rule stays with its project")
    if not may_write(access, project):
        raise PermissionDenied(
            "only site admins write site-wide rules"
            if project is None
            else f"you need the 'rules' permission on {project.code}"
        )
    if not name.strip():
        raise ValidationError("a rule needs a name")
    if scope not in RuleScope.values:
        raise ValidationError(f"scope must be one of {', '.join(RuleScope.values)}")
    try:
        parse(conditions)
    except RuleError as exc:
        raise ValidationError(str(exc)) from None
    cleaned = clean_actions(access, project, actions)
    with transaction.atomic():
        if rule is None:
            rule = Rule(project=project, created_by=access.label)
        changed = rule.pk is None or (rule.conditions, rule.actions, rule.scope) != (
            conditions,
            cleaned,
            scope,
        )
        rule.name, rule.description, rule.scope = name.strip()[:120], description, scope
        rule.conditions, rule.actions, rule.enabled, rule.updated_by = (
            conditions,
            cleaned,
            enabled,
            access.label,
        )
        if changed and rule.pk is not None:
            rule.version += 1
        rule.save()
        log_event(
            "rules",
            "rule_saved",
            actor=access.label,
            object_type="rule",
            object_id=rule.pk,
            details={
                "project": project.code if project else None,
                "enabled": enabled,
                "version": rule.version,
            },
        )
    return rule


def clean_actions(
    access: Access, project: Project | None, actions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    if not actions:
        raise ValidationError("a rule needs at least one action (assign, forward or notify)")
    if len(actions) > MAX_ACTIONS:
        raise ValidationError(f"a rule has at most {MAX_ACTIONS} actions")
    cleaned = [_clean_action(access, project, a) for a in actions]
    keys = [(a["type"], a.get("node")) for a in cleaned]
    if len(keys) != len(set(keys)):
        raise ValidationError("each action appears once (one forward per destination)")
    return cleaned


def _clean_action(access: Access, project: Project | None, action: dict[str, Any]) -> dict[str, Any]:
    kind = action.get("type")
    if kind == "assign":
        if project is not None:
            return {"type": "assign"}
        target = Project.objects.filter(pk=action.get("project")).first()
        if target is None or target.status != ProjectStatus.COLLECTING:
            raise ValidationError("a site-wide assign names a collecting project")
        return {"type": "assign", "project": target.pk}
    if kind == "forward":
        node = Node.objects.filter(pk=action.get("node")).first()
        if node is None:
            raise ValidationError("a forward names an existing destination node")
        if project is not None:
            if not access.has(project, Permission.FORWARD):
                raise PermissionDenied(f"forwarding rules need the 'forward' permission on {project.code}")
            if not project.destinations.filter(pk=node.pk).exists():
                raise ValidationError(f"{node.name} is not on the destination list of {project.code}")
        elif not node.has_role(NodeRole.DEST):
            raise ValidationError(f"{node.name} is not a forwarding destination (role 'dest')")
        return {"type": "forward", "node": node.pk}
    if kind == "notify":
        return _clean_notify(project, action)
    raise ValidationError(f"unknown action {kind!r}; use assign, forward or notify")


def _clean_notify(project: Project | None, action: dict[str, Any]) -> dict[str, Any]:
    from django.contrib.auth.models import User

    from rtbank.projects.access import live_grants

    roles = sorted({str(r) for r in action.get("roles", [])})
    allowed_roles = PROJECT_ROLES if project is not None else SITE_ROLES
    unknown = set(roles) - set(allowed_roles)
    if unknown:
        raise ValidationError(f"unknown role(s) {', '.join(sorted(unknown))}; use {', '.join(allowed_roles)}")
    users = sorted({int(u) for u in action.get("users", [])})
    found = list(User.objects.filter(pk__in=users, is_active=True))
    if len(found) != len(users):
        raise ValidationError("a notified person does not exist or is inactive")
    if project is not None:
        outsiders = [u.get_username() for u in found if not live_grants(u).filter(project=project).exists()]
        if outsiders:
            raise ValidationError(
                f"{', '.join(outsiders)} hold(s) no grant on {project.code}: a rule never tells "
                "outsiders about project data"
            )
    if not users and not roles:
        raise ValidationError("a notify action names people or roles")
    return {"type": "notify", "users": users, "roles": roles}


def delete_rule(access: Access, rule: Rule) -> None:
    if not may_write(access, rule.project):
        raise PermissionDenied("you may not delete this rule")
    log_event(
        "rules",
        "rule_deleted",
        actor=access.label,
        object_type="rule",
        object_id=rule.pk,
        details={"project": rule.project.code if rule.project else None, "name": rule.name},
    )
    rule.delete()


def firings_of_patient(patient_id: int, *, projects: list[Project] | None = None) -> QuerySet[RuleFiring]:
    """Firings on a patient's data; with ``projects``, only those of rules of these projects (and site rules
    that assigned into them), for pages shown to project members."""
    qs = RuleFiring.objects.filter(patient_id=patient_id).select_related("rule", "rule__project", "forward")
    if projects is not None:
        qs = qs.filter(rule__project__in=projects)
    return qs.order_by("-fired_at", "-id")

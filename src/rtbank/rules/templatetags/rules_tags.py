"""Template tags of the rule panels (the project, subject and plan pages render them; see
rtbank.web.panels)."""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import QuerySet

from rtbank.institutions.models import Node
from rtbank.projects.access import Access
from rtbank.projects.models import Permission, Project, ProjectSubject
from rtbank.rules import outbox
from rtbank.rules.models import Forward, Rule, RuleFiring

register = template.Library()


@register.filter
def get_item(mapping: dict, key: Any) -> Any:
    return mapping.get(key) if mapping else None


@register.filter
def split(text: str) -> list[str]:
    return text.split()


@register.filter
def may_forward(access: Access, project: Project) -> bool:
    return access.has(project, Permission.FORWARD)


@register.simple_tag
def project_rule_summary(project: Project, access: Access) -> dict[str, Any]:
    rules = Rule.objects.filter(project=project)
    may_forward = access.has(project, Permission.FORWARD)
    failed = 0
    if may_forward:
        failed = (
            outbox.with_state(Forward.objects.filter(project=project)).filter(work_state="failed").count()
        )
    return {
        "may_rules": access.has(project, Permission.RULES),
        "may_forward": may_forward,
        "rules": rules.count(),
        "enabled": rules.filter(enabled=True).count(),
        "failed": failed,
    }


@register.simple_tag
def subject_firings(project: Project, subject: ProjectSubject) -> QuerySet[RuleFiring]:
    """Firings of the project's rules on the subject's patient (the page already checked ``view``)."""
    return RuleFiring.objects.filter(rule__project=project, patient_id=subject.patient_id).select_related(
        "rule"
    )[:100]


@register.simple_tag
def plan_firings(project: Project, plan: Any) -> QuerySet[RuleFiring]:
    return RuleFiring.objects.filter(rule__project=project, plan=plan).select_related("rule")[:100]


@register.simple_tag
def destinations(project: Project) -> QuerySet[Node]:
    return project.destinations.all().order_by("name")

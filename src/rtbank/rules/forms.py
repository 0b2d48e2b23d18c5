"""The rule editor: condition rows (or JSON for nested groups) and actions, turned into a rule's JSON."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.db.models import QuerySet

from rtbank.institutions.models import Node, NodeRole
from rtbank.projects.access import active_projects
from rtbank.projects.models import Grant, Project, ProjectStatus
from rtbank.rules.actions import PROJECT_ROLES, SITE_ROLES
from rtbank.rules.conditions import ATTRIBUTE_OPS, CONTOURS, LEAF_TYPES
from rtbank.rules.models import Rule, RuleScope

ROWS_MIN = 4
VALUE_LIST_TYPES = ("modality", "sop_class", "calling_ae", "called_ae", "institution")
TYPE_LABELS = {
    "roi": "ROI name pattern",
    "attribute": "DICOM attribute (path)",
    "modality": "modality is one of",
    "sop_class": "SOP class UID is one of",
    "calling_ae": "calling AE title is one of",
    "called_ae": "called AE title is one of",
    "institution": "sending institution is one of",
    "study_date": "study date from (YYYY-MM-DD)",
}
TEST_CHOICES = [("", "—")] + [(c, f"ROI {c}") for c in CONTOURS] + [(op, op) for op in ATTRIBUTE_OPS]


class RuleForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    enabled = forms.BooleanField(
        required=False, help_text="a disabled rule does nothing (try it with a dry run first)"
    )
    scope = forms.ChoiceField(choices=RuleScope.choices)
    match = forms.ChoiceField(choices=[("all", "all conditions hold"), ("any", "any condition holds")])
    conditions_json = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "code"}),
        help_text=(
            "advanced: the whole condition tree as JSON (nested all/any groups); "
            "replaces the rows when filled"
        ),
    )
    assign = forms.BooleanField(required=False, label="assign to the project")
    assign_project = forms.ModelChoiceField(
        queryset=Project.objects.none(), required=False, label="assign to project (site-wide rules)"
    )
    forward_nodes = forms.ModelMultipleChoiceField(
        queryset=Node.objects.none(), required=False, widget=forms.CheckboxSelectMultiple, label="forward to"
    )
    notify_users = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(), required=False, label="notify people"
    )
    notify_roles = forms.MultipleChoiceField(
        choices=[], required=False, widget=forms.CheckboxSelectMultiple, label="notify holders of"
    )

    def __init__(self, *args: Any, project: Project | None, rule: Rule | None = None, **kwargs: Any) -> None:
        self.project = project
        initial = kwargs.pop("initial", None) or (initial_from_rule(rule) if rule else {})
        rows = max(ROWS_MIN, len(initial.get("rows", [])) + 2)
        super().__init__(*args, initial=initial, **kwargs)
        self.row_count = rows
        for i in range(rows):
            row = initial.get("rows", [])[i] if i < len(initial.get("rows", [])) else {}
            self.fields[f"c{i}_type"] = forms.ChoiceField(
                choices=[("", "—")] + list(TYPE_LABELS.items()), required=False, initial=row.get("type", "")
            )
            self.fields[f"c{i}_subject"] = forms.CharField(
                required=False, max_length=300, initial=row.get("subject", "")
            )
            self.fields[f"c{i}_test"] = forms.ChoiceField(
                choices=TEST_CHOICES, required=False, initial=row.get("test", "")
            )
            self.fields[f"c{i}_value"] = forms.CharField(
                required=False, max_length=300, initial=row.get("value", "")
            )
        self.fields["forward_nodes"].queryset = _nodes(project)
        self.fields["notify_users"].queryset = _people(project)
        roles = PROJECT_ROLES if project else SITE_ROLES
        self.fields["notify_roles"].choices = [(r, r.replace("_", " ")) for r in roles]
        if project is None:
            self.fields["assign_project"].queryset = active_projects().filter(status=ProjectStatus.COLLECTING)
            self.fields["assign"].label = "assign to the project below"
        else:
            del self.fields["assign_project"]

    def condition_rows(self) -> list[list[forms.BoundField]]:
        return [
            [self[f"c{i}_{part}"] for part in ("type", "subject", "test", "value")]
            for i in range(self.row_count)
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        text = (data.get("conditions_json") or "").strip()
        if text:
            try:
                data["conditions"] = json.loads(text)
            except json.JSONDecodeError as exc:
                raise forms.ValidationError(f"the conditions JSON does not parse: {exc}") from None
        else:
            leaves = [self._row(i) for i in range(self.row_count)]
            leaves = [leaf for leaf in leaves if leaf]
            if not leaves:
                raise forms.ValidationError("add at least one condition")
            data["conditions"] = {"type": data.get("match", "all"), "conditions": leaves}
        data["actions"] = self._actions(data)
        return data

    def _row(self, i: int) -> dict[str, Any] | None:
        kind = self.cleaned_data.get(f"c{i}_type") or ""
        subject = (self.cleaned_data.get(f"c{i}_subject") or "").strip()
        test = self.cleaned_data.get(f"c{i}_test") or ""
        value = (self.cleaned_data.get(f"c{i}_value") or "").strip()
        if not kind:
            return None
        if kind == "roi":
            return {"type": "roi", "pattern": subject, "contours": test if test in CONTOURS else "empty"}
        if kind == "attribute":
            op = test if test in ATTRIBUTE_OPS else "equals"
            return {"type": "attribute", "path": subject, "op": op, "value": value}
        if kind == "study_date":
            return {"type": "study_date", "from": subject or None, "to": value or None}
        return {"type": kind, "values": [v.strip() for v in subject.split(",") if v.strip()]}

    def _actions(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        actions: list[dict[str, Any]] = []
        if data.get("assign"):
            target = data.get("assign_project")
            actions.append({"type": "assign", **({"project": target.pk} if target is not None else {})})
        actions += [{"type": "forward", "node": node.pk} for node in data.get("forward_nodes") or []]
        users, roles = data.get("notify_users") or [], data.get("notify_roles") or []
        if users or roles:
            actions.append({"type": "notify", "users": [u.pk for u in users], "roles": list(roles)})
        return actions


def initial_from_rule(rule: Rule) -> dict[str, Any]:
    conditions = rule.conditions or {}
    children = conditions.get("conditions", [])
    flat = all(c.get("type") in LEAF_TYPES for c in children)
    initial: dict[str, Any] = {
        "name": rule.name,
        "description": rule.description,
        "enabled": rule.enabled,
        "scope": rule.scope,
        "match": conditions.get("type", "all"),
        "rows": [_row_initial(c) for c in children] if flat else [],
        "conditions_json": "" if flat else json.dumps(conditions, indent=1),
    }
    for action in rule.actions:
        if action["type"] == "assign":
            initial["assign"] = True
            initial["assign_project"] = action.get("project")
        elif action["type"] == "forward":
            initial.setdefault("forward_nodes", []).append(action["node"])
        elif action["type"] == "notify":
            initial["notify_users"], initial["notify_roles"] = (
                action.get("users", []),
                action.get("roles", []),
            )
    return initial


def _row_initial(c: dict[str, Any]) -> dict[str, str]:
    kind = c["type"]
    if kind == "roi":
        return {"type": kind, "subject": c.get("pattern", ""), "test": c.get("contours", "empty")}
    if kind == "attribute":
        return {
            "type": kind,
            "subject": c.get("path", ""),
            "test": c.get("op", "equals"),
            "value": c.get("value", ""),
        }
    if kind == "study_date":
        return {"type": kind, "subject": c.get("from") or "", "value": c.get("to") or ""}
    return {"type": kind, "subject": ", ".join(c.get("values", []))}


def _nodes(project: Project | None) -> QuerySet[Node]:
    if project is not None:
        return project.destinations.all().order_by("name")
    return Node.objects.filter(
        pk__in=[n.pk for n in Node.objects.all() if n.has_role(NodeRole.DEST)]
    ).order_by("name")


def _people(project: Project | None) -> QuerySet[User]:
    if project is None:
        return User.objects.filter(is_active=True).order_by("username")
    holders = Grant.objects.filter(project=project).values("user_id")
    return User.objects.filter(is_active=True, pk__in=holders).order_by("username")

"""Trigger rules: conditions on stored objects, actions on the patient or plan bundle they belong to."""

from __future__ import annotations

from django.db import models


class RuleScope(models.TextChoices):
    PLAN = "plan", "the plan bundle holding the matching object"
    PATIENT = "patient", "the whole patient"


class Rule(models.Model):
    """A trigger rule, owned by a project (``project`` set) or site-wide (written by site admins only).

    ``conditions`` is one group ``{"type": "all"|"any", "conditions": [...]}`` (see
    :mod:`rtbank.rules.conditions`); an object matches when the group holds for it. ``actions`` is a list
    of ``{"type": "assign"}``, ``{"type": "forward", "node": <id>}``, ``{"type": "notify", "users": [ids],
    "roles": [...]}``; site-wide rules name the project to assign to (``{"type": "assign", "project": id}``).
    ``version`` changes with every edit.
    """

    project = models.ForeignKey(
        "projects.Project",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="rules",
        help_text="empty: a site-wide rule",
    )
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=False)
    scope = models.CharField(max_length=16, choices=RuleScope.choices, default=RuleScope.PLAN)
    conditions = models.JSONField(default=dict)
    actions = models.JSONField(default=list)
    version = models.PositiveIntegerField(default=1)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project_id", "name", "id"]

    def __str__(self) -> str:
        return f"rule #{self.pk} {self.name}"

    @property
    def site_wide(self) -> bool:
        return self.project_id is None


class FiringOutcome(models.TextChoices):
    DONE = "done", "done"
    WAITING = "waiting", "matched; waiting for a plan that references the object"
    REFUSED = "refused", "refused"
    ERROR = "error", "error"


class RuleFiring(models.Model):
    """One action of one rule on one target (patient, plan, or a matching object still without a plan).

    ``(rule, action, target)`` is unique: firing again has no extra effect. A firing that is not ``done`` is
    tried again at the next evaluation (e.g. a refused target whose data later qualifies).
    """

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="firings")
    action = models.CharField(max_length=48, help_text="assign, forward:<node>, notify, match")
    target = models.CharField(max_length=48, help_text="patient:<id>, plan:<instance id> or instance:<id>")
    patient = models.ForeignKey(
        "catalog.Patient", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    plan = models.ForeignKey(
        "catalog.Instance", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    matched = models.ForeignKey(
        "catalog.Instance",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="the object that matched the conditions",
    )
    outcome = models.CharField(max_length=16, choices=FiringOutcome.choices)
    message = models.CharField(max_length=500, blank=True)
    rule_version = models.PositiveIntegerField(default=1)
    forward = models.ForeignKey(
        "rules.Forward", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_fired_at = models.DateTimeField(auto_now_add=True)
    fired_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "action", "target"], name="firing_unique")]
        indexes = [models.Index(fields=["patient", "fired_at"], name="firing_patient_idx")]
        ordering = ["-fired_at", "-id"]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.action} {self.target}: {self.outcome}"


class AttributeValue(models.Model):
    """An attribute (path) read from a stored file, kept so rules never read the same file twice."""

    instance = models.ForeignKey("catalog.Instance", on_delete=models.CASCADE, related_name="+")
    path = models.CharField(max_length=200)
    present = models.BooleanField()
    values = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["instance", "path"], name="attribute_value_unique")]

    def __str__(self) -> str:
        return f"{self.path} of {self.instance_id}"

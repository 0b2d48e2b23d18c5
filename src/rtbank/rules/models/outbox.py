"""The forwarding outbox: what is to be sent where, and what each destination has received."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ForwardScope(models.TextChoices):
    PLAN = "plan", "a plan bundle"
    PATIENT = "patient", "all objects of a patient"
    INSTANCES = "instances", "chosen objects"
    FILES = "files", "files handed over by another area (e.g. anonymised audit copies)"


class Forward(models.Model):
    """One send of a dataset to one destination node; delivered by the work row ``forward:<id>``.

    The row's state (pending, in progress, done, failed) is the outbox state; failed rows wait for a
    person's resubmit. ``only_new`` forwards (trigger rules) send only objects the destination has not
    received yet, so re-evaluating a rule when late objects arrive sends the late objects and nothing twice.
    """

    destination = models.ForeignKey("institutions.Node", on_delete=models.PROTECT, related_name="forwards")
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scope = models.CharField(max_length=16, choices=ForwardScope.choices)
    patient = models.ForeignKey(
        "catalog.Patient", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    plan = models.ForeignKey(
        "catalog.Instance", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    instance_ids = models.JSONField(
        default=list, blank=True, help_text="scope instances: the objects to send"
    )
    files = models.JSONField(default=list, blank=True, help_text="scope files: paths under OUTBOX_DIR")
    only_new = models.BooleanField(default=False, help_text="skip objects the destination already received")
    origin = models.CharField(max_length=64, help_text="manual, rule:<id>, audit:<id>, …")
    origin_key = models.CharField(
        max_length=200,
        null=True,
        blank=True,
        unique=True,
        help_text="makes a caller's forward idempotent (a rule, target and node)",
    )
    requested_by = models.CharField(max_length=150)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    sent_total = models.PositiveIntegerField(default=0, help_text="objects delivered over all sends")
    failure_notified = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"forward #{self.pk} to {self.destination_id}"

    @property
    def work_key(self) -> str:
        return str(self.pk)


class ForwardedInstance(models.Model):
    """An object a destination confirmed (every sub-operation of its send succeeded)."""

    forward = models.ForeignKey(Forward, on_delete=models.CASCADE, related_name="delivered")
    destination = models.ForeignKey("institutions.Node", on_delete=models.CASCADE, related_name="+")
    instance = models.ForeignKey("catalog.Instance", on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["forward", "instance"], name="forwarded_once_per_forward")
        ]
        indexes = [models.Index(fields=["destination", "instance"], name="forwarded_dest_idx")]

    def __str__(self) -> str:
        return f"{self.instance_id} to {self.destination_id}"

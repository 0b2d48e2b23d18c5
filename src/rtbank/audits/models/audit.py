"""An audit study, the datasets it hands out, and the participants who each get their own copy."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditState(models.TextChoices):
    OPEN = "open", "open (copies go out, returns are collected)"
    CLOSED = "closed", "closed (returns are still recognised and kept, nothing more is sent)"


class Content(models.TextChoices):
    """What of each dataset a copy holds."""

    PLANNING_IMAGES = "planning_images", "planning images (the CT the structure set was drawn on)"
    OTHER_IMAGES = "other_images", "other images and their registrations (MR, PET)"
    STRUCTURE_SET = "structure_set", "structure set"
    PLAN = "plan", "plan"
    DOSE = "dose", "dose"
    RECORD = "record", "treatment records"


# Interpreted types a delineation audit typically removes from the copies ("targets removed").
TARGET_TYPES = ("GTV", "CTV", "PTV", "ITV")


class Audit(models.Model):
    """A delineation or planning audit of one project.

    Every participant gets an individually anonymised copy of the datasets: its own pseudonyms, UIDs and
    date shift, all derived from the audit's secret key (kept outside the database, see
    :mod:`rtbank.audits.keys`) and the participant's copy id. The maps actually applied are stored in
    :class:`~rtbank.audits.models.maps.PseudonymousUid` and ``PseudonymousPatient`` to recognise returns.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="audits")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    contents = models.JSONField(default=list, help_text="Content values: what each copy holds")
    remove_roi_types = models.JSONField(
        default=list, blank=True, help_text="ROIs of these interpreted types are left out of the copies"
    )
    options = models.JSONField(default=list, blank=True, help_text="PS3.15 Annex E options (Option values)")
    pseudonym_prefix = models.CharField(max_length=16, help_text="pseudonyms are <prefix>-<copy>-<10 digits>")
    key_fingerprint = models.CharField(
        max_length=64,
        blank=True,
        help_text="SHA-256 of the secret key (the key is in RTBANK_HOME/audit-keys)",
    )
    state = models.CharField(max_length=16, choices=AuditState.choices, default=AuditState.OPEN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"audit #{self.pk}"


class AuditDataset(models.Model):
    """One case handed out: a patient (what the project holds of them) or a plan with its bundle."""

    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="datasets")
    label = models.CharField(max_length=32, help_text="how the audit names the case, e.g. 'case 1'")
    patient = models.ForeignKey("catalog.Patient", on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(
        "catalog.Instance", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reference_structure_set = models.ForeignKey(
        "catalog.Instance",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="the delineation returns are compared with (complete, targets included)",
    )
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["audit_id", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["audit", "label"], name="audit_dataset_label_unique")]

    def __str__(self) -> str:
        return self.label


class CopyState(models.TextChoices):
    NONE = "none", "not made yet"
    QUEUED = "queued", "being made"
    READY = "ready", "ready"
    FAILED = "failed", "failed"


class Participant(models.Model):
    """A participating centre or observer, with its copy and what happened to it."""

    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="participants")
    name = models.CharField(max_length=100)
    copy_id = models.CharField(max_length=8, help_text="1, 2, …: keys this participant's UIDs and pseudonyms")
    institution = models.ForeignKey(
        "institutions.Institution", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    node = models.ForeignKey(
        "institutions.Node",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="DICOM node the copy is sent to (on the project's destination list)",
    )
    copy_state = models.CharField(max_length=16, choices=CopyState.choices, default=CopyState.NONE)
    copy_error = models.TextField(blank=True)
    copy_files = models.PositiveIntegerField(default=0)
    copy_bytes = models.PositiveBigIntegerField(default=0)
    copy_made_at = models.DateTimeField(null=True, blank=True)
    send_when_ready = models.BooleanField(default=False)
    forward = models.ForeignKey(
        "rules.Forward",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="the latest send of the copy through the outbox",
    )
    downloads = models.PositiveIntegerField(default=0)
    downloaded_at = models.DateTimeField(null=True, blank=True)
    first_return_at = models.DateTimeField(null=True, blank=True)
    last_return_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["audit_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["audit", "copy_id"], name="participant_copy_unique"),
            models.UniqueConstraint(fields=["audit", "name"], name="participant_name_unique"),
        ]

    def __str__(self) -> str:
        return f"participant #{self.pk} (copy {self.copy_id})"

"""Records of the cleanup service: notices before deletion, the trash, reports, expiry reminders."""

from __future__ import annotations

from django.db import models


class NoticeState(models.TextChoices):
    PENDING = "pending", "announced; deleted after the notice period unless retained by then"
    DONE = "done", "deleted"
    CANCELLED = "cancelled", "cancelled: the data is retained now or received new objects"


class CleanupNotice(models.Model):
    """The announcement that a patient's unretained data will be deleted (one pending notice per patient)."""

    patient = models.ForeignKey("catalog.Patient", null=True, on_delete=models.SET_NULL, related_name="+")
    institution = models.ForeignKey(
        "institutions.Institution", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=16, choices=NoticeState.choices, default=NoticeState.PENDING)
    noticed_at = models.DateTimeField()
    delete_after = models.DateTimeField()
    instances = models.PositiveIntegerField(help_text="objects announced")
    bytes = models.PositiveBigIntegerField(default=0)
    closed_at = models.DateTimeField(null=True, blank=True)
    message = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient"], condition=models.Q(state="pending"), name="one_pending_notice"
            )
        ]
        ordering = ["delete_after", "id"]

    def __str__(self) -> str:
        return f"cleanup notice #{self.pk} ({self.state})"


class CleanupRun(models.Model):
    """One run of the cleanup service (scheduled or ``rtbank cleanup``), with its report."""

    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    dry_run = models.BooleanField()
    actor = models.CharField(max_length=150)
    report = models.JSONField(default=dict)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"cleanup run #{self.pk}"


class TrashedInstance(models.Model):
    """A deleted object whose file waits in the trash for the grace period (then ``purged_at`` is set)."""

    notice = models.ForeignKey(CleanupNotice, null=True, on_delete=models.SET_NULL, related_name="trashed")
    sop_instance_uid = models.CharField(max_length=64, db_index=True)
    sop_class_uid = models.CharField(max_length=64)
    patient_ref = models.CharField(max_length=32, help_text="internal patient id (never the Patient ID)")
    institution_code = models.CharField(max_length=32, blank=True)
    blob_key = models.CharField(max_length=200)
    size = models.PositiveBigIntegerField()
    file_sha256 = models.CharField(max_length=64)
    received_at = models.DateTimeField()
    trashed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    trash_path = models.CharField(
        max_length=300, blank=True, help_text="relative to TRASH_DIR; empty until moved"
    )
    purge_after = models.DateTimeField()
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-trashed_at", "-id"]

    def __str__(self) -> str:
        return f"trashed {self.sop_instance_uid}"


class ExpiryNotice(models.Model):
    """A reminder or suspension the expiry job has recorded (once per grant or project and date)."""

    kind = models.CharField(max_length=32, help_text="grant_suspended or project_suspended")
    grant = models.ForeignKey(
        "projects.Grant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    object_key = models.CharField(max_length=100, help_text="grant:<id> or project:<id>")
    for_date = models.DateField(help_text="the expiry or renewal date it is about")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_key", "for_date"], name="expiry_notice_unique")
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_key} {self.for_date}"

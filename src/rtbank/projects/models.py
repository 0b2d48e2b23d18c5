"""Projects, grants, data assignment and the access log."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from rtbank.institutions.models import AE_TITLE


class Permission(models.TextChoices):
    """Named permissions a grant gives on one project (the names the CLI and API accept)."""

    VIEW = "view", "view key values and DVH metrics"
    IMAGES = "images", "open images in the viewer"
    DOWNLOAD = "download", "download raw DICOM"
    EXPORT = "export", "export CSV"
    IDENTIFIERS = "identifiers", "see real patient IDs and names instead of subject IDs"
    ASSIGN = "assign", "assign data to the project"
    FORWARD = "forward", "send data to the project's destinations"
    AUDIT = "audit", "create and run audits"
    MEMBERS = "members", "manage members and their grants"
    RULES = "rules", "manage trigger rules"


# A project manager holds the management permissions (identifiers stay a separate, deliberate grant).
MANAGER_PERMISSIONS = [p.value for p in Permission if p != Permission.IDENTIFIERS]
ROLE_BUNDLES = {
    "viewer": ["view"],
    "analyst": ["view", "images", "export"],
    "manager": MANAGER_PERMISSIONS,
}


class ProjectStatus(models.TextChoices):
    COLLECTING = "collecting", "collecting"
    CLOSED = "closed", "closed (no new data)"
    ARCHIVED = "archived", "archived"


class Project(models.Model):
    """A research project (protocol). Data is assigned to it as relations; grants give people access."""

    code = models.CharField(max_length=32, unique=True, validators=[RegexValidator(r"^[A-Za-z0-9_-]{1,32}$")])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    principal_investigator = models.CharField(max_length=200, blank=True)
    institutions = models.ManyToManyField("institutions.Institution", blank=True, related_name="projects")
    status = models.CharField(max_length=16, choices=ProjectStatus.choices, default=ProjectStatus.COLLECTING)
    ae_title = models.CharField(
        max_length=16,
        blank=True,
        validators=[AE_TITLE],
        help_text="optional AE title centres send to (accepted by the receiver)",
    )
    renew_by = models.DateField(help_text="not renewed by this date: every grant on the project is suspended")
    subject_prefix = models.CharField(max_length=16, blank=True, help_text="prefix of assigned subject IDs")
    renewal_reminded_for = models.DateField(
        null=True, blank=True, help_text="the renew_by date a renewal reminder was sent for"
    )
    destinations = models.ManyToManyField(
        "institutions.Node",
        blank=True,
        related_name="projects",
        help_text="nodes this project's data may be forwarded to",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["ae_title"], condition=~models.Q(ae_title=""), name="project_ae_unique"
            )
        ]

    def __str__(self) -> str:
        return self.code

    def is_suspended(self, today: dt.date | None = None) -> bool:
        return self.renew_by < (today or timezone.localdate()) or self.status == ProjectStatus.ARCHIVED


class Grant(models.Model):
    """One named permission of one user on one project, until an expiry date (inclusive)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grants")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="grants")
    permission = models.CharField(max_length=16, choices=Permission.choices)
    expires_on = models.DateField()
    granted_by = models.CharField(max_length=150)
    granted_at = models.DateTimeField(auto_now=True)
    reminded_for = models.DateField(
        null=True, blank=True, help_text="the expiry date a reminder was sent for"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "project", "permission"], name="grant_unique")]
        indexes = [models.Index(fields=["user", "expires_on"], name="grant_user_idx")]

    def __str__(self) -> str:
        return f"{self.permission} on {self.project_id} until {self.expires_on}"


class AssignedVia(models.TextChoices):
    PERSON = "person", "assigned by a person"
    RULE = "rule", "assigned by a trigger rule"
    HARVEST = "harvest", "assigned by a harvest run"
    REUSE = "reuse", "brought in from another project by agreement"
    UPLOAD = "upload", "uploaded into the project"


class ProjectSubject(models.Model):
    """A patient in a project, under a project subject ID used instead of the patient ID.

    ``whole_patient`` assigns all of the patient's data (now and later); otherwise only the plans in
    :class:`ProjectPlan` (each with its plan bundle) belong to the project.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="subjects")
    patient = models.ForeignKey("catalog.Patient", on_delete=models.PROTECT, related_name="subjects")
    subject_id = models.CharField(max_length=64)
    whole_patient = models.BooleanField(default=False)
    assigned_via = models.CharField(max_length=16, choices=AssignedVia.choices)
    assigned_by = models.CharField(max_length=150, help_text="user name, rule:<id>, harvest:<run>")
    agreement = models.CharField(max_length=200, blank=True, help_text="reuse agreement reference")
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "patient"], name="subject_patient_unique"),
            models.UniqueConstraint(fields=["project", "subject_id"], name="subject_id_unique"),
        ]
        ordering = ["project_id", "subject_id"]

    def __str__(self) -> str:
        return f"{self.subject_id} in {self.project_id}"


class ProjectPlan(models.Model):
    """A treatment plan (with its plan bundle, kept current as late objects arrive) in a project."""

    subject = models.ForeignKey(ProjectSubject, on_delete=models.CASCADE, related_name="plans")
    plan = models.ForeignKey("catalog.Instance", on_delete=models.PROTECT, related_name="project_plans")
    assigned_via = models.CharField(max_length=16, choices=AssignedVia.choices)
    assigned_by = models.CharField(max_length=150)
    agreement = models.CharField(max_length=200, blank=True)
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subject", "plan"], name="project_plan_unique")]

    def __str__(self) -> str:
        return f"plan #{self.plan_id} in {self.subject}"


class AccessLog(models.Model):
    """One row per read of patient data (or attempt): who, when, what, in which project, outcome.

    Written for web views, API calls, downloads, exports, CSVs, anonymisations, C-STORE in and C-MOVE out,
    denied attempts included.
    """

    time = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor = models.CharField(max_length=150, help_text="user name, cli:<os user>, or AE@host")
    action = models.CharField(max_length=32, db_index=True)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=100)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL)
    outcome = models.CharField(max_length=16, db_index=True, help_text="allowed, denied, not_found, error")
    remote_addr = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="access_object_idx")]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.outcome}"


class JobState(models.TextChoices):
    PENDING = "pending", "waiting"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class ExportJob(models.Model):
    """A bulk export of a project's raw DICOM written in the background to ``EXPORT_DIR/<folder>``.

    The worker writes it in chunks (``cursor`` = last instance id written), each chunk a short transaction,
    so progress is visible and a killed worker resumes where it stopped. The user's grant is checked again
    before every chunk and before every download.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exports")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    subject_ids = models.JSONField(
        default=list, blank=True, help_text="subject IDs; empty: the whole project"
    )
    identifiers = models.BooleanField(
        default=False, help_text="folders named by patient ID (else subject ID)"
    )
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.PENDING)
    total_files = models.PositiveIntegerField(default=0)
    total_bytes = models.PositiveBigIntegerField(default=0)
    done_files = models.PositiveIntegerField(default=0)
    done_bytes = models.PositiveBigIntegerField(default=0)
    cursor = models.BigIntegerField(default=0, help_text="last instance id written")
    folder = models.CharField(max_length=200, blank=True, help_text="relative to EXPORT_DIR")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "created_at"], name="export_user_idx")]

    def __str__(self) -> str:
        return f"export #{self.pk} of {self.project_id} ({self.state})"

    @property
    def percent(self) -> int:
        return (
            int(100 * self.done_files / self.total_files)
            if self.total_files
            else (100 if self.state == "done" else 0)
        )


class Upload(models.Model):
    """One web upload: what was sent, what was stored, and (optionally) its assignment to a project."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads")
    institution = models.ForeignKey("institutions.Institution", on_delete=models.PROTECT, related_name="+")
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="uploads"
    )
    deidentified = models.BooleanField(default=False)
    files = models.PositiveIntegerField(default=0)
    stored = models.PositiveIntegerField(default=0)
    not_dicom = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    results = models.JSONField(default=list, blank=True, help_text="[[file name, result], …]")
    source_ids = models.JSONField(default=list, blank=True, help_text="spool sources of this upload")
    assignment = models.CharField(max_length=16, blank=True, choices=JobState.choices)
    assignment_result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "created_at"], name="upload_user_idx")]

    def __str__(self) -> str:
        return f"upload #{self.pk}"

"""Projects, grants and the access log."""

from __future__ import annotations

from django.conf import settings
from django.db import models


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
    project = models.ForeignKey("projects.Project", null=True, blank=True, on_delete=models.SET_NULL)
    outcome = models.CharField(max_length=16, db_index=True, help_text="allowed, denied, not_found, error")
    remote_addr = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="access_object_idx")]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.outcome}"


class Project(models.Model):
    """A research project (protocol); filled out by the projects issue. Data and grants hang on it."""

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    ae_title = models.CharField(max_length=16, blank=True, help_text="optional AE title centres send to")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

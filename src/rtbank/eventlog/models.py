"""The event log: one row per thing a service did or refused, queryable in SQL.

Technical logs carry internal IDs only (instance ids, work ids, node names), never patient names or
patient IDs: reads of patient data go to the access log in :mod:`rtbank.projects`.
"""

from __future__ import annotations

from django.db import models


class Outcome(models.TextChoices):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"
    REJECTED = "rejected"


class Event(models.Model):
    time = models.DateTimeField(auto_now_add=True, db_index=True)
    service = models.CharField(max_length=32, help_text="receiver, worker, web, cli, harvest, …")
    actor = models.CharField(max_length=150, help_text="user name, cli:<os user>, or AE title@host")
    action = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.OK)
    object_type = models.CharField(max_length=32, blank=True)
    object_id = models.CharField(max_length=100, blank=True)
    message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["object_type", "object_id"], name="event_object_idx")]
        ordering = ["-time", "-id"]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.service} {self.action} {self.outcome}"

"""Work rows: every unit of work (ingest, analysis, DVH, forward, harvest step, scheduled job) is one row."""

from __future__ import annotations

from django.db import models


class WorkState(models.TextChoices):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"


class WorkItem(models.Model):
    """A unit of work with a lease.

    ``(kind, key)`` is unique, so creating work is idempotent: the same spool file, patient or
    (job, period) never gives two rows. A worker claims rows by setting ``claimed_by`` and
    ``lease_until``; a killed worker's rows are claimed again once the lease has passed. ``attempts``
    counts claims, so work that kills its worker still stops at the cap.
    """

    kind = models.CharField(max_length=32)
    key = models.CharField(max_length=200)
    state = models.CharField(max_length=16, choices=WorkState.choices, default=WorkState.PENDING)
    payload = models.JSONField(default=dict, blank=True)
    priority = models.SmallIntegerField(default=0, help_text="higher runs first")
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=10)
    last_error = models.TextField(blank=True)
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="back-off: not claimed before this time"
    )
    claimed_by = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    rerun = models.BooleanField(
        default=False, help_text="new input arrived while running: run again when done"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="work_kind_key_unique")]
        indexes = [
            models.Index(fields=["state", "kind", "priority", "id"], name="work_claim_idx"),
            models.Index(fields=["state", "lease_until"], name="work_lease_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key} ({self.state})"


class WorkerHeartbeat(models.Model):
    """Last sign of life of each worker process, for /healthz and the admin."""

    worker_id = models.CharField(max_length=100, unique=True)
    host = models.CharField(max_length=200)
    pid = models.IntegerField()
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()
    processed = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return self.worker_id

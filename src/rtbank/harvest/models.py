"""Harvest runs, the plans they walk, and what each run learned about objects at its sources.

The work itself (one row per plan × step) lives in :class:`rtbank.work.models.WorkItem` (kinds
``harvest_find`` / ``harvest_step`` / ``harvest_verify``); these tables hold the run's knowledge, so a
resumed run never queries twice what it already knows, and the manifest can say why an object is missing.
Patient IDs appear in these tables (they are data), never in event-log rows or work keys.
"""

from __future__ import annotations

from django.db import models


class RunState(models.TextChoices):
    RUNNING = "running", "running"
    COMPLETE = "complete", "complete: every expected object collected or missing at the source"
    INCOMPLETE = "incomplete", "finished with objects that failed after retries"
    CANCELLED = "cancelled", "cancelled"


class HarvestRun(models.Model):
    source = models.ForeignKey("institutions.Node", on_delete=models.PROTECT, related_name="+")
    objects_from = models.JSONField(
        default=list, blank=True, help_text="node names (or 'catalog') holding plans, doses and images"
    )
    date_from = models.DateField(null=True, blank=True)
    date_to = models.DateField(null=True, blank=True)
    patients = models.JSONField(default=list, blank=True, help_text="patient IDs of --patients")
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.RUNNING)
    record_level = models.CharField(
        max_length=16, blank=True, help_text="how treatment records were found: image, series or patient"
    )
    keep = models.BooleanField(default=True, help_text="collected data is retained (never cleaned up)")
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"harvest run #{self.pk}"

    @property
    def finished(self) -> bool:
        return self.state != RunState.RUNNING


class PlanState(models.TextChoices):
    WALKING = "walking", "walking"
    WALKED = "walked", "walked"
    ABSENT = "absent", "plan absent at the source (dangling record)"
    COMPLETE = "complete", "complete"
    MISSING_AT_SOURCE = "missing_at_source", "complete except objects missing at the source"
    INCOMPLETE = "incomplete", "objects failed after retries"


class HarvestPlan(models.Model):
    """A plan referenced by a treatment record of the run (treated: a record in the window references it)."""

    run = models.ForeignKey(HarvestRun, on_delete=models.CASCADE, related_name="plans")
    plan_uid = models.CharField(max_length=64)
    patient_id = models.CharField(max_length=64)
    state = models.CharField(max_length=20, choices=PlanState.choices, default=PlanState.WALKING)
    step = models.CharField(max_length=32, blank=True)
    first_treatment = models.DateField(null=True, blank=True)
    records_in_window = models.JSONField(default=list, blank=True)
    planning_series_uid = models.CharField(max_length=64, blank=True)
    frame_of_reference_uid = models.CharField(max_length=64, blank=True)
    manifest = models.JSONField(
        default=dict, blank=True, help_text="expected / collected / missing with reasons"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "plan_uid"], name="harvest_plan_unique")]
        ordering = ["run_id", "id"]

    def __str__(self) -> str:
        return f"plan #{self.pk} of run #{self.run_id}"


class ObjectState(models.TextChoices):
    KNOWN = "known", "known at the source"
    HELD = "held", "already held by rtbank (skipped)"
    REQUESTED = "requested", "retrieved, waiting to be filed"
    COLLECTED = "collected", "collected"
    FAILED = "failed", "retrieval failed"


class HarvestObject(models.Model):
    """One object a run found at a source (C-FIND), with what it references once inspected."""

    run = models.ForeignKey(HarvestRun, on_delete=models.CASCADE, related_name="known_objects")
    sop_instance_uid = models.CharField(max_length=64)
    patient_id = models.CharField(max_length=64)
    study_uid = models.CharField(max_length=64)
    series_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    modality = models.CharField(max_length=16)
    kind = models.CharField(max_length=32, blank=True)
    frame_uid = models.CharField(max_length=64, blank=True)
    instance_number = models.IntegerField(null=True, blank=True)
    treatment_date = models.DateField(null=True, blank=True)
    refs = models.JSONField(
        null=True, blank=True, help_text="[[ref kind, target uid], …]; null = not inspected"
    )
    first_contour_image = models.CharField(max_length=64, blank=True)
    node = models.ForeignKey(
        "institutions.Node", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    wanted = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=ObjectState.choices, default=ObjectState.KNOWN)
    requested_at = models.DateTimeField(null=True, blank=True)
    instance = models.ForeignKey(
        "catalog.Instance", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    size = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "sop_instance_uid"], name="harvest_object_unique")
        ]
        indexes = [
            models.Index(fields=["run", "patient_id", "modality"], name="harvest_object_patient_idx"),
            models.Index(fields=["run", "series_uid"], name="harvest_object_series_idx"),
            models.Index(fields=["run", "wanted", "state"], name="harvest_object_state_idx"),
        ]

    def __str__(self) -> str:
        return f"object {self.sop_instance_uid} ({self.modality})"


class HarvestSeries(models.Model):
    """An image series at a source, with its frame of reference (for steps 8 and 10)."""

    run = models.ForeignKey(HarvestRun, on_delete=models.CASCADE, related_name="series")
    patient_id = models.CharField(max_length=64)
    study_uid = models.CharField(max_length=64)
    series_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=16)
    frame_uid = models.CharField(max_length=64, blank=True)
    series_date = models.DateField(null=True, blank=True)
    node = models.ForeignKey(
        "institutions.Node", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    listed = models.BooleanField(default=False, help_text="its instances are known")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "series_uid"], name="harvest_series_unique")]

    def __str__(self) -> str:
        return f"series {self.series_uid} ({self.modality})"


class HarvestQuery(models.Model):
    """A query a run has completed (so a resumed or parallel step does not ask again)."""

    run = models.ForeignKey(HarvestRun, on_delete=models.CASCADE, related_name="queries")
    key = models.CharField(max_length=200)
    answers = models.IntegerField(default=0)
    done_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="harvest_query_unique")]


class SourceSlot(models.Model):
    """One of a source's parallel associations; taken by a process while it talks to the source.

    ``free_at`` enforces the source's pause between operations; ``until`` frees a slot whose holder died.
    """

    node = models.ForeignKey("institutions.Node", on_delete=models.CASCADE, related_name="+")
    slot = models.PositiveSmallIntegerField()
    holder = models.CharField(max_length=100, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    free_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["node", "slot"], name="source_slot_unique")]

"""What participants sent back, and the QA of it."""

from __future__ import annotations

from django.db import models


class ReturnedObject(models.Model):
    """A returned object, under its own pseudonymous patient (issuer ``audit:<audit>:<participant>``)."""

    participant = models.ForeignKey("audits.Participant", on_delete=models.CASCADE, related_name="returns")
    dataset = models.ForeignKey(
        "audits.AuditDataset", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    instance = models.OneToOneField("catalog.Instance", on_delete=models.PROTECT, related_name="audit_return")
    kind = models.CharField(max_length=32)
    matched_by = models.CharField(
        max_length=16, help_text="uid: references the copy's UIDs; pseudonym: its IDs"
    )
    evidence = models.JSONField(
        default=dict, blank=True, help_text="how many UIDs/IDs of the copy it carries"
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["participant_id", "received_at", "id"]

    def __str__(self) -> str:
        return f"return #{self.pk} of participant #{self.participant_id}"


class Against(models.TextChoices):
    REFERENCE = "reference", "the reference delineation"
    CONSENSUS = "consensus", "the other participants' consensus"


class RoiAgreement(models.Model):
    """One returned ROI (mapped to a standard name) compared with the reference or the consensus."""

    participant = models.ForeignKey("audits.Participant", on_delete=models.CASCADE, related_name="agreements")
    dataset = models.ForeignKey("audits.AuditDataset", on_delete=models.CASCADE, related_name="+")
    returned = models.ForeignKey(ReturnedObject, on_delete=models.CASCADE, related_name="agreements")
    standard_name = models.CharField(max_length=64)
    roi_name = models.CharField(max_length=128, help_text="as the participant named it")
    reference_roi_name = models.CharField(max_length=128, blank=True)
    against = models.CharField(max_length=16, choices=Against.choices)
    compared_with = models.PositiveIntegerField(default=1, help_text="delineations behind the consensus")
    dice = models.FloatField(null=True, blank=True)
    hausdorff95_mm = models.FloatField(null=True, blank=True)
    mean_surface_distance_mm = models.FloatField(null=True, blank=True)
    volume_ratio = models.FloatField(null=True, blank=True)
    volume_cc = models.FloatField(null=True, blank=True)
    reference_volume_cc = models.FloatField(null=True, blank=True)
    spacing_mm = models.FloatField(null=True, blank=True, help_text="grid spacing of the comparison")
    note = models.CharField(max_length=300, blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["dataset_id", "standard_name", "participant_id", "against"]

    def __str__(self) -> str:
        return f"{self.standard_name} of participant #{self.participant_id} vs {self.against}"


class PlanMetric(models.Model):
    """A protocol DVH metric of a returned plan's dose, beside the reference plan's value."""

    participant = models.ForeignKey(
        "audits.Participant", on_delete=models.CASCADE, related_name="plan_metrics"
    )
    dataset = models.ForeignKey("audits.AuditDataset", on_delete=models.CASCADE, related_name="+")
    returned = models.ForeignKey(
        ReturnedObject, on_delete=models.CASCADE, related_name="plan_metrics", help_text="the returned dose"
    )
    standard_name = models.CharField(max_length=64)
    roi_name = models.CharField(max_length=128)
    metric = models.CharField(max_length=40, help_text="canonical metric name (Gy, % or cc)")
    value = models.FloatField(null=True, blank=True)
    reference_value = models.FloatField(
        null=True, blank=True, help_text="the dataset's own plan, if it had a dose"
    )
    note = models.CharField(max_length=300, blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["dataset_id", "standard_name", "metric", "participant_id"]

    def __str__(self) -> str:
        return f"{self.standard_name} {self.metric} of participant #{self.participant_id}"

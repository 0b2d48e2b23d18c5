"""What the analysis stage knows of each image series, plan and patient: completeness and delivery."""

from __future__ import annotations

from django.db import models


class SeriesCompleteness(models.Model):
    """The completeness check of one CT/MR/PET series (``rtbank.dicom.completeness.check_image_series``)."""

    series = models.OneToOneField(
        "catalog.Series", on_delete=models.CASCADE, primary_key=True, related_name="completeness"
    )
    patient = models.ForeignKey("catalog.Patient", on_delete=models.CASCADE, related_name="+")
    modality = models.CharField(max_length=16)
    slices = models.IntegerField()
    median_spacing_mm = models.FloatField(null=True, blank=True)
    missing_slices = models.IntegerField(default=0, help_text="estimated from the gaps")
    complete = models.BooleanField(db_index=True)
    flags = models.JSONField(default=list, blank=True)
    gaps = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)
    fingerprint = models.CharField(
        max_length=64, help_text="of the instances checked; unchanged: not rechecked"
    )
    checked_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"series #{self.series_id}: {'complete' if self.complete else ', '.join(self.flags)}"


class IntentClass(models.TextChoices):
    CURATIVE = "curative"
    PALLIATIVE = "palliative"
    PROPHYLACTIC = "prophylactic"
    VERIFICATION = "verification"
    MACHINE_QA = "machine_qa", "machine QA"
    RESEARCH = "research"
    SERVICE = "service"
    UNKNOWN = "unknown"


class PlanSummary(models.Model):
    """Classification, delivery (from the treatment records) and completeness of one plan."""

    plan = models.OneToOneField(
        "catalog.Instance", on_delete=models.CASCADE, primary_key=True, related_name="analysis_summary"
    )
    patient = models.ForeignKey("catalog.Patient", on_delete=models.CASCADE, related_name="+")
    intent = models.CharField(max_length=16, choices=IntentClass.choices, db_index=True)
    treated = models.BooleanField(db_index=True)
    records = models.IntegerField(default=0, help_text="treatment records referencing the plan")
    fractions_delivered = models.IntegerField(default=0)
    first_treatment = models.DateField(null=True, blank=True)
    last_treatment = models.DateField(null=True, blank=True)
    planned_mu = models.FloatField(null=True, blank=True, help_text="MU per fraction × fractions planned")
    delivered_mu = models.FloatField(null=True, blank=True, help_text="sum over the records")
    interruptions = models.IntegerField(
        default=0, help_text="breaks of at least one weekday between fractions"
    )
    missed_weekdays = models.IntegerField(default=0)
    abnormal_terminations = models.IntegerField(default=0, help_text="records not terminated NORMAL")
    complete = models.BooleanField(db_index=True)
    flags = models.JSONField(
        default=list, blank=True, help_text="rtbank.dicom.completeness.DatasetFlag codes"
    )
    details = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "plan summaries"

    def __str__(self) -> str:
        return f"plan #{self.plan_id} ({self.intent})"


class PatientCompleteness(models.Model):
    """A patient's completeness in one line: flags of their series, plans and dangling records."""

    patient = models.OneToOneField(
        "catalog.Patient", on_delete=models.CASCADE, primary_key=True, related_name="completeness"
    )
    complete = models.BooleanField(db_index=True)
    flags = models.JSONField(
        default=list, blank=True, help_text="series:<flag>, plan:<flag>, record_without_plan"
    )
    records_without_plan = models.JSONField(default=list, blank=True, help_text="record instance ids")
    checked_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"patient #{self.patient_id}: {'complete' if self.complete else 'incomplete'}"

"""Per project: the metric list, the protocol (required ROIs, dose constraints) and each plan's QA result."""

from __future__ import annotations

from django.db import models

from rtbank.dicom.dvh import DEFAULT_METRIC_NAMES


def default_metrics() -> list[str]:
    return list(DEFAULT_METRIC_NAMES)


class ProjectAnalysis(models.Model):
    """A project's analysis settings: the metrics offered as CSV columns (and stored for every ROI)."""

    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, primary_key=True, related_name="analysis"
    )
    metrics = models.JSONField(default=default_metrics, help_text="canonical metric names, in column order")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"analysis settings of project #{self.project_id}"


class RequiredRoi(models.Model):
    """A standard ROI every plan of the project must have (one match)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="required_rois")
    standard_name = models.CharField(max_length=64)

    class Meta:
        ordering = ["standard_name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "standard_name"], name="required_roi_unique")
        ]

    def __str__(self) -> str:
        return self.standard_name


class ConstraintUnit(models.TextChoices):
    GY = "Gy", "Gy"
    PERCENT_RX = "%Rx", "% of the prescription (dose metrics)"
    PERCENT = "%", "% of the volume (V metrics)"
    CC = "cc", "cm³ (V metrics)"


class DoseConstraint(models.Model):
    """``standard ROI  metric  operator  limit unit`` with a minor band, e.g. ``SpinalCord D0.03cc < 50 Gy``.

    Pass when the value satisfies the limit; a minor deviation when it misses it but stays within
    ``minor_limit`` (on the far side of the limit); a major deviation beyond. Without ``minor_limit`` every
    miss is major. See :mod:`rtbank.analysis.protocol`.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="dose_constraints")
    standard_name = models.CharField(max_length=64)
    metric = models.CharField(max_length=40, help_text="canonical metric name, e.g. D0.03cc, D95%, V20Gy[%]")
    operator = models.CharField(max_length=2, choices=[("<", "<"), ("<=", "≤"), (">", ">"), (">=", "≥")])
    limit = models.FloatField()
    unit = models.CharField(max_length=4, choices=ConstraintUnit.choices)
    minor_limit = models.FloatField(null=True, blank=True, help_text="end of the minor-deviation band")
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["standard_name", "metric", "id"]

    def __str__(self) -> str:
        from rtbank.analysis.protocol import constraint_text

        return constraint_text(self)


class QaStatus(models.TextChoices):
    PASS = "pass", "pass"
    MINOR = "minor", "minor deviation"
    MAJOR = "major", "major deviation"
    MISSING_ROI = "missing_roi", "ROI missing"
    AMBIGUOUS_ROI = "ambiguous_roi", "several ROIs map to it"
    NOT_EVALUATED = "not_evaluated", "not evaluated yet (no DVH, or no prescription)"


# Worst first: the order a plan's overall status is taken in.
QA_SEVERITY = [
    QaStatus.MAJOR,
    QaStatus.MISSING_ROI,
    QaStatus.AMBIGUOUS_ROI,
    QaStatus.MINOR,
    QaStatus.NOT_EVALUATED,
    QaStatus.PASS,
]


class QaResult(models.Model):
    """One protocol item for one plan: a dose constraint, or a required ROI (``constraint`` empty)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    plan = models.ForeignKey("catalog.Instance", on_delete=models.CASCADE, related_name="+")
    constraint = models.ForeignKey(
        DoseConstraint, null=True, blank=True, on_delete=models.CASCADE, related_name="results"
    )
    standard_name = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=QaStatus.choices)
    value = models.FloatField(null=True, blank=True, help_text="in the constraint's unit")
    detail = models.CharField(max_length=300, blank=True)
    evaluated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plan_id", "standard_name", "constraint_id"]
        indexes = [models.Index(fields=["project", "plan"], name="qa_result_plan_idx")]

    def __str__(self) -> str:
        return f"{self.standard_name}: {self.status}"


class PlanQa(models.Model):
    """A plan's overall QA status in a project, and whether its managers were told of a deviation."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    plan = models.ForeignKey("catalog.Instance", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=QaStatus.choices, db_index=True)
    deviations = models.IntegerField(default=0, help_text="minor + major + missing/ambiguous ROIs")
    notified_at = models.DateTimeField(null=True, blank=True)
    notified_status = models.CharField(
        max_length=16, blank=True, help_text="the status managers were told of"
    )
    evaluated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "plan"], name="plan_qa_unique")]

    def __str__(self) -> str:
        return f"plan #{self.plan_id}: {self.status}"

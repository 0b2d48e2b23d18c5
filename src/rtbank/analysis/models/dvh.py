"""Stored DVHs: one row per plan calculation, one per ROI with its compact curve, one per metric value."""

from __future__ import annotations

from django.db import models

from rtbank.dicom.dvh import DvhCurve

CURVE_CELL = 12  # characters per stored curve value (fixed width, so SQL can cut it with SUBSTR)
CURVE_MAX_POINTS = 400


class DvhState(models.TextChoices):
    OK = "ok", "calculated"
    ERROR = "error", "cannot be calculated from these files"


class PlanDvh(models.Model):
    """The DVH calculation of one plan: its inputs, the engine version, and the outcome.

    ``inputs`` fingerprints the instances used (plan, structure set, doses: ids and versions) and the
    engine version; the analysis stage recomputes when it differs. An input problem (frames of reference
    that differ, a relative dose …) is stored as ``error`` with a message for people; it is not a failed
    work row, because trying again cannot help until other files arrive.
    """

    plan = models.OneToOneField(
        "catalog.Instance", on_delete=models.CASCADE, primary_key=True, related_name="dvh"
    )
    state = models.CharField(max_length=8, choices=DvhState.choices)
    error = models.TextField(blank=True)
    inputs = models.CharField(max_length=64, help_text="SHA-256 of the input description")
    inputs_detail = models.JSONField(default=dict, blank=True)
    engine_version = models.CharField(max_length=32)
    structure_set = models.ForeignKey(
        "catalog.Instance", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    dose_ids = models.JSONField(default=list, blank=True, help_text="instance ids of the RT Doses used")
    metric_names = models.JSONField(default=list, blank=True, help_text="metrics stored for every ROI")
    fractions = models.IntegerField(null=True, blank=True, help_text="planned fractions used for the dose")
    dose_summation = models.CharField(max_length=32, blank=True)
    dose_type = models.CharField(max_length=16, blank=True)
    dose_steps = models.JSONField(
        default=list, blank=True, help_text="how the dose was built, one sentence each"
    )
    flags = models.JSONField(
        default=list, blank=True, help_text="plan-level flags (per_fraction_dose_suspect …)"
    )
    seconds = models.FloatField(default=0.0, help_text="calculation time")
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = "plan DVH"

    def __str__(self) -> str:
        return f"DVH of plan #{self.plan_id} ({self.state})"


class RoiDvh(models.Model):
    """One ROI's DVH: volumes, flags and the cumulative curve (≤ 400 points, fixed-width text)."""

    plan_dvh = models.ForeignKey(PlanDvh, on_delete=models.CASCADE, related_name="rois")
    roi = models.ForeignKey("catalog.Roi", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    roi_number = models.IntegerField()
    roi_name = models.CharField(max_length=128, help_text="the original name")
    interpreted_type = models.CharField(max_length=32, blank=True)
    volume_cc = models.FloatField(null=True, blank=True)
    covered_volume_cc = models.FloatField(null=True, blank=True, help_text="inside the dose grid; the 100 %")
    flags = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)
    dose_step_gy = models.FloatField(default=0.0, help_text="point k of the curve is at k × step")
    curve_points = models.IntegerField(default=0)
    curve = models.TextField(
        blank=True, help_text=f"cumulative volume (cm³) per point, {CURVE_CELL} characters each"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["plan_dvh", "roi_number"], name="roi_dvh_unique")]
        ordering = ["plan_dvh_id", "roi_number"]
        verbose_name = "ROI DVH"

    def __str__(self) -> str:
        return f"DVH of ROI {self.roi_number}"

    @staticmethod
    def encode_curve(curve: DvhCurve) -> tuple[float, int, str]:
        """(step, points, text) for storage; values are written with 6 significant digits."""
        values = curve.cumulative_cc[:CURVE_MAX_POINTS]
        return curve.dose_step_gy, len(values), "".join(format(v, f"{CURVE_CELL}.6g") for v in values)

    def cumulative_cc(self) -> list[float]:
        text = self.curve
        return [float(text[i : i + CURVE_CELL]) for i in range(0, CURVE_CELL * self.curve_points, CURVE_CELL)]

    def dvh_curve(self, engine_version: str) -> DvhCurve:
        return DvhCurve(self.dose_step_gy, tuple(self.cumulative_cc()), engine_version)


class DvhMetric(models.Model):
    """One metric of one ROI (canonical name, e.g. ``D95%``, ``V20Gy[%]``; value in Gy, % or cc)."""

    roi_dvh = models.ForeignKey(RoiDvh, on_delete=models.CASCADE, related_name="metric_values")
    name = models.CharField(max_length=40)
    value = models.FloatField(null=True, blank=True, help_text="null when undefined for this ROI")
    unit = models.CharField(max_length=4)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["roi_dvh", "name"], name="dvh_metric_unique")]
        verbose_name = "DVH metric"

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"

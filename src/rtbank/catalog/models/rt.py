"""RT objects, the references between objects, and plan bundles.

Each RT table is one-to-one with the :class:`Instance` it summarises, so a corrected version of a plan
gets its own row and history stays intact.
"""

from __future__ import annotations

from django.db import models

from rtbank.catalog.models.hierarchy import Instance


class RTPlan(models.Model):
    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, primary_key=True, related_name="plan")
    label = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=128, blank=True)
    plan_date = models.DateField(null=True, blank=True)
    intent = models.CharField(max_length=32, blank=True, db_index=True)
    geometry = models.CharField(max_length=32, blank=True)
    approval_status = models.CharField(max_length=32, blank=True)
    fractions_planned = models.IntegerField(null=True, blank=True)
    prescription_gy = models.FloatField(null=True, blank=True, help_text="Gy")
    beam_count = models.IntegerField(default=0)
    technique = models.CharField(max_length=32, blank=True)
    radiation_type = models.CharField(max_length=32, blank=True)
    machine = models.CharField(max_length=64, blank=True)
    total_meterset = models.FloatField(null=True, blank=True, help_text="MU per fraction, summed over beams")
    is_ion = models.BooleanField(default=False)
    structure_set_uid = models.CharField(max_length=64, blank=True, db_index=True)
    # Kept current by the analysis stage (see rtbank.catalog.bundles).
    planning_series_uid = models.CharField(max_length=64, blank=True)
    bundle_missing = models.JSONField(
        default=list, blank=True, help_text="[[role, uid], …] referenced but absent"
    )
    bundle_updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"plan {self.label}"


class StructureSet(models.Model):
    instance = models.OneToOneField(
        Instance, on_delete=models.CASCADE, primary_key=True, related_name="structure_set"
    )
    label = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=128, blank=True)
    structure_set_date = models.DateField(null=True, blank=True)
    frame_of_reference_uid = models.CharField(max_length=64, blank=True, db_index=True)
    series_uid = models.CharField(max_length=64, blank=True, db_index=True)
    first_contour_image_uid = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"structure set {self.label}"


class Roi(models.Model):
    structure_set = models.ForeignKey(StructureSet, on_delete=models.CASCADE, related_name="rois")
    number = models.IntegerField()
    name = models.CharField(max_length=128, db_index=True)
    interpreted_type = models.CharField(max_length=32, blank=True)
    color = models.CharField(max_length=7, blank=True, help_text="#rrggbb")
    contour_count = models.IntegerField(default=0)
    frame_of_reference_uid = models.CharField(max_length=64, blank=True)
    generation_algorithm = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["structure_set", "number"], name="roi_number_unique")]
        ordering = ["structure_set_id", "number"]

    @property
    def is_empty(self) -> bool:
        return self.contour_count == 0

    def __str__(self) -> str:
        return f"ROI {self.number}"


class Dose(models.Model):
    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, primary_key=True, related_name="dose")
    rows = models.IntegerField(null=True, blank=True)
    columns = models.IntegerField(null=True, blank=True)
    frames = models.IntegerField(null=True, blank=True)
    pixel_spacing = models.JSONField(null=True, blank=True, help_text="row, column spacing (mm)")
    slice_spacing_mm = models.FloatField(null=True, blank=True)
    units = models.CharField(max_length=16, blank=True)
    dose_type = models.CharField(max_length=16, blank=True)
    summation_type = models.CharField(max_length=32, blank=True)
    grid_scaling = models.FloatField(null=True, blank=True)
    plan_uid = models.CharField(max_length=64, blank=True, db_index=True)
    structure_set_uid = models.CharField(max_length=64, blank=True, db_index=True)
    referenced_beams = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"dose ({self.summation_type})"


class TreatmentRecord(models.Model):
    instance = models.OneToOneField(
        Instance, on_delete=models.CASCADE, primary_key=True, related_name="record"
    )
    treatment_date = models.DateField(null=True, blank=True, db_index=True)
    treatment_time = models.TimeField(null=True, blank=True)
    fraction_number = models.IntegerField(null=True, blank=True)
    plan_uid = models.CharField(max_length=64, blank=True, db_index=True)
    delivered_meterset = models.FloatField(null=True, blank=True, help_text="MU")
    specified_meterset = models.FloatField(null=True, blank=True, help_text="MU")
    beam_count = models.IntegerField(default=0)
    machine = models.CharField(max_length=64, blank=True)
    termination_status = models.CharField(max_length=16, blank=True)
    is_ion = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"record fraction {self.fraction_number}"


class Registration(models.Model):
    instance = models.OneToOneField(
        Instance, on_delete=models.CASCADE, primary_key=True, related_name="registration"
    )
    deformable = models.BooleanField(default=False)
    frames = models.JSONField(default=list)
    series_uids = models.JSONField(default=list)
    matrices = models.JSONField(default=list, help_text="[[frame UID, 16 values row-major], …]")
    registration_types = models.JSONField(default=list)

    def __str__(self) -> str:
        return "registration"


class Reference(models.Model):
    """``source`` references ``target_uid``; followed both ways, resolved by UID whenever the target exists.

    ``level`` says where the target lives: ``instance`` (SOP Instance UID), ``series`` or ``frame``.
    """

    source = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="references")
    kind = models.CharField(max_length=32)
    level = models.CharField(max_length=16)
    target_uid = models.CharField(max_length=64, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "kind", "target_uid"], name="reference_unique")
        ]
        indexes = [models.Index(fields=["target_uid", "kind"], name="reference_target_idx")]

    def __str__(self) -> str:
        return f"{self.source_id} -{self.kind}-> {self.target_uid}"


class PlanBundleMember(models.Model):
    """An instance that belongs to a plan's bundle (see :func:`rtbank.dicom.plan_bundle.plan_bundle`).

    Recomputed when objects of the patient arrive, so a bundle assigned to a project grows with the dose
    and treatment records that come hours or weeks after the plan.
    """

    plan = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="bundle_members")
    member = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="in_bundles")
    role = models.CharField(max_length=32)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["plan", "member"], name="bundle_member_unique")]
        indexes = [models.Index(fields=["member"], name="bundle_member_idx")]

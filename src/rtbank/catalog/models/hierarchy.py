"""Patient → Study → Series → Instance."""

from __future__ import annotations

from django.db import models


class Patient(models.Model):
    """A patient as one institution (or one issuer of patient IDs) knows them.

    The key is ``(issuer, patient_id)``: the Issuer of Patient ID when the data carry one, else the code of
    the submitting institution — two hospitals' patient "12345" are two people.
    """

    issuer = models.CharField(max_length=64)
    patient_id = models.CharField(max_length=64)
    name = models.CharField(max_length=324, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=1, blank=True)
    institution = models.ForeignKey(
        "institutions.Institution", null=True, blank=True, on_delete=models.PROTECT, related_name="patients"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "patient_id"], name="patient_key_unique")]
        ordering = ["issuer", "patient_id"]

    def __str__(self) -> str:
        return f"patient #{self.pk}"


class Study(models.Model):
    """A study of one patient. Keyed by (patient, UID): real archives reuse a Study Instance UID under two
    Patient IDs (one CT exported by two planning systems), and rtbank keeps both as received."""

    uid = models.CharField(max_length=64, db_index=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    date = models.DateField(null=True, blank=True)
    description = models.CharField(max_length=256, blank=True)
    accession_number = models.CharField(max_length=64, blank=True)
    study_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["date", "uid"]
        constraints = [models.UniqueConstraint(fields=["patient", "uid"], name="study_per_patient_unique")]

    def __str__(self) -> str:
        return f"study #{self.pk}"


class Series(models.Model):
    uid = models.CharField(max_length=64, db_index=True)
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="series")
    modality = models.CharField(max_length=16, db_index=True)
    number = models.IntegerField(null=True, blank=True)
    description = models.CharField(max_length=256, blank=True)
    date = models.DateField(null=True, blank=True)
    frame_of_reference_uid = models.CharField(max_length=64, blank=True, db_index=True)
    manufacturer = models.CharField(max_length=128, blank=True)
    model_name = models.CharField(max_length=128, blank=True)
    station_name = models.CharField(max_length=64, blank=True)
    institution_name = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study_id", "number", "uid"]
        verbose_name_plural = "series"
        constraints = [models.UniqueConstraint(fields=["study", "uid"], name="series_per_study_unique")]

    def __str__(self) -> str:
        return f"series #{self.pk} ({self.modality})"


class InstanceState(models.TextChoices):
    CURRENT = "current", "current"
    SUPERSEDED = "superseded", "superseded by a corrected version"
    QUARANTINED = "quarantined", "quarantined: UID collision with another institution"


class Instance(models.Model):
    """One stored SOP instance (one file in the blob store).

    A SOP Instance UID has at most one ``current`` row. A corrected version from the same institution
    supersedes the earlier one (both kept); the same UID with different content from another institution
    is quarantined for an admin, never overwriting anything.
    """

    sop_instance_uid = models.CharField(max_length=64, db_index=True)
    sop_class_uid = models.CharField(max_length=64)
    kind = models.CharField(max_length=32, db_index=True, help_text="RT role, see rtbank.dicom.sop.RtKind")
    # Null only for quarantined collisions: they must not appear under another institution's patient.
    series = models.ForeignKey(
        Series, null=True, blank=True, on_delete=models.PROTECT, related_name="instances"
    )
    state = models.CharField(max_length=16, choices=InstanceState.choices, default=InstanceState.CURRENT)
    version = models.PositiveIntegerField(default=1)
    instance_number = models.IntegerField(null=True, blank=True)
    # Geometry for completeness checks and the viewer (patient coordinates, mm).
    position = models.JSONField(null=True, blank=True, help_text="ImagePositionPatient (mm)")
    orientation = models.JSONField(null=True, blank=True, help_text="ImageOrientationPatient")
    pixel_spacing = models.JSONField(null=True, blank=True, help_text="row, column spacing (mm)")
    slice_thickness = models.FloatField(null=True, blank=True, help_text="mm")
    rows = models.IntegerField(null=True, blank=True)
    columns = models.IntegerField(null=True, blank=True)
    frames = models.IntegerField(null=True, blank=True)
    content_date = models.DateField(null=True, blank=True)
    trial_subject_id = models.CharField(max_length=64, blank=True)
    burned_in_annotation = models.CharField(max_length=3, blank=True)
    # Storage
    blob_key = models.CharField(max_length=200)
    size = models.PositiveBigIntegerField(help_text="bytes")
    file_sha256 = models.CharField(
        max_length=64, help_text="of the stored file; `rtbank verify` re-checks it"
    )
    content_sha256 = models.CharField(
        max_length=64, help_text="of the dataset without file meta: duplicate test"
    )
    transfer_syntax_uid = models.CharField(max_length=64)
    # Provenance
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    received_via = models.CharField(max_length=16, help_text="dicom, import, upload, harvest")
    calling_ae = models.CharField(max_length=16, blank=True)
    called_ae = models.CharField(max_length=16, blank=True)
    source_node = models.ForeignKey(
        "institutions.Node", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    institution = models.ForeignKey(
        "institutions.Institution", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    spool_name = models.CharField(max_length=100, blank=True, help_text="the spool item it came from")
    provenance = models.JSONField(default=dict, blank=True, help_text="e.g. harvest source and run")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sop_instance_uid"],
                condition=models.Q(state="current"),
                name="one_current_version_per_uid",
            )
        ]
        indexes = [
            models.Index(fields=["series", "state"], name="instance_series_state_idx"),
            # RT objects of a set of patients (projects, panels) without reading every image row
            models.Index(fields=["series", "kind"], name="instance_series_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"instance #{self.pk} ({self.kind})"

"""The maps applied to each copy (original → pseudonymous): restricted, never in the admin or on a page.

They re-identify the copies, so they are read only by rtbank itself — to recognise what participants send
back and to make later exports of a copy consistent — and shown to people only as the subject ID ↔
pseudonym list of the audit page (patient IDs only with the ``identifiers`` permission).
"""

from __future__ import annotations

from django.db import models


class PseudonymousPatient(models.Model):
    """A patient of a dataset as one participant's copy names them."""

    participant = models.ForeignKey("audits.Participant", on_delete=models.CASCADE, related_name="patients")
    dataset = models.ForeignKey("audits.AuditDataset", on_delete=models.CASCADE, related_name="+")
    original = models.ForeignKey("catalog.Patient", on_delete=models.PROTECT, related_name="+")
    pseudonym = models.CharField(max_length=64, db_index=True)
    date_shift_days = models.IntegerField(default=0, help_text="days the copy's dates moved (0: not shifted)")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["participant", "dataset"], name="pseudonym_per_dataset_unique"),
        ]

    def __str__(self) -> str:
        return f"pseudonym of patient #{self.original_id} in copy of participant #{self.participant_id}"


class PseudonymousUid(models.Model):
    """One UID of a copy: the original and the copy's own (``2.25.<keyed HMAC>``)."""

    participant = models.ForeignKey("audits.Participant", on_delete=models.CASCADE, related_name="uids")
    dataset = models.ForeignKey(
        "audits.AuditDataset",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="the dataset the UID was first met in",
    )
    original_uid = models.CharField(max_length=64)
    uid = models.CharField(max_length=64, unique=True, help_text="the UID in the copy")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["participant", "original_uid"], name="copy_uid_unique"),
        ]

    def __str__(self) -> str:
        return f"UID of participant #{self.participant_id}'s copy"

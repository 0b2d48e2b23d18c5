"""ROI name mapping: a project's rules, their stored result per original name, and the TG-263 list."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from rtbank.dicom.roi_patterns import MappingRule, fold_name

NO_INSTITUTION = 0  # institution key of ROIs whose institution is unknown (only global rules apply)


class RoiMappingRule(models.Model):
    """``pattern → standard name`` in one project, for all institutions or one (``dicom.roi_patterns``)."""

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="roi_mapping_rules"
    )
    institution = models.ForeignKey(
        "institutions.Institution",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="empty: the rule applies to every institution",
    )
    pattern = models.CharField(
        max_length=128, help_text="* any characters, ? one character; case and spaces folded"
    )
    folded_pattern = models.CharField(max_length=128, editable=False)
    standard_name = models.CharField(max_length=64)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "standard_name", "folded_pattern"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "institution", "folded_pattern"],
                name="mapping_rule_unique_per_institution",
            ),
            models.UniqueConstraint(
                fields=["project", "folded_pattern"],
                condition=Q(institution__isnull=True),
                name="mapping_rule_unique_global",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pattern} -> {self.standard_name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.folded_pattern = fold_name(self.pattern)
        super().save(*args, **kwargs)

    def as_rule(self) -> MappingRule:
        return MappingRule(self.pattern, self.standard_name, scope=self.institution_id, key=self.pk)


class MappingStatus(models.TextChoices):
    MATCHED = "matched", "one standard name"
    CONFLICT = "conflict", "rules of equal rank disagree"


class RoiNameMapping(models.Model):
    """The rules' verdict on one original ROI name from one institution, kept for SQL and fast pages.

    Recomputed for the whole project when its rules change and for new names when data arrives, so it is
    always the rules applied to all data; names no rule matches have no row. The DICOM is never changed.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    institution_key = models.IntegerField(help_text="institution id of the structure set, 0 when unknown")
    roi_name = models.CharField(max_length=128, help_text="the original name, exactly as received")
    status = models.CharField(max_length=16, choices=MappingStatus.choices)
    standard_name = models.CharField(max_length=64, blank=True, help_text="empty in a conflict")
    rule = models.ForeignKey(
        RoiMappingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    candidates = models.JSONField(default=list, blank=True, help_text="the standard names in a conflict")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "institution_key", "roi_name"], name="roi_name_mapping_unique"
            )
        ]
        indexes = [models.Index(fields=["project", "standard_name"], name="roi_mapping_standard_idx")]

    def __str__(self) -> str:
        return f"{self.roi_name} -> {self.standard_name or 'conflict'}"


class Tg263Name(models.Model):
    """One name of the AAPM TG-263 nomenclature, imported by a site admin (used for suggestions only)."""

    name = models.CharField(max_length=64, unique=True, help_text="TG-263 primary name")
    reverse_name = models.CharField(max_length=64, blank=True, help_text="TG-263 reverse order name")
    target_type = models.CharField(max_length=32, blank=True)
    major_category = models.CharField(max_length=64, blank=True)
    minor_category = models.CharField(max_length=64, blank=True)
    anatomic_group = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=256, blank=True)
    fma_id = models.CharField(max_length=16, blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="file name and SHA-256 it came from")
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "TG-263 name"

    def __str__(self) -> str:
        return self.name

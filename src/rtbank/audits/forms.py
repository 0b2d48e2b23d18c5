"""The audit creation form: cases, contents, de-identification options, participants."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from rtbank.audits.models import TARGET_TYPES, Content
from rtbank.audits.services import DEFAULT_CONTENTS, PLAN_KINDS, ParticipantSpec
from rtbank.dicom.anonymize import Option
from rtbank.institutions.models import Institution
from rtbank.projects.access import Access
from rtbank.projects.models import Project

MAX_CHOICES = 2000
OPTION_LABELS = {
    Option.RETAIN_LONGITUDINAL_MODIFIED_DATES: "keep time intervals, dates shifted per copy",
    Option.RETAIN_LONGITUDINAL_FULL_DATES: "keep dates as they are",
    Option.CLEAN_DESCRIPTORS: "keep descriptions and ROI names after cleaning",
    Option.RETAIN_PATIENT_CHARACTERISTICS: "keep sex, age, size, weight",
    Option.RETAIN_DEVICE_IDENTITY: "keep device and machine names",
    Option.RETAIN_INSTITUTION_IDENTITY: "keep institution names",
}


class AuditForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    subjects = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="whole patients (what the project holds of them)",
    )
    plans = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="plans with the objects they reference"
    )
    contents = forms.MultipleChoiceField(
        choices=Content.choices, initial=DEFAULT_CONTENTS, widget=forms.CheckboxSelectMultiple
    )
    remove_roi_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in TARGET_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="ROIs of these types are left out of the copies",
    )
    options = forms.MultipleChoiceField(
        choices=[(o.value, f"{o.cli_name}: {label}") for o, label in OPTION_LABELS.items()],
        required=False,
        initial=[Option.RETAIN_LONGITUDINAL_MODIFIED_DATES.value, Option.CLEAN_DESCRIPTORS.value],
        widget=forms.CheckboxSelectMultiple,
    )
    participants = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="a number of observers, or one participant a line: name | DICOM node | institution code "
        "(node and institution optional; nodes from the project's destination list)",
    )

    def __init__(self, access: Access, project: Project, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.project = project
        label = access.labeller(project)
        subjects = access.subjects(project).select_related("patient").order_by("subject_id")[:MAX_CHOICES]
        self.fields["subjects"].choices = [(s.subject_id, label(s.patient)) for s in subjects]
        plans = (
            access.instances(project)
            .filter(kind__in=PLAN_KINDS)
            .select_related("plan", "series__study__patient")
            .order_by("pk")[:MAX_CHOICES]
        )
        self.fields["plans"].choices = [
            (
                p.sop_instance_uid,
                f"{label(p.series.study.patient)}: {getattr(getattr(p, 'plan', None), 'label', '')}",
            )
            for p in plans
        ]
        self.nodes = {n.name: n for n in project.destinations.all()}

    def clean_participants(self) -> list[ParticipantSpec] | int:
        text = self.cleaned_data["participants"].strip()
        if text.isdigit():
            count = int(text)
            if not 1 <= count <= 200:
                raise ValidationError("between 1 and 200 participants")
            return count
        specs = []
        for line in text.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if not parts[0]:
                continue
            node = institution = None
            if len(parts) > 1 and parts[1]:
                node = self.nodes.get(parts[1])
                if node is None:
                    raise ValidationError(
                        f"{parts[1]!r} is not on the project's destination list "
                        f"({', '.join(sorted(self.nodes)) or 'empty'})"
                    )
            if len(parts) > 2 and parts[2]:
                institution = Institution.objects.filter(code=parts[2]).first()
                if institution is None:
                    raise ValidationError(f"no institution with the code {parts[2]!r}")
            specs.append(ParticipantSpec(parts[0][:100], institution, node))
        if not specs:
            raise ValidationError("name at least one participant (or give a number of observers)")
        return specs

"""What the project page shows: subject rows, plan rows, counts per institution, patients over time.

Every function takes a project the caller has already checked through :class:`~rtbank.projects.access.Access`
and works one page at a time (a fixed number of queries per page, whatever the project's size), so a project
with thousands of patients renders as fast as a small one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import CharField, Count, Q, QuerySet
from django.db.models.functions import Cast, Substr

from rtbank.catalog.models import Instance, InstanceState, RTPlan
from rtbank.projects.access import PLAN_KINDS, Access, instances_in
from rtbank.projects.models import Project, ProjectPlan, ProjectSubject


@dataclass
class PlanCell:
    instance: Instance
    info: RTPlan | None

    @property
    def missing(self) -> int:
        return len(self.info.bundle_missing) if self.info else 0


@dataclass
class SubjectRow:
    subject: ProjectSubject
    label: str
    plans: list[PlanCell] = field(default_factory=list)

    @property
    def incomplete(self) -> int:
        return sum(1 for p in self.plans if p.missing)

    @property
    def status(self) -> str:
        if not self.plans:
            return "no plan"
        return (
            "complete" if not self.incomplete else f"{self.incomplete} of {len(self.plans)} plans incomplete"
        )


def filtered_subjects(
    access: Access, project: Project, query: str = "", institution: str = ""
) -> QuerySet[ProjectSubject]:
    """Subjects matching a search: subject ID always; Patient ID and name only for holders of
    ``identifiers``."""
    qs = ProjectSubject.objects.filter(project=project).select_related("patient__institution")
    if query:
        match = Q(subject_id__icontains=query)
        if access.shows_identifiers(project):
            match |= Q(patient__patient_id__icontains=query) | Q(patient__name__icontains=query)
        qs = qs.filter(match)
    if institution:
        qs = qs.filter(patient__institution__code=institution)
    return qs.order_by("subject_id")


def subject_rows(access: Access, project: Project, subjects: list[ProjectSubject]) -> list[SubjectRow]:
    """Rows for one page of subjects with their plans (key values, plan-bundle completeness): two queries."""
    identifiers = access.shows_identifiers(project)
    rows = [SubjectRow(s, s.patient.patient_id if identifiers else s.subject_id) for s in subjects]
    whole = [s.patient_id for s in subjects if s.whole_patient]
    partial = [s.pk for s in subjects if not s.whole_patient]
    plans: dict[int, list[PlanCell]] = defaultdict(list)
    current = Instance.objects.filter(state=InstanceState.CURRENT, kind__in=PLAN_KINDS).select_related(
        "plan", "series__study"
    )
    # Two index-driven queries (an OR of the two would scan every plan of the catalog).
    found = list(current.filter(series__study__patient_id__in=whole)) if whole else []
    if partial:
        found += list(
            current.filter(pk__in=ProjectPlan.objects.filter(subject_id__in=partial).values("plan_id"))
        )
    for inst in sorted(found, key=lambda i: (i.received_at, i.pk)):
        plans[inst.series.study.patient_id].append(PlanCell(inst, getattr(inst, "plan", None)))
    for row in rows:
        row.plans = plans.get(row.subject.patient_id, [])
    return rows


def plan_rows(project: Project) -> QuerySet[Instance]:
    """The project's current plans with their key values (paginate the result)."""
    return (
        instances_in(project, kinds=PLAN_KINDS)
        .select_related("plan", "series__study__patient__institution")
        .order_by("-received_at", "pk")
    )


def plan_subject_labels(
    access: Access, project: Project, plans: list[Instance]
) -> dict[int, tuple[str, str]]:
    """Plan instance id → (subject ID for links, label to show) for one page of plans."""
    patient_ids = {p.series.study.patient_id for p in plans}
    subjects = {
        s.patient_id: s
        for s in ProjectSubject.objects.filter(project=project, patient_id__in=patient_ids).select_related(
            "patient"
        )
    }
    out = {}
    for plan in plans:
        subject = subjects.get(plan.series.study.patient_id)
        if subject is not None:
            out[plan.pk] = (subject.subject_id, access.patient_label(project, subject))
    return out


def counts_by_institution(project: Project) -> list[dict[str, Any]]:
    return list(
        ProjectSubject.objects.filter(project=project)
        .values("patient__institution__code", "patient__institution__name")
        .annotate(patients=Count("id"))
        .order_by("-patients", "patient__institution__code")
    )


def patients_over_time(project: Project) -> dict[str, list[Any]]:
    """Cumulative number of the project's patients by month of arrival (first object received, UTC months).

    Grouped in the database (``YYYY-MM`` of the stored timestamp), so a project of thousands of patients
    returns a hundred rows, not thousands.
    """
    month = Substr(Cast("patient__created_at", output_field=CharField()), 1, 7)
    per_month = (
        ProjectSubject.objects.filter(project=project)
        .annotate(month=month)
        .values("month")
        .annotate(n=Count("id"))
        .order_by("month")
    )
    labels, totals, running = [], [], 0
    for row in per_month:
        running += row["n"]
        labels.append(row["month"] or "unknown")
        totals.append(running)
    return {"labels": labels, "cumulative": totals}

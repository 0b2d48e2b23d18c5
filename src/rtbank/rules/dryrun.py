"""What a rule would do on the data already stored, before anyone enables it.

The person sees each target they may see (through a ``view`` grant on a project holding it, or in their
inbox as a site admin or the institution's data manager) and only counts for the rest — a dry run never
shows data the person could not open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from rtbank.catalog.models import Patient, RTPlan
from rtbank.projects.access import Access, instances_in
from rtbank.projects.models import Permission, ProjectSubject
from rtbank.rules.engine import Target, outside_project, targets
from rtbank.rules.matching import matching
from rtbank.rules.models import FiringOutcome, Rule, RuleFiring

MAX_ROWS = 200


@dataclass
class DryRunRow:
    what: str  # "plan", "patient" or "waiting"
    label: str  # subject ID (or Patient ID where the person may see it)
    where: str  # project code, or "inbox"
    detail: str
    fired: bool  # the rule has done this already
    refused: bool  # a project rule could not take it (objects from outside the project)


@dataclass
class DryRun:
    objects: int = 0
    targets: int = 0
    patients: int = 0
    waiting: int = 0
    refused: int = 0
    already: int = 0
    hidden: int = 0
    stopped_early: bool = False
    rows: list[DryRunRow] = field(default_factory=list)


def dry_run(rule: Rule, access: Access, *, limit: int | None = None) -> DryRun:
    matches, stopped = matching(rule, limit=limit or settings.RULES_DRY_RUN_LIMIT)
    found = targets(rule, matches)
    report = DryRun(
        objects=len(matches),
        targets=sum(1 for t in found if not t.waiting),
        patients=len({m.patient_id for m in matches}),
        waiting=sum(1 for t in found if t.waiting),
        stopped_early=stopped,
    )
    done = set(
        RuleFiring.objects.filter(rule=rule, outcome=FiringOutcome.DONE)
        .exclude(action="match")
        .values_list("target", flat=True)
    )
    viewer = _Visibility(access)
    for target in found:
        refused = not target.waiting and outside_project(rule, target) > 0
        report.refused += refused
        report.already += target.key in done
        shown = viewer.describe(target)
        if shown is None or len(report.rows) >= MAX_ROWS:
            report.hidden += 1
            continue
        label, where = shown
        report.rows.append(
            DryRunRow(
                "waiting" if target.waiting else ("plan" if target.plan_id else "patient"),
                label,
                where,
                _detail(target),
                target.key in done,
                refused,
            )
        )
    return report


class _Visibility:
    def __init__(self, access: Access) -> None:
        self.access = access
        self.projects = list(access.projects(Permission.VIEW))
        self.inbox = set(access.inbox_patients().values_list("pk", flat=True)) if self._routes() else set()

    def _routes(self) -> bool:
        profile = getattr(self.access.user, "profile", None)
        return self.access.site_admin or bool(profile and profile.has_role("data_manager"))

    def describe(self, target: Target) -> tuple[str, str] | None:
        """``(label, where)`` when the person may see the target, else ``None``."""
        for project in self.projects:
            subject = (
                ProjectSubject.objects.filter(project=project, patient_id=target.patient_id)
                .select_related("patient")
                .first()
            )
            if subject is None:
                continue
            if target.plan_id is None and not subject.whole_patient:
                continue
            if target.plan_id is not None and not instances_in(project).filter(pk=target.plan_id).exists():
                continue
            return self.access.patient_label(project, subject), project.code
        if target.patient_id in self.inbox:
            patient = Patient.objects.get(pk=target.patient_id)
            return patient.patient_id, "inbox"
        return None


def _detail(target: Target) -> str:
    if target.plan_id is None:
        return (
            "all objects of the patient"
            if not target.waiting
            else "matching objects, no plan references them yet"
        )
    plan = RTPlan.objects.filter(instance_id=target.plan_id).first()
    return f"plan {plan.label}" if plan and plan.label else f"plan #{target.plan_id}"

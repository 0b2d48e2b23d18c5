"""A project's plans with their ROIs seen through the mapping: the overview matrix, and what CSV and QA read.

Only ROIs with contours count (an empty ROI — e.g. a name typed to trigger a rule — has no volume and
no DVH). A plan's ROIs are those of the structure set the plan references.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db.models import QuerySet

from rtbank.analysis.mapping import MappingIndex
from rtbank.analysis.models import NO_INSTITUTION, DoseConstraint, RequiredRoi, RoiMappingRule
from rtbank.catalog.models import Instance, InstanceState, Patient, Roi, RTPlan
from rtbank.projects.access import PLAN_KINDS, instances_in
from rtbank.projects.models import Project


@dataclass(frozen=True)
class RoiView:
    roi_id: int
    number: int
    name: str
    interpreted_type: str
    status: str  # matched, conflict, unmatched
    standard_name: str
    candidates: tuple[str, ...] = ()


@dataclass
class PlanRois:
    plan: Instance
    rtplan: RTPlan | None
    structure_set: Instance | None
    institution_key: int = NO_INSTITUTION
    rois: list[RoiView] = field(default_factory=list)

    def by_standard(self) -> dict[str, list[RoiView]]:
        out: dict[str, list[RoiView]] = {}
        for roi in self.rois:
            if roi.standard_name:
                out.setdefault(roi.standard_name, []).append(roi)
        return out


def project_plans(project: Project) -> QuerySet[Instance]:
    """Current plans the project holds, with their patient, in a stable order."""
    return (
        instances_in(project, kinds=PLAN_KINDS)  # narrowed inside the subquery, not over every instance
        .select_related("plan", "series__study__patient")
        .order_by("series__study__patient_id", "pk")
    )


def plan_rois(index: MappingIndex, plans: Iterable[Instance]) -> dict[int, PlanRois]:
    """Plan id → its contoured ROIs with their standard names (three queries for any number of plans)."""
    plans = list(plans)
    rtplans = {p.instance_id: p for p in RTPlan.objects.filter(instance__in=plans)}
    ss_uids = {rt.structure_set_uid for rt in rtplans.values() if rt.structure_set_uid}
    structure_sets = {
        i.sop_instance_uid: i
        for i in Instance.objects.filter(
            sop_instance_uid__in=ss_uids, state=InstanceState.CURRENT, kind="structure_set"
        )
    }
    rois: dict[int, list[Roi]] = {}
    for roi in Roi.objects.filter(
        structure_set_id__in=[i.pk for i in structure_sets.values()], contour_count__gt=0
    ):
        rois.setdefault(roi.structure_set_id, []).append(roi)
    out = {}
    for plan in plans:
        rt = rtplans.get(plan.pk)
        ss = structure_sets.get(rt.structure_set_uid) if rt and rt.structure_set_uid else None
        ikey = (ss.institution_id or NO_INSTITUTION) if ss else NO_INSTITUTION
        views = [
            RoiView(
                r.pk,
                r.number,
                r.name,
                r.interpreted_type,
                index.status(ikey, r.name),
                index.standard(ikey, r.name),
                tuple(index.candidates(ikey, r.name)),
            )
            for r in sorted(rois.get(ss.pk, []) if ss else [], key=lambda r: r.number)
        ]
        out[plan.pk] = PlanRois(plan, rt, ss, ikey, views)
    return out


def standard_columns(project: Project, index: MappingIndex) -> list[str]:
    """The project's standard names: required ROIs, constrained ROIs, and every name a rule gives."""
    names = set(RequiredRoi.objects.filter(project=project).values_list("standard_name", flat=True))
    names |= set(DoseConstraint.objects.filter(project=project).values_list("standard_name", flat=True))
    names |= {verdict[1] for verdict in index.verdicts.values() if verdict[1]}
    names |= set(RoiMappingRule.objects.filter(project=project).values_list("standard_name", flat=True))
    return sorted(names, key=str.casefold)


@dataclass
class MatrixRow:
    subject_id: str
    plan: Instance
    label: str
    has_structure_set: bool
    cells: list[tuple[str, int, list[str]]]  # (standard name, matches, original names)


@dataclass
class Matrix:
    columns: list[str]
    rows: list[MatrixRow]
    unmatched: list[tuple[str, int, int]]  # (original name, institution key, plans)
    conflicts: list[tuple[str, int, list[str], int]]  # (name, institution key, candidates, plans)
    totals: dict[str, Counter[str]]  # standard name → none / one / several counts


def overview_matrix(project: Project, plans: list[Instance], label: Callable[[Patient], str]) -> Matrix:
    """Plans × standard ROI names; ``label`` names a patient as the viewer may see it."""
    index = MappingIndex.of(project)
    columns = standard_columns(project, index)
    per_plan = plan_rois(index, plans)
    unmatched: Counter[tuple[str, int]] = Counter()
    conflicts: dict[tuple[str, int], tuple[list[str], int]] = {}
    totals: dict[str, Counter[str]] = {c: Counter() for c in columns}
    rows = []
    for plan in plans:
        info = per_plan[plan.pk]
        by_standard = info.by_standard()
        cells = []
        for column in columns:
            names = [r.name for r in by_standard.get(column, [])]
            cells.append((column, len(names), names))
            totals[column]["none" if not names else "one" if len(names) == 1 else "several"] += 1
        for roi in info.rois:
            key = (roi.name, info.institution_key)
            if roi.status == "unmatched":
                unmatched[key] += 1
            elif roi.status == "conflict":
                conflicts[key] = (list(roi.candidates), conflicts.get(key, ([], 0))[1] + 1)
        rows.append(
            MatrixRow(
                label(plan.series.study.patient),
                plan,
                info.rtplan.label if info.rtplan else "",
                info.structure_set is not None,
                cells,
            )
        )
    return Matrix(
        columns,
        rows,
        sorted(((n, k, c) for (n, k), c in unmatched.items()), key=lambda t: (-t[2], t[0].casefold())),
        sorted(((n, k, c, p) for (n, k), (c, p) in conflicts.items()), key=lambda t: t[0].casefold()),
        totals,
    )

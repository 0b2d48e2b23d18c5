"""Protocol QA while a project collects: each plan against the project's required ROIs and dose constraints.

Evaluated when a plan's DVH is stored, when data of the patient arrives (the analysis stage), and when
the protocol or the mapping rules change. The project's managers (``members`` or ``rules`` permission)
are told when a plan deviates — once per plan, again only if it later deviates more seriously; edits of
the protocol itself re-grade plans without notifying.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from rtbank.analysis.calculation import PLAN_KINDS, needs_calculation, plan_inputs, required_metric_names
from rtbank.analysis.mapping import MappingIndex
from rtbank.analysis.models import (
    QA_SEVERITY,
    DoseConstraint,
    DvhMetric,
    DvhState,
    PlanDvh,
    PlanQa,
    QaResult,
    QaStatus,
    RequiredRoi,
)
from rtbank.analysis.overview import PlanRois, plan_rois, project_plans
from rtbank.analysis.protocol import constraint_text, constraint_value, grade
from rtbank.catalog.models import Instance, InstanceState
from rtbank.projects.access import projects_holding, today
from rtbank.projects.models import Grant, Permission, Project, ProjectSubject

DEVIATIONS = {QaStatus.MAJOR, QaStatus.MINOR, QaStatus.MISSING_ROI, QaStatus.AMBIGUOUS_ROI}
EVENT = "protocol_deviation"


def has_protocol(project: Project) -> bool:
    return (
        RequiredRoi.objects.filter(project=project).exists()
        or DoseConstraint.objects.filter(project=project).exists()
    )


def evaluate_project(project: Project, *, notify: bool = False) -> int:
    """Grade every plan of the project (after a protocol or rule change); returns the plans graded."""
    plans = list(project_plans(project))
    if not has_protocol(project):
        PlanQa.objects.filter(project=project).delete()
        QaResult.objects.filter(project=project).delete()
        return 0
    index = MappingIndex.of(project)
    views = plan_rois(index, plans)
    for plan in plans:
        evaluate(project, views[plan.pk], notify=notify)
    return len(plans)


def evaluate_plan_everywhere(plan: Instance, *, notify: bool) -> None:
    for project in projects_holding(plan):
        if has_protocol(project):
            evaluate(
                project, plan_rois(MappingIndex.for_plans(project, [plan]), [plan])[plan.pk], notify=notify
            )


def evaluate_patient(patient_id: int, *, notify: bool) -> None:
    plans = Instance.objects.filter(
        series__study__patient_id=patient_id, state=InstanceState.CURRENT, kind__in=PLAN_KINDS
    )
    for plan in plans:
        evaluate_plan_everywhere(plan, notify=notify)


def evaluate(project: Project, info: PlanRois, *, notify: bool) -> PlanQa:
    """Grade one plan: required ROIs present once, each constraint pass / minor / major."""
    plan = info.plan
    by_standard = info.by_standard()
    results = [
        _required(project, plan, r.standard_name, by_standard.get(r.standard_name, []))
        for r in RequiredRoi.objects.filter(project=project)
    ]
    dvh = PlanDvh.objects.filter(plan=plan, state=DvhState.OK).first()
    metrics = _metrics(dvh) if dvh else {}
    rx = info.rtplan.prescription_gy if info.rtplan else None
    for constraint in DoseConstraint.objects.filter(project=project):
        results.append(
            _constraint(
                project, plan, constraint, by_standard.get(constraint.standard_name, []), dvh, metrics, rx
            )
        )
    worst = next((s for s in QA_SEVERITY if any(r.status == s for r in results)), QaStatus.PASS)
    deviations = sum(1 for r in results if r.status in DEVIATIONS)
    with transaction.atomic():
        QaResult.objects.filter(project=project, plan=plan).delete()
        QaResult.objects.bulk_create(results)
        summary, _ = PlanQa.objects.update_or_create(
            project=project, plan=plan, defaults={"status": worst, "deviations": deviations}
        )
        if notify and worst in DEVIATIONS and _settled(plan) and _worse_than_notified(summary):
            _notify(project, plan, results, summary)
    return summary


def _required(project: Project, plan: Instance, standard: str, matches: list) -> QaResult:
    if not matches:
        status, detail = QaStatus.MISSING_ROI, f"no ROI maps to {standard}"
    elif len(matches) > 1:
        status, detail = QaStatus.AMBIGUOUS_ROI, "several ROIs: " + ", ".join(r.name for r in matches)
    else:
        status, detail = QaStatus.PASS, f"ROI {matches[0].name}"
    return QaResult(project=project, plan=plan, standard_name=standard, status=status, detail=detail[:300])


def _constraint(
    project: Project,
    plan: Instance,
    c: DoseConstraint,
    matches: list,
    dvh: PlanDvh | None,
    metrics: dict[int, dict[str, float | None]],
    rx: float | None,
) -> QaResult:
    result = QaResult(project=project, plan=plan, constraint=c, standard_name=c.standard_name)
    if not matches:
        result.status, result.detail = QaStatus.MISSING_ROI, f"no ROI maps to {c.standard_name}"
        return result
    if len(matches) > 1:
        result.status = QaStatus.AMBIGUOUS_ROI
        result.detail = ("several ROIs: " + ", ".join(r.name for r in matches))[:300]
        return result
    roi = matches[0]
    raw = metrics.get(roi.number, {}).get(c.metric) if dvh else None
    value = constraint_value(raw, c.unit, rx) if raw is not None else None
    if value is None:
        result.status = QaStatus.NOT_EVALUATED
        result.detail = (
            "no DVH yet"
            if dvh is None
            else f"{c.metric} undefined for {roi.name}"
            if raw is None
            else "the plan states no prescription"
        )
        return result
    result.value = round(value, 4)
    result.status = QaStatus(grade(value, c.operator, c.limit, c.minor_limit))
    result.detail = f"{roi.name}: {c.metric} = {value:.4g} {c.unit} ({constraint_text(c)})"[:300]
    return result


def _metrics(dvh: PlanDvh) -> dict[int, dict[str, float | None]]:
    out: dict[int, dict[str, float | None]] = {}
    for number, name, value in DvhMetric.objects.filter(roi_dvh__plan_dvh=dvh).values_list(
        "roi_dvh__roi_number", "name", "value"
    ):
        out.setdefault(number, {})[name] = value
    return out


def _settled(plan: Instance) -> bool:
    """No DVH on its way: its result is final for now (so managers are told once, with the dose results)."""
    return not needs_calculation(plan_inputs(plan), required_metric_names())


def _worse_than_notified(summary: PlanQa) -> bool:
    if summary.notified_at is None or not summary.notified_status:
        return True
    order = [str(s) for s in QA_SEVERITY]
    return order.index(summary.status) < order.index(summary.notified_status)


def managers(project: Project) -> list[User]:
    """People managing the project: a live ``members`` or ``rules`` grant."""
    day = today()
    if project.is_suspended(day):
        return []
    ids = Grant.objects.filter(
        project=project, permission__in=[Permission.MEMBERS, Permission.RULES], expires_on__gte=day
    ).values("user_id")
    return list(User.objects.filter(pk__in=ids, is_active=True))


def _notify(project: Project, plan: Instance, results: list[QaResult], summary: PlanQa) -> None:
    from rtbank.notifications.services import notify

    subject_id = (
        ProjectSubject.objects.filter(project=project, patient_id=plan.series.study.patient_id)
        .values_list("subject_id", flat=True)
        .first()
        or "a subject"
    )
    counts = {s: sum(1 for r in results if r.status == s) for s in DEVIATIONS}
    parts = [f"{n} {QaStatus(s).label}" for s, n in sorted(counts.items()) if n]
    body = (
        f"A plan of subject {subject_id} in project {project.code} deviates from the protocol: "
        f"{', '.join(parts)}. The protocol QA page lists each constraint."
    )
    notify(
        managers(project),
        EVENT,
        f"Protocol deviation in {project.code}",
        body,
        url=f"/projects/{project.code}/analysis/qa/?plan={plan.sop_instance_uid}",
    )
    PlanQa.objects.filter(pk=summary.pk).update(notified_at=timezone.now(), notified_status=summary.status)

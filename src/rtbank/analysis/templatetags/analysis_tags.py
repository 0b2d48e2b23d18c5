"""What the analysis panels on the projects area's pages show (see ``rtbank.web.panels``).

Each tag reads only objects the page already established through the access helper: the project (checked
for ``view`` by the panel's predicate), the plan the page showed, or the instances the project holds of
the subject (``instances`` in the page context).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Count

from rtbank.analysis import calculation, services
from rtbank.analysis.mapping import MappingIndex
from rtbank.analysis.models import (
    DvhState,
    PlanDvh,
    PlanQa,
    PlanSummary,
    QaResult,
    RoiDvh,
    SeriesCompleteness,
)
from rtbank.analysis.overview import plan_rois, project_plans
from rtbank.catalog.models import Instance, Roi

register = template.Library()
MAX_PLOTTED_ROIS = 60


@register.simple_tag(takes_context=True)
def analysis_project(context: template.Context) -> dict[str, Any]:
    project = context["project"]
    plans = project_plans(project).order_by()
    ids = list(plans.values_list("pk", flat=True))
    # Counted in SQL, grouped; the plans as a subquery (a 5,000-id parameter list costs more to bind).
    in_project = plans.values("pk")
    complete = dict(
        PlanSummary.objects.filter(plan_id__in=in_project)
        .values("complete")
        .annotate(n=Count("pk"))
        .values_list("complete", "n")
    )
    qa = (
        PlanQa.objects.filter(project=project, plan_id__in=in_project)
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return {
        "progress": calculation.dvh_progress(ids),
        "incomplete": complete.get(False, 0),
        "complete": complete.get(True, 0),
        "qa": sorted(qa),
    }


@register.simple_tag(takes_context=True)
def analysis_subject(context: template.Context) -> dict[str, Any]:
    """Completeness of the subject's series and plans the project holds, and each plan's delivery."""
    allowed = set(context.get("instances") or ())
    series_ids = set(Instance.objects.filter(pk__in=allowed).values_list("series_id", flat=True))
    series = (
        SeriesCompleteness.objects.filter(series_id__in=series_ids)
        .select_related("series")
        .order_by("series__study__date", "series_id")
    )
    plans = PlanSummary.objects.filter(plan_id__in=allowed).select_related("plan__plan").order_by("plan_id")
    return {"series": list(series), "plans": list(plans)}


@register.simple_tag(takes_context=True)
def analysis_plan(context: template.Context) -> dict[str, Any]:
    """The plan's DVH (curves for the plot, metrics of the project's list), QA, completeness, delivery."""
    project, plan = context["project"], context["plan"]
    dvh = PlanDvh.objects.filter(plan=plan).first()
    metrics = services.project_metrics(project)
    info = plan_rois(MappingIndex.for_plans(project, [plan]), [plan])[plan.pk]
    standard = {r.roi_id: r.standard_name for r in info.rois}
    rows: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    if dvh is not None and dvh.state == DvhState.OK:
        colours = dict(Roi.objects.filter(pk__in=list(standard)).values_list("pk", "color"))
        values = _values(dvh, metrics)
        for roi in RoiDvh.objects.filter(plan_dvh=dvh).order_by("roi_number"):
            rows.append(
                {
                    "roi": roi,
                    "standard": standard.get(roi.roi_id, ""),
                    "values": [values.get(roi.pk, {}).get(m) for m in metrics],
                }
            )
            if roi.curve_points and len(curves) < MAX_PLOTTED_ROIS and roi.cumulative_cc()[0] > 0:
                curve = roi.cumulative_cc()
                curves.append(
                    {
                        "name": roi.roi_name,
                        "standard": standard.get(roi.roi_id, ""),
                        "color": colours.get(roi.roi_id) or "",
                        "step": roi.dose_step_gy,
                        "volume_pct": [round(100 * v / curve[0], 3) for v in curve],
                    }
                )
    return {
        "dvh": dvh,
        "metrics": metrics,
        "rows": rows,
        "chart": {"rois": curves},
        "queued": calculation.dvh_progress(Instance.objects.filter(pk=plan.pk))["queued"] > 0,
        "summary": PlanSummary.objects.filter(plan=plan).first(),
        "qa": PlanQa.objects.filter(project=project, plan=plan).first(),
        "qa_results": list(QaResult.objects.filter(project=project, plan=plan).select_related("constraint")),
    }


def _values(dvh: PlanDvh, metrics: list[str]) -> dict[int, dict[str, float | None]]:
    from rtbank.analysis.models import DvhMetric

    out: dict[int, dict[str, float | None]] = {}
    for roi_id, name, value in DvhMetric.objects.filter(roi_dvh__plan_dvh=dvh, name__in=metrics).values_list(
        "roi_dvh_id", "name", "value"
    ):
        out.setdefault(roi_id, {})[name] = value
    return out

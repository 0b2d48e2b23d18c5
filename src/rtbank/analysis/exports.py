"""The project tables behind the CSV downloads (and the pages): metrics, curves, plans, protocol QA.

Rows identify a patient by the label the caller passes (the subject ID, or the Patient ID for people
holding ``identifiers``); the views make those labels with the access helper. Metrics and curves are
per *standard* ROI: a standard name matched by one ROI of the plan gives its values, several give one
row marked ``ambiguous`` without values (a researcher must never get the wrong ROI silently).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rtbank.analysis.mapping import MappingIndex
from rtbank.analysis.models import DvhMetric, DvhState, PlanDvh, PlanQa, PlanSummary, QaResult, RoiDvh
from rtbank.analysis.overview import PlanRois, plan_rois
from rtbank.analysis.protocol import constraint_text
from rtbank.catalog.models import Instance, Patient
from rtbank.dicom.dvh import parse_metric

Labeller = Callable[[Patient], str]


@dataclass(frozen=True)
class Identity:
    """How rows name patients: ``label(patient)``, plus real ID and name columns with ``identifiers``."""

    label: Labeller
    identifiers: bool

    def header(self) -> list[str]:
        return ["subject", *(["patient_id", "patient_name"] if self.identifiers else [])]

    def cells(self, patient: Patient) -> list[Any]:
        return [self.label(patient), *([patient.patient_id, patient.name] if self.identifiers else [])]


def check_metrics(names: list[str], allowed: list[str]) -> list[str]:
    """Canonical names of the requested metrics, each one the project offers.

    Raises ValueError naming a metric that cannot be read or is not offered.
    """
    chosen = []
    for name in names:
        canonical = parse_metric(name).name
        if canonical not in allowed:
            raise ValueError(f"{canonical} is not in this project's metric list ({', '.join(allowed)})")
        chosen.append(canonical)
    return list(dict.fromkeys(chosen))


def _dvhs(plans: list[Instance]) -> dict[int, PlanDvh]:
    return {d.plan_id: d for d in PlanDvh.objects.filter(plan__in=plans, state=DvhState.OK)}


def _roi_rows(dvhs: dict[int, PlanDvh]) -> dict[tuple[int, int], RoiDvh]:
    rows = RoiDvh.objects.filter(plan_dvh__in=list(dvhs.values()))
    return {(r.plan_dvh_id, r.roi_id): r for r in rows if r.roi_id is not None}


def _standard_rois(info: PlanRois, wanted: set[str] | None) -> Iterator[tuple[str, list[Any]]]:
    for standard, rois in sorted(info.by_standard().items(), key=lambda kv: kv[0].casefold()):
        if wanted is None or standard in wanted:
            yield standard, rois


def metric_rows(
    project: Any, plans: list[Instance], who: Identity, metrics: list[str], rois: set[str] | None = None
) -> tuple[list[str], Iterator[list[Any]]]:
    """Header and rows: one per subject × plan × standard ROI, with the chosen metric columns."""
    header = [
        *who.header(),
        "institution",
        "plan_label",
        "plan_uid",
        "intent",
        "prescription_gy",
        "fractions_planned",
        "standard_roi",
        "roi_name",
        "match",
        "volume_cc",
        "covered_volume_cc",
        *metrics,
        "dvh_flags",
        "qa",
        "engine_version",
    ]

    def rows() -> Iterator[list[Any]]:
        index = MappingIndex.of(project)
        for chunk in _chunks(plans, 200):
            infos, dvhs = plan_rois(index, chunk), _dvhs(chunk)
            roi_rows = _roi_rows(dvhs)
            values = _metric_values(roi_rows.values(), metrics)
            qa = _qa_by_roi(project, chunk)
            summaries = {s.plan_id: s for s in PlanSummary.objects.filter(plan__in=chunk)}
            for plan in chunk:
                info, dvh = infos[plan.pk], dvhs.get(plan.pk)
                if dvh is None:
                    continue
                for standard, matches in _standard_rois(info, rois):
                    roi = roi_rows.get((dvh.pk, matches[0].roi_id)) if len(matches) == 1 else None
                    yield [
                        *_plan_cells(plan, info, who, summaries.get(plan.pk)),
                        standard,
                        " | ".join(m.name for m in matches),
                        "one" if len(matches) == 1 else f"ambiguous ({len(matches)})",
                        _num(roi.volume_cc if roi else None),
                        _num(roi.covered_volume_cc if roi else None),
                        *[_num(values.get(roi.pk, {}).get(m)) if roi else "" for m in metrics],
                        " ".join(roi.flags) if roi else "",
                        qa.get((plan.pk, standard), ""),
                        dvh.engine_version,
                    ]

    return header, rows()


def curve_rows(
    project: Any, plans: list[Instance], who: Identity, rois: set[str] | None = None
) -> tuple[list[str], Iterator[list[Any]]]:
    """Header and rows: the stored cumulative DVH of each unambiguous standard ROI, one row per point."""
    header = [
        *who.header(),
        "plan_label",
        "plan_uid",
        "standard_roi",
        "roi_name",
        "dose_gy",
        "volume_cc",
        "volume_pct",
    ]

    def rows() -> Iterator[list[Any]]:
        index = MappingIndex.of(project)
        for chunk in _chunks(plans, 100):
            infos, dvhs = plan_rois(index, chunk), _dvhs(chunk)
            roi_rows = _roi_rows(dvhs)
            for plan in chunk:
                info, dvh = infos[plan.pk], dvhs.get(plan.pk)
                if dvh is None:
                    continue
                patient = plan.series.study.patient
                label = info.rtplan.label if info.rtplan else ""
                for standard, matches in _standard_rois(info, rois):
                    roi = roi_rows.get((dvh.pk, matches[0].roi_id)) if len(matches) == 1 else None
                    if roi is None:
                        continue
                    curve = roi.cumulative_cc()
                    total = curve[0] if curve else 0.0  # the covered volume, as stored with the curve
                    for k, volume in enumerate(curve):
                        yield [
                            *who.cells(patient),
                            label,
                            plan.sop_instance_uid,
                            standard,
                            roi.roi_name,
                            round(k * roi.dose_step_gy, 6),
                            volume,
                            round(100 * volume / total, 4) if total > 0 else "",
                        ]

    return header, rows()


PLAN_HEADER = [
    "institution",
    "plan_label",
    "plan_uid",
    "intent",
    "technique",
    "machine",
    "fractions_planned",
    "prescription_gy",
    "treated",
    "fractions_delivered",
    "first_treatment",
    "last_treatment",
    "planned_mu",
    "delivered_mu",
    "interruptions",
    "missed_weekdays",
    "abnormal_terminations",
    "complete",
    "completeness_flags",
    "dvh",
    "qa",
]


def plan_rows(project: Any, plans: list[Instance], who: Identity) -> tuple[list[str], Iterator[list[Any]]]:
    """Header and rows: classification, delivery and completeness of each plan."""

    def rows() -> Iterator[list[Any]]:
        for chunk in _chunks(plans, 500):
            summaries = {s.plan_id: s for s in PlanSummary.objects.filter(plan__in=chunk)}
            dvh = dict(PlanDvh.objects.filter(plan__in=chunk).values_list("plan_id", "state"))
            qa = dict(PlanQa.objects.filter(project=project, plan__in=chunk).values_list("plan_id", "status"))
            for plan in chunk:
                s, rt = summaries.get(plan.pk), getattr(plan, "plan", None)
                yield [
                    *who.cells(plan.series.study.patient),
                    *plan_facts(plan, rt, s),
                    dvh.get(plan.pk, ""),
                    qa.get(plan.pk, ""),
                ]

    return [*who.header(), *PLAN_HEADER], rows()


def plan_facts(plan: Instance, rt: Any, s: PlanSummary | None) -> list[Any]:
    patient = plan.series.study.patient
    return [
        patient.institution.code if patient.institution else "",
        rt.label if rt else "",
        plan.sop_instance_uid,
        s.intent if s else "",
        rt.technique if rt else "",
        rt.machine if rt else "",
        rt.fractions_planned if rt else "",
        _num(rt.prescription_gy if rt else None),
        ("yes" if s.treated else "no") if s else "",
        s.fractions_delivered if s else "",
        s.first_treatment.isoformat() if s and s.first_treatment else "",
        s.last_treatment.isoformat() if s and s.last_treatment else "",
        _num(s.planned_mu if s else None),
        _num(s.delivered_mu if s else None),
        s.interruptions if s else "",
        s.missed_weekdays if s else "",
        s.abnormal_terminations if s else "",
        ("yes" if s.complete else "no") if s else "",
        " ".join(s.flags) if s else "",
    ]


def qa_rows(project: Any, plans: list[Instance], who: Identity) -> tuple[list[str], Iterator[list[Any]]]:
    header = [
        *who.header(),
        "plan_label",
        "plan_uid",
        "standard_roi",
        "item",
        "status",
        "value",
        "unit",
        "detail",
    ]
    by_pk = {p.pk: p for p in plans}

    def rows() -> Iterator[list[Any]]:
        results = (
            QaResult.objects.filter(project=project, plan_id__in=list(by_pk))
            .select_related("constraint")
            .order_by("plan_id", "standard_name", "constraint_id")
        )
        for r in results:
            plan = by_pk[r.plan_id]
            rt = getattr(plan, "plan", None)
            item = constraint_text(r.constraint) if r.constraint else "required ROI"
            yield [
                *who.cells(plan.series.study.patient),
                rt.label if rt else "",
                plan.sop_instance_uid,
                r.standard_name,
                item,
                r.status,
                _num(r.value),
                r.constraint.unit if r.constraint else "",
                r.detail,
            ]

    return header, rows()


def _plan_cells(plan: Instance, info: PlanRois, who: Identity, s: PlanSummary | None) -> list[Any]:
    patient, rt = plan.series.study.patient, info.rtplan
    return [
        *who.cells(patient),
        patient.institution.code if patient.institution else "",
        rt.label if rt else "",
        plan.sop_instance_uid,
        s.intent if s else "",
        _num(rt.prescription_gy if rt else None),
        rt.fractions_planned if rt else "",
    ]


def _metric_values(rois: Any, metrics: list[str]) -> dict[int, dict[str, float | None]]:
    out: dict[int, dict[str, float | None]] = {}
    ids = [r.pk for r in rois]
    for roi_id, name, value in DvhMetric.objects.filter(roi_dvh_id__in=ids, name__in=metrics).values_list(
        "roi_dvh_id", "name", "value"
    ):
        out.setdefault(roi_id, {})[name] = value
    return out


def _qa_by_roi(project: Any, plans: list[Instance]) -> dict[tuple[int, str], str]:
    """(plan id, standard name) → the constraint results on that ROI, e.g. ``D0.03cc < 50 Gy: pass``."""
    out: dict[tuple[int, str], list[str]] = {}
    for r in QaResult.objects.filter(
        project=project, plan__in=plans, constraint__isnull=False
    ).select_related("constraint"):
        out.setdefault((r.plan_id, r.standard_name), []).append(
            f"{constraint_text(r.constraint)}: {r.status}"
        )
    return {k: "; ".join(v) for k, v in out.items()}


def _chunks(items: list[Instance], size: int) -> Iterator[list[Instance]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _num(value: float | None) -> Any:
    return "" if value is None else round(float(value), 6)

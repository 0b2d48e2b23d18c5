"""The QA report of an audit: the page's tables and the CSV (cells made inert by ``csv_response``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rtbank.audits.models import Against, Audit, AuditDataset, PlanMetric, ReturnedObject, RoiAgreement

CSV_HEADER = [
    "kind",
    "case",
    "participant",
    "standard_name",
    "roi_name",
    "reference_roi_name",
    "against",
    "compared_with",
    "dice",
    "hausdorff95_mm",
    "mean_surface_distance_mm",
    "volume_ratio",
    "volume_cc",
    "reference_volume_cc",
    "metric",
    "value",
    "reference_value",
    "note",
]


@dataclass
class RoiRow:
    """One participant's ROI in the report: its scores against the reference and against the consensus."""

    standard_name: str
    participant: str
    roi_name: str
    reference: RoiAgreement | None = None
    consensus: RoiAgreement | None = None

    @property
    def note(self) -> str:
        return "; ".join(r.note for r in (self.reference, self.consensus) if r is not None and r.note)

    @property
    def volume_cc(self) -> float | None:
        for row in (self.reference, self.consensus):
            if row is not None and row.volume_cc is not None:
                return row.volume_cc
        return None


@dataclass
class CaseReport:
    dataset: AuditDataset
    rows: list[RoiRow] = field(default_factory=list)
    metrics: list[PlanMetric] = field(default_factory=list)


def report(audit: Audit) -> list[CaseReport]:
    cases = {d.pk: CaseReport(d) for d in audit.datasets.all()}
    rows: dict[tuple[int, str, str], RoiRow] = {}
    agreements = RoiAgreement.objects.filter(participant__audit=audit).select_related("participant")
    for agreement in agreements.order_by("dataset_id", "standard_name", "participant_id"):
        key = (agreement.dataset_id, agreement.standard_name, agreement.participant.name)
        row = rows.get(key)
        if row is None:
            row = rows[key] = RoiRow(agreement.standard_name, agreement.participant.name, agreement.roi_name)
            cases[agreement.dataset_id].rows.append(row)
        setattr(row, "consensus" if agreement.against == Against.CONSENSUS else "reference", agreement)
        row.roi_name = row.roi_name or agreement.roi_name
    for metric in PlanMetric.objects.filter(participant__audit=audit).select_related("participant"):
        cases[metric.dataset_id].metrics.append(metric)
    return list(cases.values())


def csv_rows(audit: Audit) -> Iterator[list[Any]]:
    labels = dict(audit.datasets.values_list("pk", "label"))
    for row in RoiAgreement.objects.filter(participant__audit=audit).select_related("participant"):
        yield [
            "contour",
            labels.get(row.dataset_id, ""),
            row.participant.name,
            row.standard_name,
            row.roi_name,
            row.reference_roi_name,
            row.against,
            row.compared_with,
            _n(row.dice),
            _n(row.hausdorff95_mm),
            _n(row.mean_surface_distance_mm),
            _n(row.volume_ratio),
            _n(row.volume_cc),
            _n(row.reference_volume_cc),
            "",
            "",
            "",
            row.note,
        ]
    for metric in PlanMetric.objects.filter(participant__audit=audit).select_related("participant"):
        yield [
            "dvh",
            labels.get(metric.dataset_id, ""),
            metric.participant.name,
            metric.standard_name,
            metric.roi_name,
            "",
            Against.REFERENCE.value,
            1,
            "",
            "",
            "",
            "",
            "",
            "",
            metric.metric,
            _n(metric.value),
            _n(metric.reference_value),
            metric.note,
        ]


def returned_objects(audit: Audit) -> list[ReturnedObject]:
    return list(
        ReturnedObject.objects.filter(participant__audit=audit)
        .select_related("participant", "instance", "dataset")
        .order_by("-received_at", "-pk")[:500]
    )


def _n(value: float | None) -> float | str:
    return "" if value is None else round(value, 4)

"""The harvest manifest (per treated plan: expected, collected, missing and why) and statistics per source.

Readable as HTML, and as CSV whose cells are neutralised against formula injection (a cell starting with
``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading apostrophe), since data managers open
these files in spreadsheets.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string

from rtbank.catalog.models import RTPlan
from rtbank.harvest.models import HarvestObject, HarvestPlan, HarvestRun, HarvestSeries, PlanState

MODALITY_NAMES = {"CT": "CT", "MR": "MR", "PT": "PET"}
INVALID_INTENTS = {"verification", "machine_qa", "service"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


@dataclass
class PlanRow:
    plan_uid: str
    patient_id: str
    state: str
    first_treatment: str
    intent: str
    label: str
    expected: int
    collected: int
    missing: list[tuple[str, str]] = field(default_factory=list)  # (uid, reason)
    missing_at_source: list[tuple[str, str, str]] = field(default_factory=list)  # (role, uid, reason)
    records_in_window: int = 0


@dataclass
class Report:
    run: HarvestRun
    plans: list[PlanRow]
    stats: dict[str, Any]

    @property
    def ok(self) -> bool:
        return all(p.state != PlanState.INCOMPLETE for p in self.plans) and not self.stats.get("failed_rows")


def build(run: HarvestRun) -> Report:
    plans = list(HarvestPlan.objects.filter(run=run).order_by("patient_id", "first_treatment", "plan_uid"))
    info = {
        p.instance.sop_instance_uid: p
        for p in RTPlan.objects.filter(
            instance__sop_instance_uid__in=[p.plan_uid for p in plans]
        ).select_related("instance")
    }
    rows = []
    for plan in plans:
        m = plan.manifest or {}
        meta = info.get(plan.plan_uid)
        rows.append(
            PlanRow(
                plan_uid=plan.plan_uid,
                patient_id=plan.patient_id,
                state=plan.state,
                first_treatment=plan.first_treatment.isoformat() if plan.first_treatment else "",
                intent=meta.intent if meta else "",
                label=meta.label if meta else "",
                expected=len(m.get("expected", {})),
                collected=len(m.get("collected", [])),
                missing=sorted((m.get("missing") or {}).items()),
                missing_at_source=[tuple(x) for x in m.get("missing_at_source", [])],  # type: ignore[misc]
                records_in_window=len(plan.records_in_window),
            )
        )
    return Report(run, rows, statistics(run, rows))


def statistics(run: HarvestRun, rows: list[PlanRow]) -> dict[str, Any]:
    """Per source: patients and plans per month and year, image series, registrations, intents, success."""
    walked = [r for r in rows if r.state != PlanState.ABSENT]
    per_month: dict[str, set[str]] = defaultdict(set)
    plans_month: Counter[str] = Counter()
    per_year: dict[str, set[str]] = defaultdict(set)
    plans_year: Counter[str] = Counter()
    for r in rows:
        if r.first_treatment:
            per_month[r.first_treatment[:7]].add(r.patient_id)
            per_year[r.first_treatment[:4]].add(r.patient_id)
            plans_month[r.first_treatment[:7]] += 1
            plans_year[r.first_treatment[:4]] += 1
    collected_uids = set()
    for plan in HarvestPlan.objects.filter(run=run):
        collected_uids.update((plan.manifest or {}).get("collected", []))
    series = (
        HarvestObject.objects.filter(
            run=run, sop_instance_uid__in=collected_uids, modality__in=MODALITY_NAMES
        )
        .values_list("modality", "series_uid")
        .distinct()
    )
    series_counts = Counter(MODALITY_NAMES[m] for m, _ in set(series))
    succeeded = sum(1 for r in rows if r.state in (PlanState.COMPLETE, PlanState.MISSING_AT_SOURCE))
    return {
        "source": run.source.name,
        "patients": len({r.patient_id for r in rows}),
        "plans_referenced": len(rows),
        "plans_collected": succeeded,
        "plans_absent": sum(1 for r in rows if r.state == PlanState.ABSENT),
        "success_rate": round(100.0 * succeeded / len(rows), 2) if rows else 100.0,
        "patients_per_month": {k: len(v) for k, v in sorted(per_month.items())},
        "plans_per_month": dict(sorted(plans_month.items())),
        "patients_per_year": {k: len(v) for k, v in sorted(per_year.items())},
        "plans_per_year": dict(sorted(plans_year.items())),
        "image_series": {name: series_counts.get(name, 0) for name in ("CT", "MR", "PET")},
        "registrations": _registration_types(run, collected_uids),
        "plans_by_intent": dict(
            Counter(r.intent or "unknown" for r in walked if r.intent not in INVALID_INTENTS)
        ),
        "invalid_plans": dict(Counter(r.intent for r in walked if r.intent in INVALID_INTENTS)),
        "failed_rows": (run.summary or {}).get("failed_rows", 0),
    }


def _registration_types(run: HarvestRun, collected: set[str]) -> dict[str, int]:
    """CT–CT, CT–MR, CT–PET…: the modalities of the two frames a registration relates."""
    frame_modality: dict[str, str] = {}
    for frame, modality in (
        HarvestSeries.objects.filter(run=run, modality__in=MODALITY_NAMES)
        .exclude(frame_uid="")
        .values_list("frame_uid", "modality")
    ):
        frame_modality.setdefault(frame, MODALITY_NAMES[modality])
    counts: Counter[str] = Counter()
    for reg in HarvestObject.objects.filter(run=run, modality="REG", sop_instance_uid__in=collected):
        frames = sorted({t for k, t in reg.refs or [] if k == "frame_of_reference"})
        kinds = sorted((frame_modality.get(f, "?") for f in frames), key=lambda m: (m != "CT", m))
        counts["–".join(kinds[:2]) if len(kinds) >= 2 else "–".join(kinds) or "unknown"] += 1
    return dict(counts)


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "run",
            "patient_id",
            "plan_uid",
            "plan_label",
            "intent",
            "first_treatment",
            "state",
            "records_in_window",
            "expected",
            "collected",
            "missing",
            "missing_at_source",
            "reasons",
        ]
    )
    for r in report.plans:
        reasons = sorted({reason for _, reason in r.missing} | {reason for *_, reason in r.missing_at_source})
        writer.writerow(
            [
                safe_cell(v)
                for v in (
                    report.run.pk,
                    r.patient_id,
                    r.plan_uid,
                    r.label,
                    r.intent,
                    r.first_treatment,
                    r.state,
                    r.records_in_window,
                    r.expected,
                    r.collected,
                    len(r.missing),
                    len(r.missing_at_source),
                    " | ".join(reasons),
                )
            ]
        )
    writer.writerow([])
    writer.writerow(["object_uid", "plan_uid", "status", "reason"])
    for r in report.plans:
        for uid, reason in r.missing:
            writer.writerow([safe_cell(v) for v in (uid, r.plan_uid, "missing", reason)])
        for role, uid, reason in r.missing_at_source:
            writer.writerow([safe_cell(v) for v in (uid, r.plan_uid, f"missing at source ({role})", reason)])
    return out.getvalue()


def to_html(report: Report) -> str:
    return render_to_string(
        "harvest/manifest.html", {"report": report, "run": report.run, "stats": report.stats}
    )


def write_files(report: Report) -> tuple[Path, Path]:
    folder = Path(settings.HOME) / "harvest" / f"run-{report.run.pk}"
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, html_path = folder / "manifest.csv", folder / "manifest.html"
    csv_path.write_text(to_csv(report), encoding="utf-8")
    html_path.write_text(to_html(report), encoding="utf-8")
    return csv_path, html_path

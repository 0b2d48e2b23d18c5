"""Completeness and delivery of one patient's data, stored for pages, filters and SQL.

Runs in the analysis stage after every arrival for the patient (and for a plan after its DVH, which
tells whether the dose grid covers the targets). The checks themselves are the pure functions of
:mod:`rtbank.dicom.completeness` and :mod:`rtbank.analysis.delivery`.
"""

from __future__ import annotations

import hashlib

from rtbank.analysis.delivery import RecordFacts, delivery_summary, intent_class
from rtbank.analysis.models import (
    DvhState,
    PatientCompleteness,
    PlanDvh,
    PlanSummary,
    RoiDvh,
    SeriesCompleteness,
)
from rtbank.catalog.models import (
    Instance,
    InstanceState,
    PlanBundleMember,
    Reference,
    RTPlan,
    Series,
    TreatmentRecord,
)
from rtbank.dicom.completeness import (
    RtDatasetFacts,
    SliceGeometry,
    check_image_series,
    check_rt_dataset,
    is_target,
    records_without_plan,
)

IMAGE_MODALITIES = ("CT", "MR", "PT")
PLAN_KINDS = ("plan", "ion_plan")
RECORD_KINDS = ("record", "ion_record", "brachy_record", "summary_record")
UNCOVERED = {"partially_in_dose_grid", "not_in_dose_grid"}


def check_patient(patient_id: int) -> PatientCompleteness:
    """Check every image series and plan of the patient and store the patient's summary."""
    series = check_patient_series(patient_id)
    plans = Instance.objects.filter(
        series__study__patient_id=patient_id, state=InstanceState.CURRENT, kind__in=PLAN_KINDS
    ).select_related("plan")
    summaries = [summarise_plan(plan, series) for plan in plans]
    orphans = dangling_records(patient_id)
    flags = sorted(
        {f"series:{f}" for s in series.values() for f in s.flags}
        | {f"plan:{f}" for s in summaries for f in s.flags}
        | ({"record_without_plan"} if orphans else set())
    )
    row, _ = PatientCompleteness.objects.update_or_create(
        patient_id=patient_id,
        defaults={"complete": not flags, "flags": flags, "records_without_plan": orphans},
    )
    return row


def check_patient_series(patient_id: int) -> dict[str, SeriesCompleteness]:
    """Series UID → stored check of each CT/MR/PET series of the patient (redone when its slices change)."""
    out = {}
    for series in Series.objects.filter(study__patient_id=patient_id, modality__in=IMAGE_MODALITIES):
        instances = list(
            Instance.objects.filter(series=series, state=InstanceState.CURRENT).values(
                "pk",
                "version",
                "sop_instance_uid",
                "position",
                "orientation",
                "pixel_spacing",
                "rows",
                "columns",
                "frames",
            )
        )
        if not instances:
            continue
        fingerprint = hashlib.sha256(
            ",".join(f"{i['pk']}:{i['version']}" for i in sorted(instances, key=lambda i: i["pk"])).encode()
        ).hexdigest()
        existing = SeriesCompleteness.objects.filter(series=series).first()
        if existing is not None and existing.fingerprint == fingerprint:
            out[series.uid] = existing
            continue
        out[series.uid] = _store_series(series, patient_id, instances, fingerprint)
    return out


def _store_series(
    series: Series, patient_id: int, instances: list[dict], fingerprint: str
) -> SeriesCompleteness:
    if any((i["frames"] or 1) > 1 for i in instances):
        flags, notes, gaps, slices, median, missing = (
            [],
            ["multi-frame images: slices not checked"],
            [],
            len(instances),
            None,
            0,
        )
    else:
        report = check_image_series(
            [
                SliceGeometry(
                    i["sop_instance_uid"],
                    i["position"],
                    i["orientation"],
                    i["pixel_spacing"],
                    i["rows"],
                    i["columns"],
                )
                for i in instances
            ]
        )
        flags, notes, gaps = list(report.flags), list(report.notes), [g.to_dict() for g in report.gaps]
        slices, median, missing = report.slices, report.median_spacing_mm, report.missing_slices
    row, _ = SeriesCompleteness.objects.update_or_create(
        series=series,
        defaults={
            "patient_id": patient_id,
            "modality": series.modality,
            "slices": slices,
            "median_spacing_mm": median,
            "missing_slices": missing,
            "complete": not flags,
            "flags": flags,
            "gaps": gaps,
            "notes": notes,
            "fingerprint": fingerprint,
        },
    )
    return row


def summarise_plan(plan: Instance, series: dict[str, SeriesCompleteness] | None = None) -> PlanSummary:
    """Classify the plan, summarise its delivery and check its dataset; store and return the summary."""
    rtplan: RTPlan | None = getattr(plan, "plan", None)
    patient_id = (
        Instance.objects.filter(pk=plan.pk).values_list("series__study__patient_id", flat=True).first()
    )
    facts, details = _dataset_facts(plan, rtplan, series or {})
    records = [
        RecordFacts(r.treatment_date, r.fraction_number, r.delivered_meterset, r.termination_status)
        for r in TreatmentRecord.objects.filter(
            plan_uid=plan.sop_instance_uid, instance__state=InstanceState.CURRENT
        )
    ]
    delivery = delivery_summary(
        records, rtplan.fractions_planned if rtplan else None, rtplan.total_meterset if rtplan else None
    )
    flags = check_rt_dataset(facts)
    row, _ = PlanSummary.objects.update_or_create(
        plan=plan,
        defaults={
            "patient_id": patient_id,
            "intent": intent_class(rtplan.intent if rtplan else ""),
            "treated": delivery.treated,
            "records": delivery.records,
            "fractions_delivered": delivery.fractions_delivered,
            "first_treatment": delivery.first_treatment,
            "last_treatment": delivery.last_treatment,
            "planned_mu": delivery.planned_mu,
            "delivered_mu": delivery.delivered_mu,
            "interruptions": delivery.interruptions,
            "missed_weekdays": delivery.missed_weekdays,
            "abnormal_terminations": delivery.abnormal_terminations,
            "complete": not flags,
            "flags": flags,
            "details": details,
        },
    )
    return row


def _dataset_facts(
    plan: Instance, rtplan: RTPlan | None, series: dict[str, SeriesCompleteness]
) -> tuple[RtDatasetFacts, dict]:
    ss_uid = rtplan.structure_set_uid if rtplan else ""
    ss = (
        Instance.objects.filter(sop_instance_uid=ss_uid, state=InstanceState.CURRENT).first()
        if ss_uid
        else None
    )
    planning_uid = rtplan.planning_series_uid if rtplan else ""
    planning_present = (
        bool(planning_uid)
        and Instance.objects.filter(series__uid=planning_uid, state=InstanceState.CURRENT).exists()
    )
    missing_images = _missing_images(ss) if ss else []
    planning_check = series.get(planning_uid) or (
        SeriesCompleteness.objects.filter(series__uid=planning_uid).first() if planning_uid else None
    )
    uncovered = _uncovered_targets(plan)
    details = {
        "missing_images": len(missing_images),
        "planning_series": planning_uid,
        "uncovered_targets": list(uncovered or ()),
    }
    facts = RtDatasetFacts(
        structure_set_referenced=bool(ss_uid),
        structure_set_present=ss is not None,
        dose_present=PlanBundleMember.objects.filter(plan=plan, role="dose").exists(),
        planning_images_present=planning_present,
        referenced_images_missing=len(missing_images),
        planning_series_complete=planning_check.complete if planning_check else None,
        uncovered_targets=uncovered,
        needs_patient_data=intent_class(rtplan.intent if rtplan else "") != "machine_qa",
    )
    return facts, details


def _missing_images(structure_set: Instance) -> list[str]:
    """Images the structure set's contours reference that are not (current) in the catalog."""
    targets = set(
        Reference.objects.filter(source=structure_set, kind="image").values_list("target_uid", flat=True)
    )
    present = set(
        Instance.objects.filter(sop_instance_uid__in=targets, state=InstanceState.CURRENT).values_list(
            "sop_instance_uid", flat=True
        )
    )
    return sorted(targets - present)


def _uncovered_targets(plan: Instance) -> tuple[str, ...] | None:
    dvh = PlanDvh.objects.filter(plan=plan, state=DvhState.OK).first()
    if dvh is None:
        return None
    return tuple(
        r.roi_name
        for r in RoiDvh.objects.filter(plan_dvh=dvh)
        if is_target(r.roi_name, r.interpreted_type) and UNCOVERED & set(r.flags)
    )


def dangling_records(patient_id: int) -> list[int]:
    """Instance ids of the patient's treatment records whose plan is not in the catalog."""
    records = dict(
        TreatmentRecord.objects.filter(
            instance__series__study__patient_id=patient_id,
            instance__state=InstanceState.CURRENT,
        ).values_list("instance__sop_instance_uid", "plan_uid")
    )
    present = Instance.objects.filter(
        sop_instance_uid__in=set(records.values()), state=InstanceState.CURRENT, kind__in=PLAN_KINDS
    ).values_list("sop_instance_uid", flat=True)
    orphan_uids = records_without_plan(records, present)
    return list(
        Instance.objects.filter(sop_instance_uid__in=orphan_uids, state=InstanceState.CURRENT)
        .order_by("pk")
        .values_list("pk", flat=True)
    )

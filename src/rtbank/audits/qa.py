"""QA of returns: contour agreement per participant and mapped ROI, protocol DVH metrics of returned plans.

The worker recomputes an audit's QA (work kind ``audit_qa``, one row per audit, re-armed by every return)
outside the batch transaction and replaces the stored results in one go inside it:

* **Contours**: each participant's latest returned structure set of a case, ROI by ROI under the project's
  ROI name mapping (``rtbank.analysis.mapping``; an unmapped name stands for itself, compared ignoring case
  and spaces), against the case's reference delineation and — when at least two other participants
  returned the ROI — against the others' consensus (voxels at least half of them include). Metrics:
  :mod:`rtbank.dicom.contour_metrics`. The slab end caps of every delineation of a case use the planning
  CT's slice positions, so the same contours score Dice 1 whoever sent them.
* **Plans**: for each returned dose, the DVH metrics the protocol names (the project's dose constraints,
  else its metric list) of the mapped ROIs, on the structure set the plan refers to — the participant's
  own returned one, or the copy's as sent (remade from the original with the audit's key) — beside the
  same metrics of the case's own plan dose.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pydicom
from django.db import transaction
from pydicom.dataset import Dataset

from rtbank.audits.collection import QA
from rtbank.audits.copies import anonymizer_for
from rtbank.audits.models import (
    Against,
    Audit,
    AuditDataset,
    Participant,
    PlanMetric,
    PseudonymousUid,
    ReturnedObject,
    RoiAgreement,
)
from rtbank.catalog.blobstore import blob_store
from rtbank.catalog.models import Instance, InstanceState, PlanBundleMember
from rtbank.catalog.models import StructureSet as StructureSetRow
from rtbank.dicom.contour_metrics import Delineation, agreement, common_grid, majority, rasterise
from rtbank.dicom.contours import Roi, StructureSet, roi_slabs, roi_volume_cc
from rtbank.dicom.dosegrid import DoseGrid
from rtbank.dicom.dvh import DEFAULT_METRIC_NAMES, dvhs_for_structure_set, parse_metrics
from rtbank.dicom.plan_bundle import Role
from rtbank.dicom.roi_patterns import MatchStatus, RuleSet, fold_name
from rtbank.work.models import WorkItem
from rtbank.work.registry import Batch, PermanentError

logger = logging.getLogger("rtbank.audits")
QA_MAX_VOXELS = 1_000_000
MIN_OTHERS_FOR_CONSENSUS = 2


# --- names ------------------------------------------------------------------------------------------
class RoiNames:
    """Original ROI name (and institution) → (key, standard name) under the project's mapping rules."""

    def __init__(self, audit: Audit) -> None:
        from rtbank.analysis.mapping import ruleset

        self.rules: RuleSet = ruleset(audit.project)

    def standard(self, name: str, institution_id: int | None) -> tuple[str, str] | None:
        """``None`` when the rules conflict (the ROI cannot be placed)."""
        resolution = self.rules.resolve(name, institution_id)
        if resolution.status == MatchStatus.MATCHED and resolution.standard_name:
            return fold_name(resolution.standard_name), resolution.standard_name
        if resolution.status == MatchStatus.CONFLICT:
            return None
        return fold_name(name), name


@dataclass
class NamedRois:
    rois: dict[str, tuple[str, Roi]] = field(default_factory=dict)  # key -> (standard name, ROI)
    planes_mm: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def named_rois(
    ss: StructureSet, names: RoiNames, institution_id: int | None, extra_planes: np.ndarray
) -> NamedRois:
    out = NamedRois(planes_mm=np.union1d(ss.plane_positions_mm, extra_planes))
    for roi in ss.rois:
        if roi.is_empty:
            continue
        placed = names.standard(roi.name, institution_id)
        if placed is None:
            out.notes.append(f"{roi.name}: the mapping rules conflict")
        elif placed[0] in out.rois:
            out.notes.append(f"{roi.name}: a second ROI maps to {placed[1]} (the first is used)")
        else:
            out.rois[placed[0]] = (placed[1], roi)
    return out


# --- computing ----------------------------------------------------------------------------------------------
@dataclass
class QaResults:
    audit_id: int
    agreements: list[RoiAgreement] = field(default_factory=list)
    metrics: list[PlanMetric] = field(default_factory=list)


def compute(audit: Audit) -> QaResults:
    """Every score of the audit, as unsaved rows (reads the database and blobs, writes nothing)."""
    names = RoiNames(audit)
    results = QaResults(audit.pk)
    returns = list(
        ReturnedObject.objects.filter(participant__audit=audit, instance__state=InstanceState.CURRENT)
        .select_related("instance", "participant__audit")
        .order_by("received_at", "pk")
    )
    for dataset in AuditDataset.objects.filter(audit=audit).select_related("reference_structure_set"):
        mine = [r for r in returns if r.dataset_id == dataset.pk]
        latest: dict[int, ReturnedObject] = {}
        for ret in mine:
            if ret.kind == "structure_set":
                latest[ret.participant_id] = ret  # ordered by arrival: the last one wins
        results.agreements += contour_qa(dataset, list(latest.values()), names)
        results.metrics += plan_qa(dataset, [r for r in mine if r.kind == "dose"], names)
    return results


def contour_qa(dataset: AuditDataset, returned: list[ReturnedObject], names: RoiNames) -> list[RoiAgreement]:
    if not returned:
        return []
    planes = planning_planes(dataset)
    reference = NamedRois()
    if dataset.reference_structure_set is not None:
        ref = dataset.reference_structure_set
        reference = named_rois(StructureSet.from_dataset(read(ref)), names, ref.institution_id, planes)
    sets = {
        r.participant_id: (
            r,
            named_rois(StructureSet.from_dataset(read(r.instance)), names, r.instance.institution_id, planes),
        )
        for r in returned
    }
    keys = sorted(set(reference.rois) | {k for _, n in sets.values() for k in n.rois})
    rows: list[RoiAgreement] = []
    for key in keys:
        rows += _compare_roi(dataset, key, reference, sets)
    return rows


def _compare_roi(
    dataset: AuditDataset, key: str, reference: NamedRois, sets: dict[int, tuple[ReturnedObject, NamedRois]]
) -> list[RoiAgreement]:
    slabs = {pid: roi_slabs(n.rois[key][1], n.planes_mm) for pid, (_, n) in sets.items() if key in n.rois}
    ref_slabs = roi_slabs(reference.rois[key][1], reference.planes_mm) if key in reference.rois else None
    rows: list[RoiAgreement] = []
    for ret, named in sets.values():
        if key not in named.rois and ref_slabs is not None:
            rows.append(
                _row(
                    dataset,
                    ret,
                    reference.rois[key][0],
                    "",
                    reference.rois[key][1].name,
                    Against.REFERENCE,
                    note="not in the returned structure set",
                )
            )
    if not slabs:
        return rows
    grid = common_grid([*slabs.values(), *([ref_slabs] if ref_slabs else [])], max_voxels=QA_MAX_VOXELS)
    drawn = {pid: Delineation(rasterise(s, grid), grid, roi_volume_cc(s)) for pid, s in slabs.items()}
    ref = Delineation(rasterise(ref_slabs, grid), grid, roi_volume_cc(ref_slabs)) if ref_slabs else None
    for pid, mine in drawn.items():
        ret, named = sets[pid]
        standard, roi = named.rois[key]
        if ref is not None:
            rows.append(
                _row(
                    dataset,
                    ret,
                    standard,
                    roi.name,
                    reference.rois[key][1].name,
                    Against.REFERENCE,
                    scores=agreement(mine, ref),
                )
            )
        else:
            rows.append(
                _row(
                    dataset,
                    ret,
                    standard,
                    roi.name,
                    "",
                    Against.REFERENCE,
                    note="the reference delineation has no such ROI",
                )
            )
        others = [d.mask for other, d in drawn.items() if other != pid]
        if len(others) >= MIN_OTHERS_FOR_CONSENSUS:
            consensus = Delineation(majority(others), grid)
            rows.append(
                _row(
                    dataset,
                    ret,
                    standard,
                    roi.name,
                    "",
                    Against.CONSENSUS,
                    scores=agreement(mine, consensus),
                    compared_with=len(others),
                )
            )
    return rows


def _row(
    dataset: AuditDataset,
    ret: ReturnedObject,
    standard: str,
    roi_name: str,
    reference_name: str,
    against: str,
    *,
    scores: Any = None,
    compared_with: int = 1,
    note: str = "",
) -> RoiAgreement:
    values: dict[str, Any] = {}
    if scores is not None:
        values = {
            "dice": _finite(scores.dice),
            "hausdorff95_mm": _finite(scores.hausdorff95_mm),
            "mean_surface_distance_mm": _finite(scores.mean_surface_distance_mm),
            "volume_ratio": _finite(scores.volume_ratio),
            "volume_cc": _finite(scores.test_volume_cc),
            "reference_volume_cc": _finite(scores.reference_volume_cc),
            "spacing_mm": scores.spacing_mm,
        }
    return RoiAgreement(
        participant_id=ret.participant_id,
        dataset=dataset,
        returned=ret,
        standard_name=standard[:64],
        roi_name=roi_name[:128],
        reference_roi_name=reference_name[:128],
        against=against,
        compared_with=compared_with,
        note=note[:300],
        **values,
    )


def planning_planes(dataset: AuditDataset) -> np.ndarray:
    """Slice positions (z, mm) of the CT the reference structure set was drawn on (empty if unknown)."""
    ref = dataset.reference_structure_set
    if ref is None:
        return np.zeros(0)
    series_uid = StructureSetRow.objects.filter(instance=ref).values_list("series_uid", flat=True).first()
    if not series_uid:
        return np.zeros(0)
    positions = Instance.objects.filter(
        series__uid=series_uid, series__study__patient_id=dataset.patient_id, state=InstanceState.CURRENT
    ).values_list("position", flat=True)
    return np.unique([float(p[2]) for p in positions if p and len(p) == 3])


# --- plans ------------------------------------------------------------------------------------------
def plan_qa(dataset: AuditDataset, doses: list[ReturnedObject], names: RoiNames) -> list[PlanMetric]:
    if not doses:
        return []
    wanted = protocol_metrics(dataset.audit)
    reference = _reference_values(dataset, names, wanted)
    rows: list[PlanMetric] = []
    for ret in doses:
        try:
            dose_ds = read(ret.instance)
            ss_ds = structure_set_for(dose_ds, ret.participant)
            values = dose_metrics(ss_ds, dose_ds, names, ret.instance.institution_id, wanted)
        except (ValueError, KeyError, LookupError) as exc:
            rows.append(
                PlanMetric(
                    participant_id=ret.participant_id,
                    dataset=dataset,
                    returned=ret,
                    standard_name="",
                    roi_name="",
                    metric="",
                    note=str(exc)[:300],
                )
            )
            continue
        for (standard, metric), (roi_name, value) in sorted(values.items()):
            rows.append(
                PlanMetric(
                    participant_id=ret.participant_id,
                    dataset=dataset,
                    returned=ret,
                    standard_name=standard[:64],
                    roi_name=roi_name[:128],
                    metric=metric,
                    value=_finite(value),
                    reference_value=_finite(reference.get((standard, metric))),
                )
            )
    return rows


def protocol_metrics(audit: Audit) -> dict[str, list[str]]:
    """Standard-name key → metric names: the project's dose constraints, else ``{"*": its metric list}``."""
    from rtbank.analysis.models import DoseConstraint, ProjectAnalysis

    wanted: dict[str, list[str]] = {}
    for standard, metric in DoseConstraint.objects.filter(project=audit.project).values_list(
        "standard_name", "metric"
    ):
        wanted.setdefault(fold_name(standard), [])
        if metric not in wanted[fold_name(standard)]:
            wanted[fold_name(standard)].append(metric)
    if wanted:
        return wanted
    settings_row = ProjectAnalysis.objects.filter(project=audit.project).first()
    return {"*": list(settings_row.metrics) if settings_row else list(DEFAULT_METRIC_NAMES)}


def dose_metrics(
    ss_ds: Dataset,
    dose_ds: Dataset,
    names: RoiNames,
    institution_id: int | None,
    wanted: dict[str, list[str]],
) -> dict[tuple[str, str], tuple[str, float | None]]:
    """(standard name, metric) → (ROI name, value) for the ROIs the protocol names."""
    ss = StructureSet.from_dataset(ss_ds)
    grid = DoseGrid.from_dataset(dose_ds)
    chosen: dict[str, tuple[str, Roi]] = {}
    for roi in ss.rois:
        placed = names.standard(roi.name, institution_id)
        if roi.is_empty or placed is None or placed[0] in chosen:
            continue
        if placed[0] in wanted or "*" in wanted:
            chosen[placed[0]] = (placed[1], roi)
    out: dict[tuple[str, str], tuple[str, float | None]] = {}
    results = dvhs_for_structure_set(ss, grid, [roi for _, roi in chosen.values()])
    for (key, (standard, roi)), result in zip(chosen.items(), results, strict=True):
        specs = parse_metrics(wanted.get(key) or wanted.get("*") or [])
        values, _flags = result.metrics(specs)
        for metric, value in values.items():
            out[(standard, metric)] = (roi.name, value)
    return out


def structure_set_for(dose_ds: Dataset, participant: Participant) -> Dataset:
    """The structure set a returned dose's plan refers to: the participant's own, or the copy's as sent.

    Raises
    ------
    LookupError
        When neither can be found.
    """
    uid = _referenced(dose_ds, "ReferencedStructureSetSequence")
    plan_uid = _referenced(dose_ds, "ReferencedRTPlanSequence")
    if not uid and plan_uid:
        plan = Instance.objects.filter(sop_instance_uid=plan_uid, state=InstanceState.CURRENT).first()
        if plan is None:
            raise LookupError("the dose's plan has not been returned: send the plan with the dose")
        uid = _referenced(read(plan), "ReferencedStructureSetSequence")
    if not uid:
        raise LookupError("the returned plan names no structure set")
    own = Instance.objects.filter(
        sop_instance_uid=uid, state=InstanceState.CURRENT, kind="structure_set"
    ).first()
    if own is not None:
        return read(own)
    mapped = PseudonymousUid.objects.filter(participant=participant, uid=uid).values_list(
        "original_uid", flat=True
    )
    original = Instance.objects.filter(sop_instance_uid__in=list(mapped), state=InstanceState.CURRENT).first()
    if original is None:
        raise LookupError("the structure set the plan refers to is neither returned nor one of the copy's")
    return anonymizer_for(participant).anonymize(read(original))


def _reference_values(
    dataset: AuditDataset, names: RoiNames, wanted: dict[str, list[str]]
) -> dict[tuple[str, str], float | None]:
    if dataset.plan_id is None or dataset.reference_structure_set is None:
        return {}
    dose = (
        Instance.objects.filter(
            pk__in=PlanBundleMember.objects.filter(plan_id=dataset.plan_id, role=Role.DOSE.value).values(
                "member_id"
            ),
            state=InstanceState.CURRENT,
        )
        .order_by("pk")
        .first()
    )
    if dose is None:
        return {}
    try:
        values = dose_metrics(
            read(dataset.reference_structure_set),
            read(dose),
            names,
            dataset.reference_structure_set.institution_id,
            wanted,
        )
    except (ValueError, KeyError) as exc:
        logger.warning("reference DVH of audit case %s failed: %s", dataset.pk, exc)
        return {}
    return {k: v for k, (_, v) in values.items()}


def _referenced(ds: Dataset, keyword: str) -> str:
    for item in ds.get(keyword, None) or []:
        uid = str(item.get("ReferencedSOPInstanceUID", "") or "").strip()
        if uid:
            return uid
    return ""


# --- helpers and the work kind ---------------------------------------------------------------------------
def read(instance: Instance) -> Dataset:
    path = blob_store().local_path(instance.blob_key)
    if path is None:
        raise PermanentError("the blob store has no local files; audit QA needs them")
    return pydicom.dcmread(path, force=True)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def prepare_qa(items: list[WorkItem], batch: Batch) -> None:
    for item in items:
        try:
            audit = Audit.objects.select_related("project").get(pk=item.payload["audit"])
            batch.data[(QA, item.pk)] = compute(audit)
        except Exception as exc:  # noqa: BLE001 - reported by the handler as the row's error
            logger.warning("audit QA %s failed: %s", item.payload.get("audit"), exc)
            batch.data[(QA, item.pk)] = exc


def finish_qa(item: WorkItem, batch: Batch) -> dict[str, Any]:
    """Work handler of ``audit_qa``: replace the audit's stored scores with the computed ones."""
    key = (QA, item.pk)
    if key not in batch.data:
        prepare_qa([item], batch)
    results = batch.data[key]
    if isinstance(results, Audit.DoesNotExist):
        raise PermanentError("the audit no longer exists")
    if isinstance(results, Exception):
        raise results
    store(results)
    return {"agreements": len(results.agreements), "plan_metrics": len(results.metrics)}


def store(results: QaResults) -> None:
    with transaction.atomic():
        RoiAgreement.objects.filter(participant__audit_id=results.audit_id).delete()
        PlanMetric.objects.filter(participant__audit_id=results.audit_id).delete()
        RoiAgreement.objects.bulk_create(results.agreements, batch_size=500)
        PlanMetric.objects.bulk_create(results.metrics, batch_size=500)


def score_now(audit: Audit) -> QaResults:
    """Compute and store the audit's QA at once (tests, the CLI)."""
    results = compute(audit)
    store(results)
    return results


def participants_of(rows: Iterable[RoiAgreement]) -> list[int]:
    return sorted({r.participant_id for r in rows})

"""The DVH calculation service: which plans need a DVH, and the worker's ``dvh`` work rows.

A plan gets a DVH when its structure set and at least one dose of its bundle are present (the planning
CT is no input of the calculation: the engine uses the contours' own planes; a missing CT is a
completeness flag instead). The inputs — plan, structure set and doses, each by instance id and version —
and :data:`~rtbank.dicom.dvh.ENGINE_VERSION` are fingerprinted; the analysis stage enqueues ``dvh`` /
``plan:<id>`` whenever the fingerprint differs from the stored one, when a metric the projects ask for
is not stored yet, and a poller re-enqueues results of older engine versions.

The heavy part runs in the work kind's ``prepare`` step, outside the batch transaction (SQLite has one
writer; a DVH takes seconds); the handler then replaces the plan's rows in the batch transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pydicom
from django.conf import settings
from django.utils import timezone
from pydicom.dataset import Dataset

from rtbank.analysis.models import DoseConstraint, DvhMetric, DvhState, PlanDvh, ProjectAnalysis, RoiDvh
from rtbank.catalog.blobstore import blob_store
from rtbank.catalog.models import Instance, InstanceState, PlanBundleMember, Roi
from rtbank.dicom import dvh as engine
from rtbank.dicom.contours import StructureSet
from rtbank.dicom.dosegrid import DoseGrid, combine_plan_doses, fraction_dose_looks_total, planned_fractions
from rtbank.work import services as work
from rtbank.work.models import WorkItem
from rtbank.work.registry import Batch

logger = logging.getLogger("rtbank.analysis")
DVH = "dvh"
PLAN_KINDS = ("plan", "ion_plan")


class InputProblem(Exception):
    """The files cannot give a DVH (another frame of reference, relative dose …): stored, not retried."""


@dataclass(frozen=True)
class PlanInputs:
    plan: Instance
    structure_set: Instance | None
    doses: tuple[Instance, ...]

    @property
    def ready(self) -> bool:
        return self.structure_set is not None and bool(self.doses)

    def detail(self) -> dict[str, Any]:
        def ref(i: Instance) -> list[int]:
            return [i.pk, i.version]

        return {
            "plan": ref(self.plan),
            "structure_set": ref(self.structure_set) if self.structure_set else None,
            "doses": sorted(ref(d) for d in self.doses),
            "engine": engine.ENGINE_VERSION,
        }

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.detail(), sort_keys=True).encode()).hexdigest()


def plan_inputs(plan: Instance) -> PlanInputs:
    """The current structure set and doses of ``plan`` (doses: its bundle's, i.e. referencing the plan, or
    its structure set when they name no plan)."""
    rtplan = getattr(plan, "plan", None)
    ss_uid = rtplan.structure_set_uid if rtplan is not None else ""
    structure_set = (
        Instance.objects.filter(
            sop_instance_uid=ss_uid, state=InstanceState.CURRENT, kind="structure_set"
        ).first()
        if ss_uid
        else None
    )
    dose_ids = PlanBundleMember.objects.filter(plan=plan, role="dose").values("member_id")
    doses = tuple(
        Instance.objects.filter(pk__in=dose_ids, state=InstanceState.CURRENT, kind="dose").order_by("pk")
    )
    return PlanInputs(plan, structure_set, doses)


def required_metric_names() -> list[str]:
    """Metrics stored for every ROI: the default set, RTBANK_ANALYSIS_METRICS, every project's list and
    every constraint's metric (canonical names, in a stable order)."""
    names = list(engine.DEFAULT_METRIC_NAMES) + list(settings.ANALYSIS_METRICS)
    for metrics in ProjectAnalysis.objects.values_list("metrics", flat=True):
        names += list(metrics or [])
    names += list(DoseConstraint.objects.values_list("metric", flat=True).distinct())
    return list(dict.fromkeys(engine.parse_metric(n).name for n in names))


def needs_calculation(inputs: PlanInputs, metrics: list[str]) -> bool:
    if not inputs.ready:
        return False
    stored = PlanDvh.objects.filter(plan=inputs.plan).values("inputs", "metric_names", "state").first()
    if stored is None or stored["inputs"] != inputs.fingerprint():
        return True
    return stored["state"] == DvhState.OK and not set(metrics) <= set(stored["metric_names"])


def enqueue_plan(plan: Instance, reason: str) -> None:
    work.enqueue(DVH, f"plan:{plan.pk}", {"plan": plan.pk, "reason": reason})


def enqueue_patient(patient_id: int) -> int:
    """Enqueue a DVH for each current plan of the patient whose inputs or wanted metrics changed."""
    metrics = required_metric_names()
    count = 0
    plans = Instance.objects.filter(
        series__study__patient_id=patient_id, state=InstanceState.CURRENT, kind__in=PLAN_KINDS
    ).select_related("plan")
    for plan in plans:
        if needs_calculation(plan_inputs(plan), metrics):
            enqueue_plan(plan, "inputs changed")
            count += 1
    return count


def enqueue_plans(plans: Any, reason: str) -> int:
    """Enqueue the plans among ``plans`` (an Instance queryset) that need a calculation."""
    metrics = required_metric_names()
    count = 0
    for plan in plans.select_related("plan"):
        if needs_calculation(plan_inputs(plan), metrics):
            enqueue_plan(plan, reason)
            count += 1
    return count


def poll_outdated_engine(worker_id: str) -> None:
    """The ``dvh-engine-version`` poller."""
    enqueue_outdated_engine()


def enqueue_outdated_engine(limit: int = 500) -> int:
    """Poller: results of another engine version are calculated again (a few hundred per poll)."""
    stale = (
        PlanDvh.objects.exclude(engine_version=engine.ENGINE_VERSION)
        .filter(plan__state=InstanceState.CURRENT)
        .values_list("plan_id", flat=True)[:limit]
    )
    count = 0
    for plan_id in stale:
        item = WorkItem.objects.filter(kind=DVH, key=f"plan:{plan_id}").values("state").first()
        if item and item["state"] in {"pending", "in_progress"}:
            continue
        work.enqueue(DVH, f"plan:{plan_id}", {"plan": plan_id, "reason": "engine version changed"})
        count += 1
    return count


# ----------------------------------------------------------------------------------- the calculation
@dataclass
class Calculated:
    """A finished calculation waiting to be stored (made in ``prepare``, stored by the handler)."""

    inputs: PlanInputs
    metric_names: list[str]
    rois: list[dict[str, Any]] = field(default_factory=list)
    fractions: int | None = None
    grid_summation: str = ""
    grid_dose_type: str = ""
    dose_steps: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


def prepare(items: list[WorkItem], batch: Batch) -> None:
    """Calculate each row's DVH before the transaction opens; failures are kept for the handler."""
    results = batch.data.setdefault(DVH, {})
    for item in items:
        try:
            results[item.pk] = calculate(int(item.payload["plan"]))
        except Exception as exc:  # noqa: BLE001 - re-raised by the handler, so the row backs off and retries
            results[item.pk] = exc


def calculate(plan_id: int) -> Calculated | None:
    plan = Instance.objects.select_related("plan").filter(pk=plan_id, state=InstanceState.CURRENT).first()
    if plan is None:
        return None
    inputs = plan_inputs(plan)
    if not inputs.ready:
        return None
    metrics = required_metric_names()
    result = Calculated(inputs, metrics)
    started = time.perf_counter()
    try:
        _calculate(result)
    except (InputProblem, ValueError, KeyError) as exc:
        result.error = " ".join(str(exc).split())[:2000] or type(exc).__name__
        result.rois = []
    result.seconds = time.perf_counter() - started
    return result


def _read(instance: Instance) -> Dataset:
    store = blob_store()
    path = store.local_path(instance.blob_key)
    if path is not None:
        return pydicom.dcmread(path)
    with store.open(instance.blob_key) as handle:
        return pydicom.dcmread(handle)


def _calculate(result: Calculated) -> None:
    inputs = result.inputs
    assert inputs.structure_set is not None
    plan_ds = _read(inputs.plan)
    structure_set = StructureSet.from_dataset(_read(inputs.structure_set))
    grids = _dose_grids(inputs.doses)
    try:
        fractions = planned_fractions(plan_ds, grids[0].referenced_fraction_group)
    except ValueError:
        fractions = None
    if fractions and fractions > 1 and any(fraction_dose_looks_total(g, plan_ds) for g in grids):
        result.flags.append("per_fraction_dose_suspect")
    grid = combine_plan_doses(grids, fractions)
    engine.check_frame_of_reference(structure_set, grid)
    specs = [engine.parse_metric(n) for n in result.metric_names]
    for roi_result in engine.dvhs_for_structure_set(structure_set, grid):
        values, metric_flags = roi_result.metrics(specs, fractions=fractions)
        result.rois.append(
            {
                "number": roi_result.roi.number,
                "name": roi_result.roi.name,
                "type": roi_result.roi.interpreted_type or "",
                "volume_cc": _finite(roi_result.volume_cc),
                "covered_volume_cc": _finite(roi_result.covered_volume_cc),
                "flags": [*roi_result.flags, *metric_flags],
                "notes": list(roi_result.notes),
                "curve": roi_result.histogram.curve() if not roi_result.histogram.is_empty else None,
                "metrics": [(s.name, values.get(s.name), s.unit) for s in specs],
            }
        )
    result.fractions = fractions
    result.grid_summation, result.grid_dose_type = grid.summation_type, grid.dose_type
    result.dose_steps = list(grid.history)


def _dose_grids(doses: tuple[Instance, ...]) -> list[DoseGrid]:
    grids = []
    for dose in doses:
        try:
            grids.append(DoseGrid.from_dataset(_read(dose)))
        except ValueError as exc:
            raise InputProblem(f"RTDOSE {dose.sop_instance_uid}: {exc}") from exc
    plan_doses = [g for g in grids if g.summation_type in {"PLAN", "MULTI_PLAN", "PLAN_OVERVIEW", "RECORD"}]
    if len(plan_doses) > 1:
        # Corrected re-exports under new UIDs: the latest received is the plan's dose now.
        return [plan_doses[-1]]
    return grids


def _finite(value: float) -> float | None:
    return None if value != value else float(value)  # NaN -> None


def handle(item: WorkItem, batch: Batch) -> dict[str, Any]:
    """Store the result ``prepare`` made (or re-raise its unexpected failure); update completeness and QA."""
    outcome = batch.data.get(DVH, {}).get(item.pk)
    if outcome is None and DVH not in batch.data:
        outcome = calculate(int(item.payload["plan"]))  # called without prepare (tests, other runners)
    if isinstance(outcome, Exception):
        raise outcome
    if outcome is None:
        return {"stored": False, "reason": "plan gone or inputs incomplete"}
    plan_dvh = store(outcome)
    from rtbank.analysis import checks, qa

    # The DVH tells whether the dose grid covers the targets: the completeness of the plan (and its patient)
    # is brought up to date before the plan is graded.
    patient_id = Instance.objects.filter(pk=outcome.inputs.plan.pk).values_list(
        "series__study__patient_id", flat=True
    )
    checks.check_patient(patient_id.get())
    qa.evaluate_plan_everywhere(outcome.inputs.plan, notify=True)
    return {
        "stored": True,
        "state": plan_dvh.state,
        "rois": len(outcome.rois),
        "seconds": round(outcome.seconds, 2),
    }


def store(result: Calculated) -> PlanDvh:
    """Replace the plan's stored DVH with ``result`` (one transaction, the caller's)."""
    inputs = result.inputs
    plan_dvh, _ = PlanDvh.objects.update_or_create(
        plan=inputs.plan,
        defaults={
            "state": DvhState.ERROR if result.error else DvhState.OK,
            "error": result.error,
            "inputs": inputs.fingerprint(),
            "inputs_detail": inputs.detail(),
            "engine_version": engine.ENGINE_VERSION,
            "structure_set": inputs.structure_set,
            "dose_ids": [d.pk for d in inputs.doses],
            "metric_names": result.metric_names,
            "fractions": result.fractions,
            "dose_summation": result.grid_summation,
            "dose_type": result.grid_dose_type,
            "dose_steps": result.dose_steps,
            "flags": result.flags,
            "seconds": round(result.seconds, 3),
            "computed_at": timezone.now(),
        },
    )
    plan_dvh.rois.all().delete()
    roi_ids = dict(
        Roi.objects.filter(
            structure_set_id=inputs.structure_set.pk if inputs.structure_set else None
        ).values_list("number", "pk")
    )
    rows = []
    for roi in result.rois:
        step, points, text = RoiDvh.encode_curve(roi["curve"]) if roi["curve"] else (0.0, 0, "")
        rows.append(
            RoiDvh(
                plan_dvh=plan_dvh,
                roi_id=roi_ids.get(roi["number"]),
                roi_number=roi["number"],
                roi_name=roi["name"][:128],
                interpreted_type=roi["type"][:32],
                volume_cc=roi["volume_cc"],
                covered_volume_cc=roi["covered_volume_cc"],
                flags=roi["flags"],
                notes=roi["notes"],
                dose_step_gy=step,
                curve_points=points,
                curve=text,
            )
        )
    RoiDvh.objects.bulk_create(rows, batch_size=200)
    metrics = [
        DvhMetric(roi_dvh=row, name=name, value=value, unit=unit)
        for row, roi in zip(rows, result.rois, strict=True)
        for name, value, unit in roi["metrics"]
    ]
    DvhMetric.objects.bulk_create(metrics, batch_size=500)
    return plan_dvh


def stored_metrics(plan_dvh: PlanDvh) -> dict[int, dict[str, float | None]]:
    """ROI number → metric name → value, for one stored plan DVH."""
    out: dict[int, dict[str, float | None]] = {}
    rows = DvhMetric.objects.filter(roi_dvh__plan_dvh=plan_dvh).values_list(
        "roi_dvh__roi_number", "name", "value"
    )
    for number, name, value in rows:
        out.setdefault(number, {})[name] = value
    return out


def dvh_progress(plans: Any) -> dict[str, int]:
    """Plans (an Instance queryset, or a list of their ids) by DVH progress: calculated, error, queued,
    failed, waiting for files."""
    ids = plans if isinstance(plans, list) else list(plans.values_list("pk", flat=True))
    states = dict(PlanDvh.objects.filter(plan_id__in=ids).values_list("plan_id", "state"))
    keys = [f"plan:{pk}" for pk in ids]
    queued = {
        k: s
        for k, s in WorkItem.objects.filter(kind=DVH, key__in=keys)
        .exclude(state="done")
        .values_list("key", "state")
    }
    counts = {"plans": len(ids), "calculated": 0, "error": 0, "queued": 0, "failed": 0, "waiting": 0}
    for pk in ids:
        work_state = queued.get(f"plan:{pk}")
        if work_state == "failed":
            counts["failed"] += 1
        elif work_state in {"pending", "in_progress"}:
            counts["queued"] += 1
        elif states.get(pk) == DvhState.OK:
            counts["calculated"] += 1
        elif states.get(pk) == DvhState.ERROR:
            counts["error"] += 1
        else:
            counts["waiting"] += 1
    return counts

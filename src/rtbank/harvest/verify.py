"""The end of a run: wait until every step is done and every retrieved object filed, then the manifest.

Per treated plan, ``expected`` is the plan bundle over what the run learned at its sources (merged with the
catalog), ``collected`` what rtbank now holds of it, ``missing`` the rest with a reason, and
``missing_at_source`` the references no source could answer (a dangling reference, a missing slice).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone

from rtbank.catalog.models import Instance, InstanceState
from rtbank.dicom.plan_bundle import plan_bundle
from rtbank.eventlog.models import Outcome
from rtbank.eventlog.services import log_event
from rtbank.harvest import jobs
from rtbank.harvest.index import run_index
from rtbank.harvest.models import HarvestObject, HarvestPlan, HarvestRun, ObjectState, PlanState, RunState
from rtbank.ingest import spool
from rtbank.work.models import WorkItem, WorkState

logger = logging.getLogger("rtbank.harvest")
NOT_FILED = "retrieved but not filed by rtbank (see the receiver's and worker's logs)"


def verify_run(run: HarvestRun) -> dict[str, Any] | None:
    """``None`` while the run is still going; else finish it and return its summary."""
    if run.finished:
        return {"state": run.state}
    rows = WorkItem.objects.filter(kind__in=(jobs.FIND, jobs.STEP), key__startswith=jobs.key(run.pk, ""))
    if rows.filter(state__in=(WorkState.PENDING, WorkState.IN_PROGRESS)).exists():
        return None
    if _continue_after_failed_steps(run):
        return None
    current = _current(run)
    waiting = HarvestObject.objects.filter(run=run, state=ObjectState.REQUESTED).exclude(
        sop_instance_uid__in=current
    )
    if waiting.exists() and _still_arriving(run):
        return None
    _mark_collected(run, current)
    failures = _step_failures(run)
    totals: dict[str, int] = defaultdict(int)
    for plan in HarvestPlan.objects.filter(run=run):
        state = _plan_manifest(run, plan, current, failures)
        totals[state] += 1
    bad = totals.get(PlanState.INCOMPLETE, 0) + len(failures.get("run", []))
    state = RunState.INCOMPLETE if bad else RunState.COMPLETE
    summary = {"plans": dict(totals), "failed_rows": rows.filter(state=WorkState.FAILED).count()}
    HarvestRun.objects.filter(pk=run.pk).update(state=state, finished_at=timezone.now(), summary=summary)
    _assign(run)
    log_event(
        "harvest",
        "run_finished",
        actor=f"harvest:{run.pk}",
        outcome=Outcome.OK if state == RunState.COMPLETE else Outcome.WARNING,
        object_type="harvest_run",
        object_id=run.pk,
        message=f"{state}: {dict(totals)}",
        details=summary,
    )
    _notify(run, state, dict(totals))
    return {"state": state, **summary}


def _continue_after_failed_steps(run: HarvestRun) -> bool:
    """A step that failed after retries does not stop its plan: the next step runs (idempotent enqueue)."""
    from rtbank.harvest.walk import STEPS
    from rtbank.work import services as work

    failed = list(
        WorkItem.objects.filter(kind=jobs.STEP, key__startswith=jobs.key(run.pk, ""), state=WorkState.FAILED)
    )
    if not failed:
        return False
    keys = set(
        WorkItem.objects.filter(kind=jobs.STEP, key__startswith=jobs.key(run.pk, "")).values_list(
            "key", flat=True
        )
    )
    added = False
    for item in failed:
        step = item.payload.get("step", "")
        if step not in STEPS or STEPS.index(step) + 1 >= len(STEPS):
            continue
        nxt = STEPS[STEPS.index(step) + 1]
        row_key = jobs.key(run.pk, "plan", str(item.payload["plan"]), nxt)
        if row_key not in keys:
            work.enqueue(
                jobs.STEP, row_key, {"run": run.pk, "plan": item.payload["plan"], "step": nxt}, rearm=False
            )
            added = True
    return added


def _current(run: HarvestRun) -> set[str]:
    uids = HarvestObject.objects.filter(run=run).values("sop_instance_uid")
    return set(
        Instance.objects.filter(sop_instance_uid__in=uids, state=InstanceState.CURRENT).values_list(
            "sop_instance_uid", flat=True
        )
    )


def _still_arriving(run: HarvestRun) -> bool:
    dirs = spool.spool_dirs()
    if any(dirs.ready.glob("*.dcm")):
        return True
    if WorkItem.objects.filter(kind="ingest", state__in=(WorkState.PENDING, WorkState.IN_PROGRESS)).exists():
        return True
    last = (
        HarvestObject.objects.filter(run=run, state=ObjectState.REQUESTED).order_by("-requested_at").first()
    )
    limit = dt.timedelta(seconds=settings.HARVEST_ARRIVAL_TIMEOUT_S)
    return bool(
        last
        and last.requested_at
        and timezone.now() - last.requested_at < min(limit, dt.timedelta(seconds=5))
    )


def _mark_collected(run: HarvestRun, current: set[str]) -> None:
    """Requested objects now filed are collected; give each its harvest provenance in the catalog."""
    requested = HarvestObject.objects.filter(
        run=run, state=ObjectState.REQUESTED, sop_instance_uid__in=current
    )
    by_uid = {o.sop_instance_uid: o for o in requested.select_related("node")}
    instances = Instance.objects.filter(sop_instance_uid__in=list(by_uid), state=InstanceState.CURRENT).only(
        "pk", "sop_instance_uid", "provenance", "size"
    )
    given, collected = [], []
    for instance in instances:
        obj = by_uid[instance.sop_instance_uid]
        if instance.provenance.get("harvest_run") is None:
            instance.provenance = {
                **instance.provenance,
                "harvest_run": run.pk,
                "source_node": obj.node.name if obj.node else "",
                "harvested_at": (obj.requested_at or timezone.now()).isoformat(),
            }
            given.append(instance)
        obj.state, obj.instance, obj.size = ObjectState.COLLECTED, instance, instance.size
        collected.append(obj)
    Instance.objects.bulk_update(given, ["provenance"], batch_size=250)
    HarvestObject.objects.bulk_update(collected, ["state", "instance", "size"], batch_size=250)


def _step_failures(run: HarvestRun) -> dict[Any, list[str]]:
    failures: dict[Any, list[str]] = defaultdict(list)
    for item in WorkItem.objects.filter(
        kind__in=(jobs.FIND, jobs.STEP), key__startswith=jobs.key(run.pk, ""), state=WorkState.FAILED
    ):
        where = item.payload.get("plan", "run")
        failures[where].append(
            f"{item.payload.get('step', item.payload.get('find', item.kind))}: {item.last_error}"
        )
    return failures


def _plan_manifest(
    run: HarvestRun, plan: HarvestPlan, current: set[str], failures: dict[Any, list[str]]
) -> str:
    if plan.state == PlanState.ABSENT:
        manifest = {
            "expected": {},
            "collected": [],
            "missing": {},
            "missing_at_source": [["plan", plan.plan_uid, "plan absent at the source (dangling record)"]],
        }
        HarvestPlan.objects.filter(pk=plan.pk).update(manifest=manifest)
        return PlanState.ABSENT
    bundle = plan_bundle(plan.plan_uid, run_index(run, plan.patient_id))
    expected = {uid: role.value for uid, role in bundle.instances.items()}
    collected = sorted(u for u in expected if u in current)
    states = dict(
        HarvestObject.objects.filter(run=run, sop_instance_uid__in=list(expected)).values_list(
            "sop_instance_uid", "state"
        )
    )
    step_errors = failures.get(plan.pk, [])
    missing = {}
    for uid in expected:
        if uid in current:
            continue
        if states.get(uid) == ObjectState.REQUESTED:
            missing[uid] = NOT_FILED
        elif step_errors:
            missing[uid] = "failed after retries: " + "; ".join(step_errors)[:500]
        else:
            missing[uid] = "not collected"
    at_source = [[role.value, uid, "referenced but not found at the source"] for role, uid in bundle.missing]
    if missing or step_errors:
        state = PlanState.INCOMPLETE
    elif at_source:
        state = PlanState.MISSING_AT_SOURCE
    else:
        state = PlanState.COMPLETE
    manifest = {
        "expected": expected,
        "collected": collected,
        "missing": missing,
        "missing_at_source": at_source,
        "series": {uid: role.value for uid, role in bundle.series.items()},
        "step_errors": step_errors,
    }
    HarvestPlan.objects.filter(pk=plan.pk).update(manifest=manifest, state=state)
    return state


def _assign(run: HarvestRun) -> None:
    if run.project is None:
        return
    from rtbank.projects.models import AssignedVia
    from rtbank.projects.services import assign_plan

    plans = (
        HarvestPlan.objects.filter(run=run).exclude(state=PlanState.ABSENT).values_list("plan_uid", flat=True)
    )
    for instance in Instance.objects.filter(sop_instance_uid__in=list(plans), state=InstanceState.CURRENT):
        try:
            assign_plan(run.project, instance, actor=f"harvest:{run.pk}", via=AssignedVia.HARVEST)
        except ValidationError as exc:
            log_event(
                "harvest",
                "assign_refused",
                actor=f"harvest:{run.pk}",
                outcome=Outcome.WARNING,
                object_type="instance",
                object_id=instance.pk,
                message="; ".join(exc.messages)[:500],
            )


def _notify(run: HarvestRun, state: str, totals: dict[str, int]) -> None:
    from rtbank.notifications.services import notify

    users = list(User.objects.filter(username=run.created_by, is_active=True)) or list(
        User.objects.filter(is_superuser=True, is_active=True)
    )
    if users:
        notify(
            users,
            "harvest_finished",
            f"Harvest run #{run.pk} finished: {state}",
            f"Harvest run #{run.pk} from {run.source.name} finished ({state}). Plans: {totals}.",
            url=f"/harvest/runs/{run.pk}/",
        )

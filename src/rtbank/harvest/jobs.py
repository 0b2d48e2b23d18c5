"""The harvest as work rows: ``harvest_find`` (probe, day chunks, patients), ``harvest_step`` (plan × step)
and ``harvest_verify`` (one per run: wait for filing, manifest, provenance, project, notification).

Each row's DICOM part runs in the kind's ``prepare`` hook, before the worker opens the batch transaction
(a C-MOVE of a series must not hold SQLite's write lock for minutes); the handler then commits the row's
result — the next rows, the plan's progress — in the same transaction that marks the row done, so a kill
at any point either repeats a step (idempotent) or finds it committed, never half of it.

Failures of the source (refused association, timeout, failure status, failed sub-operations) retry with
the harvest back-off (``RTBANK_HARVEST_BACKOFF``, doubling) up to the source's ``max_attempts``; then the
row fails with the reason and the manifest reports its objects as "failed after retries".
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import traceback
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from rtbank.harvest import dimse, walk
from rtbank.harvest.models import HarvestPlan, HarvestRun, PlanState, RunState
from rtbank.harvest.session import Defer, Session
from rtbank.harvest.sources import HarvestError, SourceSettings
from rtbank.work import services as work
from rtbank.work.models import WorkItem, WorkState
from rtbank.work.registry import Batch, PermanentError, WorkKind, register_kind

logger = logging.getLogger("rtbank.harvest")
FIND, STEP, VERIFY = "harvest_find", "harvest_step", "harvest_verify"
KINDS = (FIND, STEP, VERIFY)


def register() -> None:
    lease = settings.HARVEST_LEASE_S
    register_kind(WorkKind(FIND, handle, batch_size=1, lease_s=lease, prepare=prepare, order=40))
    register_kind(WorkKind(STEP, handle, batch_size=1, lease_s=lease, prepare=prepare, order=41))
    register_kind(WorkKind(VERIFY, handle, batch_size=1, lease_s=lease, prepare=prepare, order=42))


def key(run_id: int, *parts: str) -> str:
    return ":".join(["run", str(run_id), *parts])


# --- the DICOM part, outside the transaction -------------------------------------------------------------
def prepare(items: list[WorkItem], batch: Batch) -> None:
    outcomes: dict[int, Any] = batch.data.setdefault("harvest", {})
    for item in items:
        try:
            outcomes[item.pk] = _do(item, batch.worker_id)
        except DatabaseError:
            raise
        except (Defer, dimse.Transient, dimse.QueryRefused, HarvestError) as exc:
            outcomes[item.pk] = exc
        except Exception as exc:  # noqa: BLE001 - a bug in one step must not kill the worker
            logger.exception("harvest %s failed", item.key)
            outcomes[item.pk] = PermanentError(f"{type(exc).__name__}: {exc} ({_where(exc)})")


def _where(exc: Exception) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"


def _do(item: WorkItem, worker_id: str) -> Any:
    run = HarvestRun.objects.select_related("source", "source__institution").get(pk=item.payload["run"])
    if run.state == RunState.CANCELLED:
        return {"cancelled": True}
    session = Session(
        run,
        holder=f"{worker_id}:{item.pk}",
        step=item.payload.get("step", item.kind),
        on_progress=_lease_renewer(item),
    )
    try:
        if item.kind == FIND:
            return _find(session, item)
        if item.kind == STEP:
            plan = HarvestPlan.objects.get(pk=item.payload["plan"])
            return walk.run_step(session, plan, item.payload["step"])
        return {"verify": True}
    finally:
        session.close()


def _lease_renewer(item: WorkItem) -> Any:
    """Renew this row's lease while a long C-MOVE reports progress (SQLite workers have no renewal thread)."""
    state = {"at": timezone.now()}

    def renew() -> None:
        now = timezone.now()
        if (now - state["at"]).total_seconds() > settings.HARVEST_LEASE_S / 3:
            state["at"] = now
            WorkItem.objects.filter(pk=item.pk, state=WorkState.IN_PROGRESS).update(
                lease_until=now + dt.timedelta(seconds=settings.HARVEST_LEASE_S)
            )

    return renew


def _find(s: Session, item: WorkItem) -> Any:
    what = item.payload["find"]
    if what == "probe":
        return {"level": walk.probe(s)}
    if what == "patients":
        return {"patients": walk.list_patients(s)}
    if what == "patient":
        return walk.find_patient(s, item.payload["patient"])
    first, last = (dt.date.fromisoformat(item.payload[k]) for k in ("first", "last"))
    return walk.find_chunk(s, item.payload["level"], first, last)


# --- the commit, inside the transaction -----------------------------------------------------------------
def handle(item: WorkItem, batch: Batch) -> dict[str, Any] | None:
    outcome = batch.data.get("harvest", {}).get(item.pk)
    if outcome is None:  # run without prepare
        prepare([item], batch)
        outcome = batch.data["harvest"][item.pk]
    if isinstance(outcome, Defer):
        _again(item, outcome.seconds, str(outcome))
        return {"deferred": str(outcome)[:200]}
    if isinstance(outcome, PermanentError):
        raise outcome
    if isinstance(outcome, Exception):
        return _retry(item, outcome)
    if isinstance(outcome, dict) and outcome.get("cancelled"):
        return outcome
    run = HarvestRun.objects.select_related("source").get(pk=item.payload["run"])
    if item.kind == FIND:
        return _after_find(run, item, outcome)
    if item.kind == STEP:
        return _after_step(run, item, outcome)
    from rtbank.harvest.verify import verify_run

    done = verify_run(run)
    if done is None:
        _again(item, 0.3, "waiting for steps and filing")
        return {"waiting": True}
    return done


def _again(item: WorkItem, seconds: float, reason: str) -> None:
    """Run this row again after ``seconds`` (not a failure: attempts are not counted)."""
    WorkItem.objects.filter(pk=item.pk).update(
        rerun=True, not_before=timezone.now() + dt.timedelta(seconds=seconds)
    )


def _retry(item: WorkItem, exc: Exception) -> dict[str, Any]:
    run = HarvestRun.objects.select_related("source").get(pk=item.payload["run"])
    tries = int(item.payload.get("tries", 0)) + 1
    cap = SourceSettings.of(run.source).attempts
    message = str(exc)[:1000]
    if tries >= cap:
        raise PermanentError(f"failed after {tries} attempt(s): {message}")
    delay = min(
        settings.HARVEST_BACKOFF_CAP_S, settings.HARVEST_BACKOFF_S * 2 ** (tries - 1)
    ) * random.uniform(0.9, 1.1)
    WorkItem.objects.filter(pk=item.pk).update(
        rerun=True, last_error=message, not_before=timezone.now() + dt.timedelta(seconds=delay)
    )
    return {"tries": tries}


def _after_find(run: HarvestRun, item: WorkItem, outcome: Any) -> dict[str, Any]:
    what = item.payload["find"]
    if what == "probe":
        level = outcome["level"]
        HarvestRun.objects.filter(pk=run.pk).update(record_level=level)
        from rtbank.harvest.services import enqueue_chunks

        enqueue_chunks(run, level)
        return {"level": level}
    if what == "patients":
        rows = [
            (key(run.pk, "find", f"p{i}"), {"run": run.pk, "find": "patient", "patient": p})
            for i, p in enumerate(outcome["patients"])
        ]
        work.enqueue_many(FIND, rows, priority=5)
        return {"patients": len(rows)}
    found: walk.Found = outcome
    for plan_uid, entry in sorted(found.plans.items()):
        plan, _ = HarvestPlan.objects.get_or_create(
            run=run, plan_uid=plan_uid, defaults={"patient_id": entry["patient"]}
        )
        records = sorted(set(plan.records_in_window) | set(entry["records"]))
        dates = [dt.date.fromisoformat(d) for d in entry["dates"]]
        first = min([d for d in [plan.first_treatment, *dates] if d], default=None)
        HarvestPlan.objects.filter(pk=plan.pk).update(records_in_window=records, first_treatment=first)
        work.enqueue(
            STEP,
            key(run.pk, "plan", str(plan.pk), walk.STEPS[0]),
            {"run": run.pk, "plan": plan.pk, "step": walk.STEPS[0]},
            rearm=False,
            priority=3,
        )
    return {"plans": len(found.plans)}


def _after_step(run: HarvestRun, item: WorkItem, outcome: walk.StepOutcome) -> dict[str, Any]:
    plan_id, step = item.payload["plan"], item.payload["step"]
    updates = dict(outcome.plan_updates)
    updates.setdefault("step", step)
    HarvestPlan.objects.filter(pk=plan_id).update(**updates)
    if outcome.next_step:
        # Later steps of a plan run first: plans finish one by one, and their objects land together.
        priority = 3 + walk.STEPS.index(outcome.next_step)
        work.enqueue(
            STEP,
            key(run.pk, "plan", str(plan_id), outcome.next_step),
            {"run": run.pk, "plan": plan_id, "step": outcome.next_step},
            rearm=False,
            priority=priority,
        )
    elif updates.get("state") not in (PlanState.ABSENT,):
        HarvestPlan.objects.filter(pk=plan_id).update(state=PlanState.WALKED)
    return {"next": outcome.next_step}

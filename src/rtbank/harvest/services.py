"""Harvest verbs shared by the CLI, the web and the workers: start, resume, progress, retained data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import BigIntegerField, Count, Q, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from rtbank.catalog.models import Instance
from rtbank.eventlog.services import log_event
from rtbank.harvest import jobs
from rtbank.harvest.models import HarvestObject, HarvestPlan, HarvestRun, ObjectState, PlanState, RunState
from rtbank.harvest.sources import HarvestError, SourceSettings, harvest_node, holder_dead
from rtbank.harvest.walk import STEPS
from rtbank.projects.models import Project
from rtbank.work import services as work
from rtbank.work.models import WorkItem, WorkState


def start_run(
    source: str,
    *,
    actor: str,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    patients: list[str] | None = None,
    objects_from: list[str] | None = None,
    project: str | None = None,
) -> HarvestRun:
    """Create a run and its first work rows (the workers, or ``rtbank harvest`` itself, do the rest)."""
    node = harvest_node(source)
    SourceSettings.of(node)  # refuse bad politeness settings before anything starts
    if patients is None and (date_from is None or date_to is None):
        raise HarvestError("give a window (--from DATE --to DATE) or a patient list (--patients FILE)")
    if date_from and date_to and date_from > date_to:
        raise HarvestError(f"the window starts after it ends ({date_from} > {date_to})")
    for name in objects_from or []:
        if name != "catalog":
            harvest_node(name)
    proj = None
    if project:
        proj = Project.objects.filter(code=project).first()
        if proj is None:
            raise HarvestError(f"no project {project!r}")
    with transaction.atomic():
        run = HarvestRun.objects.create(
            source=node,
            objects_from=list(objects_from or []),
            date_from=date_from,
            date_to=date_to,
            patients=list(patients or []),
            project=proj,
            created_by=actor,
        )
        if patients:
            rows = [
                (jobs.key(run.pk, "find", f"p{i}"), {"run": run.pk, "find": "patient", "patient": p})
                for i, p in enumerate(patients)
            ]
            HarvestRun.objects.filter(pk=run.pk).update(record_level="patient")
            work.enqueue_many(jobs.FIND, rows, priority=5)
        else:
            work.enqueue(jobs.FIND, jobs.key(run.pk, "probe"), {"run": run.pk, "find": "probe"}, priority=6)
        work.enqueue(jobs.VERIFY, jobs.key(run.pk, "verify"), {"run": run.pk}, priority=0)
        log_event(
            "harvest",
            "run_started",
            actor=actor,
            object_type="harvest_run",
            object_id=run.pk,
            details={
                "source": node.name,
                "from": str(date_from or ""),
                "to": str(date_to or ""),
                "patients": len(patients or []),
                "objects_from": list(objects_from or []),
                "project": project or "",
            },
        )
    return run


def enqueue_chunks(run: HarvestRun, level: str) -> None:
    """After the probe: one row per chunk of the window (image, series), or the patient walk."""
    conf = SourceSettings.of(run.source)
    if level == "patient":
        work.enqueue(
            jobs.FIND, jobs.key(run.pk, "find", "patients"), {"run": run.pk, "find": "patients"}, priority=5
        )
        return
    start = run.date_from
    if level == "series":
        start = run.date_from - dt.timedelta(days=conf.series_lookback_days)
    size = max(1, int(conf.extra.get("chunk_days", 1)))
    rows = []
    day = start
    while day <= run.date_to:
        last = min(run.date_to, day + dt.timedelta(days=size - 1))
        rows.append(
            (
                jobs.key(run.pk, "find", f"{day:%Y%m%d}"),
                {
                    "run": run.pk,
                    "find": "chunk",
                    "level": level,
                    "first": day.isoformat(),
                    "last": last.isoformat(),
                },
            )
        )
        day = last + dt.timedelta(days=1)
    work.enqueue_many(jobs.FIND, rows, priority=5)


def resume(run: HarvestRun, *, actor: str, retry_failed: bool = False) -> int:
    """Take back rows held by dead processes of this machine at once, and optionally retry failed rows."""
    rows = WorkItem.objects.filter(kind__in=jobs.KINDS, key__startswith=jobs.key(run.pk, ""))
    freed = 0
    for item in rows.filter(state=WorkState.IN_PROGRESS):
        if holder_dead(item.claimed_by):
            freed += WorkItem.objects.filter(pk=item.pk, claimed_by=item.claimed_by).update(
                state=WorkState.PENDING, claimed_by="", lease_until=None, not_before=None
            )
    retried = 0
    if retry_failed:
        for item in rows.filter(state=WorkState.FAILED):
            retried += work.resubmit(item.pk)
    if run.state != RunState.RUNNING and (retried or freed):
        HarvestRun.objects.filter(pk=run.pk).update(state=RunState.RUNNING, finished_at=None)
    work.enqueue(jobs.VERIFY, jobs.key(run.pk, "verify"), {"run": run.pk})
    log_event(
        "harvest",
        "run_resumed",
        actor=actor,
        object_type="harvest_run",
        object_id=run.pk,
        details={"freed": freed, "retried": retried},
    )
    return freed + retried


def cancel(run: HarvestRun, *, actor: str) -> None:
    HarvestRun.objects.filter(pk=run.pk, state=RunState.RUNNING).update(
        state=RunState.CANCELLED, finished_at=timezone.now()
    )
    WorkItem.objects.filter(
        kind__in=jobs.KINDS, key__startswith=jobs.key(run.pk, ""), state=WorkState.PENDING
    ).update(state=WorkState.DONE, done_at=timezone.now())
    log_event("harvest", "run_cancelled", actor=actor, object_type="harvest_run", object_id=run.pk)


@dataclass
class Progress:
    plans_total: int
    plans_done: int
    plans_failed: int
    plans_absent: int
    objects: int
    bytes: int
    rows_pending: int
    rows_failed: int
    state: str
    started: dt.datetime

    @property
    def remaining(self) -> int:
        return max(0, self.plans_total - self.plans_done - self.plans_failed - self.plans_absent)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "remaining": self.remaining, "started": self.started.isoformat()}


def progress(run: HarvestRun) -> Progress:
    plans = dict(HarvestPlan.objects.filter(run=run).values_list("state").annotate(n=Count("id")))
    failed_plans = set(
        WorkItem.objects.filter(
            kind=jobs.STEP, key__startswith=jobs.key(run.pk, ""), state=WorkState.FAILED
        ).values_list("payload__plan", flat=True)
    )
    finished = plans.get(PlanState.WALKED, 0) + sum(
        plans.get(s, 0) for s in (PlanState.COMPLETE, PlanState.MISSING_AT_SOURCE, PlanState.INCOMPLETE)
    )
    fetched = HarvestObject.objects.filter(run=run, state__in=(ObjectState.REQUESTED, ObjectState.COLLECTED))
    moved_bytes = Instance.objects.filter(provenance__harvest_run=run.pk).aggregate(b=Sum("size"))["b"] or 0
    rows = WorkItem.objects.filter(kind__in=jobs.KINDS, key__startswith=jobs.key(run.pk, ""))
    return Progress(
        plans_total=sum(plans.values()),
        plans_done=finished,
        plans_failed=len(failed_plans),
        plans_absent=plans.get(PlanState.ABSENT, 0),
        objects=fetched.count(),
        bytes=moved_bytes,
        rows_pending=rows.filter(state__in=(WorkState.PENDING, WorkState.IN_PROGRESS)).count(),
        rows_failed=rows.filter(state=WorkState.FAILED).count(),
        state=HarvestRun.objects.get(pk=run.pk).state,
        started=run.created_at,
    )


def retained_instance_ids() -> QuerySet[Instance]:
    """Instances collected by a harvest run that is kept: the cleanup service must never delete these.

    Use as ``Instance.objects.filter(pk__in=retained_instance_ids())`` or exclude them likewise. An object
    is retained when a kept run marked it wanted (it belongs to a treated plan's bundle) and rtbank holds it,
    or when it carries the provenance of a kept run (every object a run retrieved).
    """
    kept = HarvestRun.objects.filter(keep=True).values("pk")
    wanted = HarvestObject.objects.filter(run__in=kept, wanted=True).values("sop_instance_uid")
    # The run id inside the JSON, as a number (PostgreSQL has no jsonb = bigint for a subquery).
    run_id = Cast(KT("provenance__harvest_run"), BigIntegerField())
    return (
        Instance.objects.annotate(harvest_run_id=run_id)
        .filter(Q(sop_instance_uid__in=wanted) | Q(harvest_run_id__in=kept))
        .values("pk")
    )


def step_names() -> tuple[str, ...]:
    return STEPS

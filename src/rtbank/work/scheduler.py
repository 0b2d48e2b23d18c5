"""Periodic jobs inside the worker, without cron.

``settings.SCHEDULE`` names each job, the function that runs it and when::

    SCHEDULE = {"cleanup": {"task": "rtbank.rules.cleanup.run_scheduled", "when": "daily@02:00"}, …}

``when`` is ``daily@HH:MM`` (local time, ``RTBANK_TIME_ZONE``), ``hourly``, ``every:SECONDS`` or ``off``.
Every worker runs the scheduler poller; it computes each job's current *period* (the date of the latest
``daily`` occurrence, the hour, or the ``every`` slot) and creates the work row ``job:<job>:<period>`` unless
it exists (:func:`rtbank.work.services.run_once_per_period`). The unique ``(kind, key)`` makes N workers
run each period once; a worker that was down at 02:00 runs the day's job when it starts. The job's
function is called as ``task(period)`` by whichever worker claims the row, with the usual leases, retries
and the attempt cap; what it returns is stored in the row's payload.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from rtbank.work import services
from rtbank.work.models import WorkItem
from rtbank.work.registry import Batch, PermanentError, Poller, WorkKind, register_kind, register_poller

logger = logging.getLogger("rtbank.scheduler")
JOB = "job"  # the work kind of scheduled jobs (rows are created by services.run_once_per_period)
_DAILY = re.compile(r"^daily@([01]\d|2[0-3]):([0-5]\d)$")
_EVERY = re.compile(r"^every:([1-9]\d*)$")


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    task: str  # dotted path of ``task(period: str) -> dict | None``
    when: str


class ScheduleError(ValueError):
    """A job's ``when`` cannot be understood; the message names the job and the accepted forms."""


def jobs() -> list[ScheduledJob]:
    """The configured jobs (``settings.SCHEDULE``), switched-off ones left out."""
    found = []
    for name, spec in getattr(settings, "SCHEDULE", {}).items():
        when = str(spec.get("when", "off")).strip().lower()
        if when != "off":
            found.append(ScheduledJob(name, spec["task"], when))
    return found


def check_when(name: str, when: str) -> None:
    if when == "off" or when == "hourly" or _DAILY.match(when) or _EVERY.match(when):
        return
    raise ScheduleError(f"scheduled job {name!r}: {when!r} is not daily@HH:MM, hourly, every:SECONDS or off")


def current_period(when: str, now: dt.datetime) -> str:
    """The period a job is in at ``now``: the latest occurrence at or before ``now``, as a row key."""
    if when == "hourly":
        return f"{timezone.localtime(now):%Y-%m-%dT%H}"
    every = _EVERY.match(when)
    if every:
        return f"e{every.group(1)}:{int(now.timestamp()) // int(every.group(1))}"
    daily = _DAILY.match(when)
    if daily:
        local = timezone.localtime(now)
        at = local.replace(hour=int(daily.group(1)), minute=int(daily.group(2)), second=0, microsecond=0)
        day = local.date() if local >= at else local.date() - dt.timedelta(days=1)
        return day.isoformat()
    raise ScheduleError(f"{when!r} is not daily@HH:MM, hourly or every:SECONDS")


def tick(worker_id: str = "", now: dt.datetime | None = None) -> list[str]:
    """Create the rows of every job whose current period has none yet; returns their keys."""
    created = []
    moment = now or timezone.now()
    for job in jobs():
        period = current_period(job.when, moment)
        if services.run_once_per_period(job.name, period, {"period": period}):
            created.append(f"{job.name}:{period}")
            logger.info("scheduled job %s for period %s", job.name, period)
    return created


def run_job(item: WorkItem, batch: Batch) -> dict[str, Any] | None:
    """Work handler of kind ``job``: call the job's task with its period."""
    name = item.payload.get("job", "")
    spec = getattr(settings, "SCHEDULE", {}).get(name)
    if spec is None:
        raise PermanentError(
            f"scheduled job {name!r} is not in settings.SCHEDULE (removed since it was queued?)"
        )
    period = item.payload.get("period") or item.key.split(":", 1)[-1]
    result = import_string(spec["task"])(period)
    return {"result": result} if result else None


def register() -> None:
    for job in getattr(settings, "SCHEDULE", {}).items():
        check_when(job[0], str(job[1].get("when", "off")).strip().lower())
    register_kind(WorkKind(JOB, run_job, batch_size=1, order=90, lease_s=settings.SCHEDULER_JOB_LEASE_S))
    # Not while a worker only drains the queue (tests, `rtbank import --wait`): jobs belong to running
    # workers.
    register_poller(Poller("scheduler", tick, every_s=settings.SCHEDULER_POLL_S, when_draining=False))

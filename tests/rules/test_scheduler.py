"""The scheduler: periods from settings, one row per (job, period) whatever the number of workers."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from rtbank.work import scheduler
from rtbank.work.models import WorkItem, WorkState
from rtbank.work.worker import Worker

RUNS: list[str] = []


def record_run(period: str) -> dict[str, Any]:
    RUNS.append(period)
    return {"ran": period}


@pytest.fixture
def schedule(settings: Any) -> dict:
    RUNS.clear()
    settings.SCHEDULE = {
        "nightly": {"task": "tests.rules.test_scheduler.record_run", "when": "daily@02:00"},
        "often": {"task": "tests.rules.test_scheduler.record_run", "when": "every:600"},
        "never": {"task": "tests.rules.test_scheduler.record_run", "when": "off"},
    }
    return settings.SCHEDULE


def at(text: str) -> dt.datetime:
    return timezone.make_aware(dt.datetime.fromisoformat(text), dt.UTC)


@pytest.mark.parametrize(
    ("when", "now", "period"),
    [
        ("daily@02:00", "2026-03-10T01:59:00", "2026-03-09"),  # before today's time: still yesterday's period
        ("daily@02:00", "2026-03-10T02:00:00", "2026-03-10"),
        ("daily@23:30", "2026-03-10T23:45:00", "2026-03-10"),
        ("hourly", "2026-03-10T14:59:59", "2026-03-10T14"),
        ("every:600", "2026-03-10T00:09:59", f"e600:{int(at('2026-03-10T00:00:00').timestamp()) // 600}"),
    ],
)
def test_each_job_has_one_period_at_a_time(when: str, now: str, period: str, settings: Any) -> None:
    settings.TIME_ZONE = "UTC"
    assert scheduler.current_period(when, at(now)) == period


@pytest.mark.parametrize("when", ["daily", "daily@25:00", "weekly", "every:0", "every:-5"])
def test_bad_schedules_are_refused(when: str) -> None:
    with pytest.raises(scheduler.ScheduleError):
        scheduler.check_when("cleanup", when)


@pytest.mark.django_db
def test_a_tick_creates_each_due_job_once(schedule: dict) -> None:
    now = at("2026-03-10T03:00:00")
    first = scheduler.tick("w1", now)
    assert sorted(k.split(":")[0] for k in first) == ["nightly", "often"]  # "off" jobs never run
    assert scheduler.tick("w2", now) == []  # a second worker in the same period creates nothing
    assert scheduler.tick("w1", now + dt.timedelta(minutes=11)) == [
        f"often:e600:{int(now.timestamp()) // 600 + 1}"
    ]
    assert WorkItem.objects.filter(kind="job").count() == 3


@pytest.mark.django_db(transaction=True)
def test_n_workers_ticking_at_once_run_each_job_once(schedule: dict) -> None:
    now = at("2026-03-10T03:00:00")
    if connection.vendor == "postgresql":
        barrier = threading.Barrier(4)

        def tick(worker: str) -> None:
            barrier.wait()
            try:
                scheduler.tick(worker, now)
            finally:
                connection.close()

        threads = [threading.Thread(target=tick, args=(f"w{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    else:  # the in-memory test database has one connection: the workers take turns
        for i in range(4):
            scheduler.tick(f"w{i}", now)
    assert WorkItem.objects.filter(kind="job").count() == 2
    Worker(["job"], poll_s=0.01).run(until_idle=True)
    assert sorted(RUNS) == sorted(["2026-03-10", f"e600:{int(now.timestamp()) // 600}"])
    assert set(WorkItem.objects.filter(kind="job").values_list("state", flat=True)) == {WorkState.DONE}
    assert WorkItem.objects.get(key__startswith="nightly").payload["result"] == {"ran": "2026-03-10"}


@pytest.mark.django_db(transaction=True)  # a worker loop closes connections left in a transaction
def test_a_running_worker_schedules_but_draining_does_not(schedule: dict) -> None:
    Worker(poll_s=0.01).run(until_idle=True)  # tests and `import --wait` drain only
    assert not WorkItem.objects.filter(kind="job").exists()
    worker = Worker(["job"], poll_s=0.01)
    worker._run_pollers()  # what every loop of `rtbank worker` does
    assert WorkItem.objects.filter(kind="job").count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_job_removed_from_settings_fails_with_a_reason(schedule: dict, settings: Any) -> None:
    scheduler.tick("w", at("2026-03-10T03:00:00"))
    settings.SCHEDULE = {}
    Worker(["job"], poll_s=0.01).run(until_idle=True)
    row = WorkItem.objects.filter(kind="job").first()
    assert row.state == WorkState.FAILED and "not in settings.SCHEDULE" in row.last_error

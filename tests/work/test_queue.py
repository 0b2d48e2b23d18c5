"""Work rows: idempotent creation, leases, back-off, the attempt cap, re-runs and scheduled jobs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from rtbank.work import services
from rtbank.work.models import WorkItem, WorkState

pytestmark = pytest.mark.django_db


def test_it_creates_each_kind_and_key_once() -> None:
    a = services.enqueue("analysis", "patient:1", {"patient": 1})
    b = services.enqueue("analysis", "patient:1", {"patient": 1})
    assert a.pk == b.pk and WorkItem.objects.count() == 1
    services.enqueue_many("ingest", [("x.000001.dcm", {}), ("x.000001.dcm", {}), ("x.000002.dcm", {})])
    assert WorkItem.objects.filter(kind="ingest").count() == 2


def test_a_claimed_row_is_not_claimed_again_until_its_lease_expires() -> None:
    services.enqueue("analysis", "p:1")
    first = services.claim(["analysis"], "w1", 10)
    assert len(first) == 1 and first[0].attempts == 1
    assert services.claim(["analysis"], "w2", 10) == []
    WorkItem.objects.update(lease_until=timezone.now() - dt.timedelta(seconds=1))  # w1 was killed
    again = services.claim(["analysis"], "w2", 10)
    assert [i.pk for i in again] == [first[0].pk] and again[0].attempts == 2
    assert not services.complete(first[0], "w1")  # w1 lost its lease: it cannot mark the row done
    assert services.complete(again[0], "w2")
    assert WorkItem.objects.get().state == WorkState.DONE


def test_failures_back_off_and_stop_at_the_cap() -> None:
    item = services.enqueue("analysis", "p:2", max_attempts=3)
    for attempt in range(1, 4):
        WorkItem.objects.update(not_before=None)
        (claimed,) = services.claim(["analysis"], "w", 1)
        assert claimed.attempts == attempt
        services.fail(claimed, "w", f"boom {attempt}")
    item.refresh_from_db()
    assert item.state == WorkState.FAILED and item.last_error == "boom 3"
    assert services.claim(["analysis"], "w", 1) == []
    assert services.resubmit(item.pk)
    assert WorkItem.objects.get().state == WorkState.PENDING


def test_a_failure_waits_before_the_next_attempt() -> None:
    services.enqueue("analysis", "p:3")
    (claimed,) = services.claim(["analysis"], "w", 1)
    services.fail(claimed, "w", "transient")
    assert services.claim(["analysis"], "w", 1) == []
    assert WorkItem.objects.get().not_before > timezone.now()


def test_a_killed_worker_cannot_loop_forever() -> None:
    services.enqueue("analysis", "p:4", max_attempts=2)
    for _ in range(3):
        services.claim(["analysis"], "w", 1)
        WorkItem.objects.update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    assert WorkItem.objects.get().state == WorkState.FAILED


def test_new_input_during_a_run_runs_the_row_again() -> None:
    services.enqueue("analysis", "p:5")
    (claimed,) = services.claim(["analysis"], "w", 1)
    services.enqueue("analysis", "p:5")  # a late object of the patient arrives while analysing
    services.complete(claimed, "w")
    assert WorkItem.objects.get().state == WorkState.PENDING


def test_scheduled_jobs_run_once_per_period() -> None:
    assert services.run_once_per_period("cleanup", "2026-11-22")
    assert not services.run_once_per_period("cleanup", "2026-11-22")
    assert services.run_once_per_period("cleanup", "2026-11-23")


def test_counts_by_state_and_kind() -> None:
    services.enqueue("analysis", "a")
    services.enqueue("ingest", "b")
    services.claim(["ingest"], "w", 1)
    counts = services.counts()
    assert counts["pending"] == 1 and counts["in_progress"] == 1
    assert counts["by_kind"]["ingest"] == {"pending": 0, "in_progress": 1, "failed": 0}

"""A stopping worker: the current batch may finish within the grace period; after it, it is abandoned."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from rtbank.work import registry, services
from rtbank.work.models import WorkItem, WorkState
from rtbank.work.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def slow_kind() -> Iterator[str]:
    def handler(item: WorkItem, batch: registry.Batch) -> None:
        time.sleep(float(item.payload["sleep_s"]))

    registry.register_kind(registry.WorkKind("test-slow", handler, batch_size=1))
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield "test-slow"
    registry.KINDS.pop("test-slow", None)
    for sig, handler_ in previous.items():
        signal.signal(sig, handler_)


def _stop_in(seconds: float) -> None:
    threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGTERM)).start()


def test_a_batch_that_ends_within_the_grace_period_is_finished(slow_kind: str) -> None:
    services.enqueue(slow_kind, "quick", {"sleep_s": 0.5})
    worker = Worker([slow_kind], poll_s=0.05)
    worker.install_signal_handlers(grace_s=5)
    _stop_in(0.2)
    worker.run()
    assert WorkItem.objects.get(kind=slow_kind).state == WorkState.DONE


def test_a_batch_that_outlasts_the_grace_period_goes_back_to_the_queue(slow_kind: str) -> None:
    services.enqueue(slow_kind, "long", {"sleep_s": 60})
    worker = Worker([slow_kind], poll_s=0.05)
    worker.install_signal_handlers(grace_s=0.5)
    _stop_in(0.3)
    started = time.monotonic()
    worker.run()
    assert time.monotonic() - started < 10
    item = WorkItem.objects.get(kind=slow_kind)
    assert item.state == WorkState.PENDING and item.claimed_by == "" and item.attempts == 1

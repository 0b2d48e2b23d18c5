"""Which work kinds exist and who handles them. Apps register their kinds in ``AppConfig.ready``.

A kind's handler runs once per row inside a savepoint of one transaction per batch, and the row is
marked done in the same transaction — so "done" is committed together with the work's own writes (I1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rtbank.work.models import WorkItem


class LeaseLost(Exception):
    """Another worker took the row (our lease expired): our work on it must be rolled back."""


class PermanentError(Exception):
    """Retrying cannot help (bad input): the row fails at once, with this message."""


@dataclass
class Batch:
    """State shared by the rows of one batch (caches, files to sync before and clean after commit)."""

    worker_id: str
    data: dict[str, Any] = field(default_factory=dict)
    before_commit: list[Callable[[], None]] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)


Handler = Callable[[WorkItem, Batch], dict[str, Any] | None]
# Runs before the batch transaction opens: read files, and create shared rows (e.g. patients) in a fixed
# order in short transactions of their own, so two workers never deadlock on them.
Prepare = Callable[[list[WorkItem], Batch], None]


@dataclass(frozen=True)
class WorkKind:
    name: str
    handler: Handler
    batch_size: int = 1
    lease_s: int | None = None
    prepare: Prepare | None = None
    order: int = 100  # lower runs first when several kinds have work
    backoff: tuple[float, float] | None = None  # (base_s, cap_s) between failed attempts; None = the default


@dataclass(frozen=True)
class Poller:
    name: str
    func: Callable[[str], None]  # called with the worker id
    every_s: float
    when_draining: bool = (
        True  # also while a worker only drains the queue (run_until_idle: tests, import --wait)
    )


KINDS: dict[str, WorkKind] = {}
POLLERS: dict[str, Poller] = {}


def register_kind(kind: WorkKind) -> None:
    KINDS[kind.name] = kind


def register_poller(poller: Poller) -> None:
    POLLERS[poller.name] = poller

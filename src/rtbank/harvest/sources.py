"""Harvest sources: registered nodes with the ``harvest`` role and their politeness settings.

The settings live in ``Node.options["harvest"]`` (set with ``rtbank harvest-source``)::

    {"parallel": 1,                 # associations open to this source at once
     "pause_s": 0.0,                # pause between two operations on one slot
     "windows": ["mon-fri 19:00-07:00", "sat-sun 00:00-24:00"],   # allowed times (local); [] = always
     "retrieve": "move",            # "move" (to rtbank's receiver) or "get"
     "inspect_get": true,           # may read small RT objects by C-GET to follow their references
     "query_levels": ["image", "series", "patient"],   # the record-finding fallback chain, in order
     "series_lookback_days": 120,   # series level: record series may start this long before the window
     "max_attempts": 10, "timeout_s": 120, "move_destination": "RTBANK"}

A clinic's R&V system is a production system: by default rtbank opens one association at a time.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from rtbank.harvest.models import SourceSlot
from rtbank.institutions.models import Node, NodeRole

QUERY_LEVELS = ("image", "series", "patient")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^(?P<d1>[a-z]{3})(?:-(?P<d2>[a-z]{3}))?\s+(?P<h1>\d\d):(?P<m1>\d\d)-(?P<h2>\d\d):(?P<m2>\d\d)$"
)


class HarvestError(Exception):
    """A harvest cannot go on as asked; the message names the object and the fix."""


@dataclass(frozen=True)
class Window:
    """Days (0 = Monday) and a time span; an end before the start runs past midnight."""

    days: frozenset[int]
    start: dt.time
    end_minutes: int  # minutes after midnight, 1440 = 24:00

    @classmethod
    def parse(cls, text: str) -> Window:
        match = _WINDOW.match(text.strip().lower())
        if not match or match["d1"] not in DAYS or (match["d2"] and match["d2"] not in DAYS):
            raise ValidationError(
                f"time window {text!r}: use e.g. 'mon-fri 19:00-07:00' or 'sat 00:00-24:00'"
            )
        first = DAYS.index(match["d1"])
        last = DAYS.index(match["d2"]) if match["d2"] else first
        days = frozenset((first + i) % 7 for i in range((last - first) % 7 + 1))
        start_min, end_min = (
            int(match["h1"]) * 60 + int(match["m1"]),
            int(match["h2"]) * 60 + int(match["m2"]),
        )
        if start_min >= 1440 or end_min > 1440:
            raise ValidationError(f"time window {text!r}: hours run 00:00 to 24:00")
        return cls(days, dt.time(start_min // 60, start_min % 60), end_min)

    def contains(self, when: dt.datetime) -> bool:
        minute = when.hour * 60 + when.minute
        start = self.start.hour * 60 + self.start.minute
        if start < self.end_minutes:
            return when.weekday() in self.days and start <= minute < self.end_minutes
        # Overnight: the evening part on a listed day, the morning part on the day after one.
        return (when.weekday() in self.days and minute >= start) or (
            (when.weekday() - 1) % 7 in self.days and minute < self.end_minutes
        )


@dataclass(frozen=True)
class SourceSettings:
    parallel: int = 1
    pause_s: float = 0.0
    windows: tuple[str, ...] = ()
    retrieve: str = "move"
    inspect_get: bool = True
    query_levels: tuple[str, ...] = QUERY_LEVELS
    series_lookback_days: int = 120
    max_attempts: int = 0  # 0: settings.HARVEST_MAX_ATTEMPTS
    timeout_s: int = 0  # 0: settings.HARVEST_DIMSE_TIMEOUT_S
    move_destination: str = ""  # "": rtbank's own AE title
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, node: Node) -> SourceSettings:
        raw = dict((node.options or {}).get("harvest", {}))
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        values = {k: raw.pop(k) for k in list(raw) if k in known}
        for key in ("windows", "query_levels"):
            if key in values:
                values[key] = tuple(values[key])
        made = cls(**values, extra=raw)
        made.validate()
        return made

    def validate(self) -> None:
        if not 1 <= int(self.parallel) <= 16:
            raise ValidationError("parallel associations must be 1 to 16")
        if self.pause_s < 0:
            raise ValidationError("the pause between operations cannot be negative")
        if self.retrieve not in ("move", "get"):
            raise ValidationError("retrieve must be 'move' (to rtbank's receiver) or 'get'")
        bad = [lvl for lvl in self.query_levels if lvl not in QUERY_LEVELS]
        if bad or not self.query_levels:
            raise ValidationError(f"query levels are a non-empty list of {', '.join(QUERY_LEVELS)}")
        for text in self.windows:
            Window.parse(text)

    def as_options(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        data["windows"], data["query_levels"] = list(self.windows), list(self.query_levels)
        return data

    @property
    def attempts(self) -> int:
        return int(self.max_attempts or settings.HARVEST_MAX_ATTEMPTS)

    @property
    def timeout(self) -> int:
        return int(self.timeout_s or settings.HARVEST_DIMSE_TIMEOUT_S)

    @property
    def destination(self) -> str:
        return self.move_destination or settings.AE_TITLE

    def allowed_now(self, now: dt.datetime | None = None) -> bool:
        if not self.windows:
            return True
        local = timezone.localtime(now or timezone.now())
        return any(Window.parse(w).contains(local) for w in self.windows)

    def next_allowed(self, now: dt.datetime | None = None) -> dt.datetime:
        """The next minute at which a window is open (at most a week ahead)."""
        t = timezone.localtime(now or timezone.now()).replace(second=0, microsecond=0)
        for _ in range(7 * 24 * 60):
            t += dt.timedelta(minutes=1)
            if self.allowed_now(t):
                return t
        raise HarvestError("the source's time windows never open")


def harvest_node(name: str) -> Node:
    node = Node.objects.filter(name=name).select_related("institution").first()
    if node is None:
        raise HarvestError(f"no node named {name!r} (add it with `rtbank node add … --roles harvest`)")
    if not node.has_role(NodeRole.HARVEST):
        raise HarvestError(f"node {name!r} is not a harvest source (give it the 'harvest' role)")
    return node


def configure(node: Node, changes: dict[str, Any]) -> SourceSettings:
    """Change a source's politeness settings (validated before anything is saved)."""
    made_now = SourceSettings.of(node)
    current = {**made_now.extra, **made_now.as_options()}
    current.update({k: v for k, v in changes.items() if v is not None})
    made = SourceSettings.of(Node(options={"harvest": current}))
    options = dict(node.options or {})
    options["harvest"] = {**made.extra, **made.as_options()}
    Node.objects.filter(pk=node.pk).update(options=options)
    node.options = options
    return made


# --- parallel associations and pauses ----------------------------------------------------------------
def acquire_slot(node: Node, holder: str, parallel: int, lease_s: float) -> int | None:
    """Take a free association slot of ``node`` (free, or its holder's time ran out); ``None`` if all busy."""
    now = timezone.now()
    for slot in range(parallel):
        try:
            with transaction.atomic():
                SourceSlot.objects.get_or_create(node=node, slot=slot)
        except IntegrityError:
            pass
    dead = [
        h
        for h in SourceSlot.objects.filter(node=node).exclude(holder="").values_list("holder", flat=True)
        if holder_dead(h)
    ]
    free = (Q(holder="") | Q(until__lt=now) | Q(holder__in=dead)) & (
        Q(free_at__isnull=True) | Q(free_at__lte=now)
    )
    for slot in range(parallel):
        taken = SourceSlot.objects.filter(free, node=node, slot=slot).update(
            holder=holder, until=now + dt.timedelta(seconds=lease_s)
        )
        if taken:
            return slot
    return None


def holder_dead(holder: str) -> bool:
    """A holder is ``host:pid:…`` (a worker id); on this host a missing pid means it died (kill -9)."""
    parts = holder.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError):
        return False
    return False


def renew_slot(node: Node, slot: int, holder: str, lease_s: float) -> None:
    SourceSlot.objects.filter(node=node, slot=slot, holder=holder).update(
        until=timezone.now() + dt.timedelta(seconds=lease_s)
    )


def release_slot(node: Node, slot: int, holder: str, pause_s: float) -> None:
    SourceSlot.objects.filter(node=node, slot=slot, holder=holder).update(
        holder="", until=None, free_at=timezone.now() + dt.timedelta(seconds=pause_s)
    )


def slot_free_in(node: Node) -> float:
    """Seconds until some slot of ``node`` may be free (for deferring a step)."""
    now = timezone.now()
    times = [
        t for t in SourceSlot.objects.filter(node=node).values_list("free_at", flat=True) if t and t > now
    ]
    return max(0.05, min((t - now).total_seconds() for t in times)) if times else 0.1

from __future__ import annotations

from typing import Any

from rtbank.commands import RtbankCommand
from rtbank.eventlog.models import Event


class Command(RtbankCommand):
    help = "Show the latest rows of the event log."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--limit", type=int, default=50)
        parser.add_argument("--action", default=None)

    def handle(self, *args: Any, limit: int, action: str | None, **options: Any) -> None:
        rows = Event.objects.all()
        if action:
            rows = rows.filter(action=action)
        for e in reversed(list(rows[:limit])):
            self.stdout.write(
                f"{e.time:%Y-%m-%d %H:%M:%S} {e.service:<9} {e.action:<22} {e.outcome:<8} "
                f"{e.object_type}:{e.object_id} {e.actor} {e.message}"
            )

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command

from rtbank.commands import RtbankCommand
from rtbank.work.registry import KINDS
from rtbank.work.worker import Worker


class Command(RtbankCommand):
    help = "Run a worker: ingest, analysis, rules, calculations and scheduled jobs from the work rows."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--kinds",
            default="",
            help=f"comma-separated work kinds (default all: {', '.join(sorted(KINDS))})",
        )
        parser.add_argument("--until-idle", action="store_true", help="exit when no work is left")

    def handle(self, *args: Any, kinds: str, until_idle: bool, **options: Any) -> None:
        call_command("check", fail_level="ERROR")
        selected = [k.strip() for k in kinds.split(",") if k.strip()] or None
        unknown = set(selected or ()) - set(KINDS)
        if unknown:
            self.stderr.write(f"rtbank worker: unknown work kind(s): {', '.join(sorted(unknown))}")
            raise SystemExit(2)
        worker = Worker(selected, poll_s=settings.WORK_POLL_S)
        worker.install_signal_handlers()
        worker.run(until_idle=until_idle)

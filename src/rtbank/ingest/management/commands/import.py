from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from django.utils import timezone
from rich.progress import Progress, SpinnerColumn, TextColumn

from rtbank.commands import Failure, RtbankCommand
from rtbank.eventlog.models import Outcome
from rtbank.eventlog.services import log_event
from rtbank.ingest.importer import ImportRefused, import_paths
from rtbank.institutions.models import Institution
from rtbank.work.models import WorkerHeartbeat
from rtbank.work.worker import run_until_idle


class Command(RtbankCommand):
    help = "Import DICOM files, folders or zip archives into the same pipeline as DICOM C-STORE."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--institution", default=None, help="code of the institution the data comes from")
        parser.add_argument(
            "--wait",
            dest="wait",
            action="store_true",
            default=None,
            help="index now in this process (default when no worker is running)",
        )
        parser.add_argument(
            "--no-wait", dest="wait", action="store_false", help="leave indexing to the workers"
        )

    def handle(
        self, *args: Any, paths: list[Path], institution: str | None, wait: bool | None, **options: Any
    ) -> None:
        if institution and not Institution.objects.filter(code=institution).exists():
            raise Failure(
                f"no institution with code {institution!r} (add it with `rtbank institution add`)", code=2
            )
        info = {"institution": institution or "", "actor": self.actor}
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as bar:
            task = bar.add_task("reading", total=None)
            try:
                report = import_paths(
                    paths, info, lambda r: bar.update(task, description=f"{r.stored} stored")
                )
            except ImportRefused as exc:
                log_event(
                    "cli", "import_refused", actor=self.actor, outcome=Outcome.REJECTED, message=str(exc)
                )
                raise Failure(str(exc), code=2) from None
        for name, reason in report.rejected:
            self.stderr.write(f"refused {name}: {reason}")
        log_event(
            "cli",
            "import",
            actor=self.actor,
            outcome=Outcome.OK if report.ok else Outcome.WARNING,
            object_type="source",
            object_id=report.source_id,
            message=f"{report.stored} stored, {len(report.rejected)} refused, {report.not_dicom} not DICOM",
        )
        self.stdout.write(
            f"{report.stored} objects stored in the spool, {len(report.rejected)} refused, "
            f"{report.not_dicom} files were not DICOM"
        )
        if wait is None:
            recent = timezone.now() - datetime.timedelta(seconds=30)
            wait = not WorkerHeartbeat.objects.filter(last_seen__gte=recent).exists()
        if wait:
            run_until_idle()
            self.stdout.write("indexed")
        if report.rejected:
            raise Failure(f"{len(report.rejected)} file(s) refused", code=1)

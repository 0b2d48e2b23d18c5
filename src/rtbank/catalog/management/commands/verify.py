from __future__ import annotations

from typing import Any

from rich.progress import Progress

from rtbank.catalog.models import Instance
from rtbank.catalog.services import verify
from rtbank.commands import Failure, RtbankCommand
from rtbank.eventlog.models import Outcome
from rtbank.eventlog.services import log_event


class Command(RtbankCommand):
    help = "Re-check every stored file against the SHA-256 recorded when it was stored."

    def handle(self, *args: Any, **options: Any) -> None:
        total = Instance.objects.count()
        with Progress(transient=True) as bar:
            task = bar.add_task("verifying", total=total)
            report = verify(lambda n: bar.update(task, completed=n))
        outcome = Outcome.OK if report.ok else Outcome.ERROR
        log_event(
            "cli",
            "verify",
            actor=self.actor,
            outcome=outcome,
            message=f"{report.checked} checked, {len(report.missing)} missing, {len(report.corrupt)} corrupt",
            details={"missing": report.missing[:1000], "corrupt": report.corrupt[:1000]},
        )
        self.stdout.write(
            f"{report.checked} files checked: {len(report.missing)} missing, {len(report.corrupt)} corrupt"
        )
        for pk in report.missing[:20]:
            self.stdout.write(f"  missing: instance #{pk}")
        for pk in report.corrupt[:20]:
            self.stdout.write(f"  corrupt: instance #{pk}")
        if not report.ok:
            raise Failure("stored files do not match the catalog (see the event log)", code=3)

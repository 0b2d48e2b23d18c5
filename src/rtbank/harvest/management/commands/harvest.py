from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections
from rich.console import Console
from rich.live import Live
from rich.table import Table

from rtbank.commands import Failure, RtbankCommand
from rtbank.harvest import jobs, report, services
from rtbank.harvest.models import HarvestRun, RunState
from rtbank.harvest.sources import HarvestError, SourceSettings
from rtbank.services import die_with_parent
from rtbank.work.worker import Worker


class Command(RtbankCommand):
    help = (
        "Harvest treated plans from a record-and-verify system: `harvest SOURCE (--from DATE --to DATE | "
        "--patients FILE) [--objects-from SRC,…] [--project P] [--detach]`, or `harvest --resume RUN`."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("source", nargs="?", help="harvest source node (role harvest)")
        parser.add_argument(
            "--from", dest="date_from", type=dt.date.fromisoformat, help="first treatment day (YYYY-MM-DD)"
        )
        parser.add_argument(
            "--to", dest="date_to", type=dt.date.fromisoformat, help="last treatment day (YYYY-MM-DD)"
        )
        parser.add_argument("--patients", type=Path, help="file with one patient ID per line")
        parser.add_argument(
            "--objects-from", default="", help="nodes (or 'catalog') holding plans, doses, images"
        )
        parser.add_argument("--project", help="assign each treated plan bundle to this project")
        parser.add_argument("--detach", action="store_true", help="only enqueue the run; the workers do it")
        parser.add_argument("--resume", type=int, metavar="RUN", help="go on with an unfinished run")
        parser.add_argument(
            "--retry-failed", action="store_true", help="with --resume: try failed steps again"
        )
        parser.add_argument("--no-progress", action="store_true", help="no live progress display")

    def handle(self, *args: Any, **o: Any) -> None:
        try:
            run = self._run(o)
        except HarvestError as exc:
            raise Failure(str(exc), code=2) from None
        if o["detach"]:
            self.stdout.write(
                f"harvest run #{run.pk} enqueued; the workers collect it (rtbank harvest-report {run.pk})"
            )
            return
        self._check_receiver(run)
        interrupted = self._work(run, live=not o["no_progress"])
        run.refresh_from_db()
        rep = report.build(run)
        csv_path, html_path = report.write_files(rep)
        st = rep.stats
        self.stdout.write(
            f"harvest run #{run.pk}: {run.state}; {st['plans_collected']}/{st['plans_referenced']} plans "
            f"collected ({st['success_rate']} %), {st['plans_absent']} absent at the source"
        )
        for row in rep.plans:
            for uid, reason in row.missing:
                self.stdout.write(f"  missing {uid} of plan {row.plan_uid}: {reason}")
        self.stdout.write(f"manifest: {html_path} and {csv_path}")
        if interrupted:
            raise Failure(f"interrupted; resume with `rtbank harvest --resume {run.pk}`", code=3)
        if run.state != RunState.COMPLETE:
            raise Failure(f"run #{run.pk} is {run.state}: see the manifest", code=1)

    def _run(self, o: dict[str, Any]) -> HarvestRun:
        if o["resume"]:
            run = HarvestRun.objects.select_related("source").filter(pk=o["resume"]).first()
            if run is None:
                raise HarvestError(f"no harvest run #{o['resume']}")
            services.resume(run, actor=self.actor, retry_failed=o["retry_failed"])
            return run
        if not o["source"]:
            raise HarvestError("name the harvest source (or --resume RUN)")
        patients = None
        if o["patients"]:
            try:
                lines = o["patients"].read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise HarvestError(f"cannot read {o['patients']}: {exc.strerror}") from None
            patients = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        objects_from = [n.strip() for n in o["objects_from"].split(",") if n.strip()]
        return services.start_run(
            o["source"],
            actor=self.actor,
            date_from=o["date_from"],
            date_to=o["date_to"],
            patients=patients,
            objects_from=objects_from,
            project=o["project"],
        )

    def _check_receiver(self, run: HarvestRun) -> None:
        nodes = [run.source]
        if any(SourceSettings.of(n).retrieve == "move" for n in nodes):
            try:
                socket.create_connection(("127.0.0.1", settings.DICOM_PORT), timeout=3).close()
            except OSError:
                self.stderr.write(
                    f"warning: no DICOM receiver answers on port {settings.DICOM_PORT}; C-MOVE "
                    f"needs one (`rtbank receive` or `rtbank up`)"
                )

    def _work(self, run: HarvestRun, live: bool) -> bool:
        """Process the run's rows in this process until it is finished, filing what arrives meanwhile.

        This process walks (finding, steps, verification) and waits on the source during each C-MOVE, while
        a child worker process files what has arrived (ingest rows): walking and filing overlap, each on a
        core of its own (a thread would share this interpreter's lock with the walk). The child dies with
        this process (PR_SET_PDEATHSIG) and a stopped filer loses nothing: its rows go back to the queue.
        """
        worker = Worker(list(jobs.KINDS), poll_s=settings.HARVEST_POLL_S)
        filer = subprocess.Popen(
            [sys.executable, "-m", "rtbank.cli", "worker", "--kinds", "ingest"],
            preexec_fn=die_with_parent,  # only a prctl call between fork and exec
            stdout=subprocess.DEVNULL,
        )
        finished = threading.Event()

        def watch() -> None:
            console = Console(stderr=True)
            started = time.monotonic()
            shown = live and console.is_terminal
            try:
                with (
                    Live(console=console, refresh_per_second=2, transient=True) if shown else _Null() as view
                ):
                    while not finished.wait(0.5 if shown else 0.2):
                        close_old_connections()
                        if shown:
                            p = services.progress(run)
                            view.update(_table(run, p, time.monotonic() - started))
                            state = p.state
                        else:
                            state = HarvestRun.objects.filter(pk=run.pk).values_list("state", flat=True)[0]
                        if state != RunState.RUNNING:
                            worker.stop.set()
                            return
            finally:
                connections.close_all()

        threads = [threading.Thread(target=watch, name="harvest-progress", daemon=True)]
        for thread in threads:
            thread.start()
        try:
            worker.run()
        except KeyboardInterrupt:
            worker.stop.set()
            finished.set()
            _stop(filer)
            return True
        finished.set()
        _stop(filer)
        for thread in threads:
            thread.join(10)
        return False


def _stop(filer: subprocess.Popen[bytes]) -> None:
    """Stop the filing worker: it finishes its batch (or hands it back after its grace period)."""
    if filer.poll() is None:
        filer.terminate()
        try:
            filer.wait(60)
        except subprocess.TimeoutExpired:
            filer.kill()
            filer.wait()


class _Null:
    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, *args: Any) -> None:
        return None


def _table(run: HarvestRun, p: services.Progress, elapsed: float) -> Table:
    rate = p.objects / elapsed if elapsed > 0 else 0.0
    done = p.plans_done + p.plans_failed + p.plans_absent
    eta = (elapsed / done * p.remaining) if done else None
    table = Table(title=f"harvest run #{run.pk} from {run.source.name}", show_header=True)
    for col in ("plans done", "failed", "absent", "remaining", "objects", "MB", "objects/s", "ETA"):
        table.add_column(col, justify="right")
    table.add_row(
        str(p.plans_done),
        str(p.plans_failed),
        str(p.plans_absent),
        str(p.remaining),
        str(p.objects),
        f"{p.bytes / 1e6:.1f}",
        f"{rate:.1f}",
        f"{eta:.0f} s" if eta is not None else "…",
    )
    return table

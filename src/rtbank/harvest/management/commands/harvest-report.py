from __future__ import annotations

import json
from typing import Any

from rtbank.commands import Failure, RtbankCommand
from rtbank.harvest import report
from rtbank.harvest.models import HarvestRun


class Command(RtbankCommand):
    help = (
        "The manifest of a harvest run: `harvest-report RUN [--csv|--html|--json]`; "
        "exit 0 when nothing failed."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("run", type=int)
        fmt = parser.add_mutually_exclusive_group()
        fmt.add_argument("--csv", action="store_true", help="the CSV manifest on standard output")
        fmt.add_argument("--html", action="store_true", help="the HTML manifest on standard output")
        fmt.add_argument("--json", action="store_true", help="plans and statistics as JSON")

    def handle(self, *args: Any, run: int, **o: Any) -> None:
        found = HarvestRun.objects.select_related("source").filter(pk=run).first()
        if found is None:
            raise Failure(f"no harvest run #{run}", code=2)
        rep = report.build(found)
        if o["csv"]:
            self.stdout.write(report.to_csv(rep), ending="")
        elif o["html"]:
            self.stdout.write(report.to_html(rep), ending="")
        elif o["json"]:
            plans = [
                {
                    **p.__dict__,
                    "missing": [list(m) for m in p.missing],
                    "missing_at_source": [list(m) for m in p.missing_at_source],
                }
                for p in rep.plans
            ]
            self.stdout.write(
                json.dumps(
                    {
                        "run": found.pk,
                        "state": found.state,
                        "record_level": found.record_level,
                        "stats": rep.stats,
                        "plans": plans,
                    },
                    indent=1,
                    default=str,
                )
            )
        else:
            csv_path, html_path = report.write_files(rep)
            st = rep.stats
            self.stdout.write(
                f"run #{found.pk} ({found.state}): {st['plans_collected']}/{st['plans_referenced']} plans "
                f"collected, {st['plans_absent']} absent at the source; {html_path}, {csv_path}"
            )
        if found.state == "running":
            raise Failure(f"run #{found.pk} is still running", code=4)
        if not rep.ok:
            raise Failure(f"run #{found.pk} has objects that failed after retries", code=1)

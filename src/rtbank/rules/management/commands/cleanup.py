from __future__ import annotations

import json
from typing import Any

from rtbank.commands import RtbankCommand
from rtbank.rules.cleanup import run_cleanup


class Command(RtbankCommand):
    help = (
        "Run the cleanup service once: announce, delete (into the trash) and purge unretained old data; "
        "--dry-run only reports."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="report what a real run would do; change nothing"
        )
        parser.add_argument(
            "--json", action="store_true", help="the report as JSON (with the SOP Instance UIDs)"
        )

    def handle(self, *args: Any, dry_run: bool, json: bool, **options: Any) -> None:
        plan, result = run_cleanup(dry_run=dry_run, actor=self.actor)
        report = plan.report(with_uids=True)
        if json:
            out = {"dry_run": dry_run, "plan": report}
            if not dry_run:
                out["result"] = result
            self.stdout.write(_dumps(out))
            return
        totals = report["totals"]
        verb = "would" if dry_run else "did"
        self.stdout.write(
            f"rtbank cleanup{' (dry run)' if dry_run else ''}: data idle since before {plan.cutoff[:10]}"
        )
        self.stdout.write(f"  announce: {totals['announce_patients']} patient(s) (data managers are told)")
        self.stdout.write(
            f"  delete:   {totals['delete_patients']} patient(s), {totals['delete_objects']} object(s), "
            f"{totals['delete_bytes'] / 1e6:.1f} MB into the trash"
        )
        self.stdout.write(f"  cancel:   {len(plan.cancel)} notice(s) (data retained now, or new objects)")
        self.stdout.write(f"  purge:    {plan.purge} trashed file(s) past the grace period")
        if not dry_run:
            self.stdout.write(
                f"  {verb}: announced {result['announced']}, deleted {len(result['deleted'])} object(s), "
                f"purged {result['purged']}"
            )
            for skipped in result["skipped"]:
                self.stdout.write(f"  kept patient #{skipped['patient']}: {skipped['reason']}")


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str)

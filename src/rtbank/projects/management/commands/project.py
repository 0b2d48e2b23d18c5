from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from rtbank.commands import Failure, RtbankCommand
from rtbank.projects.models import Project
from rtbank.projects.services import add_project


def parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Failure(f"{value!r} is not a date (YYYY-MM-DD)", code=2) from None


class Command(RtbankCommand):
    help = (
        "Projects: `project add CODE --name NAME [--institutions A,B] [--renew-by DATE] [--ae-title AE]`, "
        "`project list`."
    )

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add a project")
        add.add_argument("code")
        add.add_argument("--name", required=True)
        add.add_argument(
            "--institutions", default="", help="participating institution codes, comma-separated"
        )
        add.add_argument("--renew-by", default=None, help="YYYY-MM-DD (default: one year from today)")
        add.add_argument("--ae-title", default="", help="an AE title centres may send to for this project")
        add.add_argument("--pi", default="", help="principal investigator")
        add.add_argument("--description", default="")
        add.add_argument("--subject-prefix", default="")
        sub.add_parser("list", help="list projects")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "list":
            for p in Project.objects.prefetch_related("institutions"):
                insts = ",".join(i.code for i in p.institutions.all())
                self.stdout.write(f"{p.code:<12} {p.status:<10} renew by {p.renew_by}  {insts:<20} {p.name}")
            return
        renew_by = (
            parse_date(options["renew_by"])
            if options["renew_by"]
            else timezone.localdate() + dt.timedelta(days=365)
        )
        institutions = [c.strip() for c in options["institutions"].split(",") if c.strip()]
        project = add_project(
            options["code"],
            name=options["name"],
            renew_by=renew_by,
            institutions=institutions,
            ae_title=options["ae_title"],
            principal_investigator=options["pi"],
            description=options["description"],
            subject_prefix=options["subject_prefix"],
            actor=self.actor,
        )
        self.stdout.write(f"added project {project.code} (renew by {project.renew_by})")

from __future__ import annotations

from typing import Any

from rtbank.commands import RtbankCommand
from rtbank.institutions import services
from rtbank.institutions.models import Institution


class Command(RtbankCommand):
    help = "Participating institutions: `institution add CODE --name NAME`, `institution list`."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add an institution")
        add.add_argument("code")
        add.add_argument("--name", required=True)
        sub.add_parser("list", help="list institutions")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "add":
            institution = services.add_institution(options["code"], options["name"], actor=self.actor)
            self.stdout.write(f"added institution {institution.code}")
            return
        for institution in Institution.objects.all():
            self.stdout.write(f"{institution.code:<12} {institution.name}")

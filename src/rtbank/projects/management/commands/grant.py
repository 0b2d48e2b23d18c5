from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from rtbank.commands import Failure, RtbankCommand
from rtbank.projects.management.commands.project import parse_date
from rtbank.projects.models import ROLE_BUNDLES, Permission, Project
from rtbank.projects.services import grant


class Command(RtbankCommand):
    help = (
        "Give (or renew) a user's permissions on a project: "
        "`grant USERNAME PROJECT --permissions P,… --until DATE`."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("project")
        parser.add_argument(
            "--permissions",
            required=True,
            help=f"comma-separated: {', '.join(Permission.values)}; or a role: {', '.join(ROLE_BUNDLES)}",
        )
        parser.add_argument("--until", required=True, help="expiry date YYYY-MM-DD (inclusive)")

    def handle(
        self, *args: Any, username: str, project: str, permissions: str, until: str, **options: Any
    ) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise Failure(f"no user {username!r}", code=2)
        proj = Project.objects.filter(code=project).first()
        if proj is None:
            raise Failure(f"no project {project!r}", code=2)
        names: list[str] = []
        for part in (p.strip() for p in permissions.split(",") if p.strip()):
            names += ROLE_BUNDLES.get(part, [part])
        grants = grant(user, proj, names, parse_date(until), actor=self.actor)
        self.stdout.write(
            f"{username} holds {', '.join(g.permission for g in grants)} on {proj.code} until {until}"
        )

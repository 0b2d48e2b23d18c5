from __future__ import annotations

import sys
from typing import Any

from rtbank.commands import RtbankCommand
from rtbank.projects.services import add_user


class Command(RtbankCommand):
    help = (
        "People: `user add USERNAME [--institution CODE] [--role data_manager|uploader] [--site-admin] "
        "[--password-stdin]`."
    )

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add a user")
        add.add_argument("username")
        add.add_argument("--email", default="")
        add.add_argument("--institution", default=None, help="institution code (site staff: none)")
        add.add_argument(
            "--role",
            action="append",
            default=[],
            choices=["data_manager", "uploader"],
            help="institution role (repeatable)",
        )
        add.add_argument("--site-admin", action="store_true")
        add.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = sys.stdin.readline().rstrip("\n") if options["password_stdin"] else None
        user = add_user(
            options["username"],
            password=password,
            email=options["email"],
            institution=options["institution"],
            roles=options["role"],
            site_admin=options["site_admin"],
            actor=self.actor,
        )
        self.stdout.write(
            f"added user {user.username}"
            + ("" if password else " (no password: set one with `rtbank changepassword`)")
        )

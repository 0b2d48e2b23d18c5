from __future__ import annotations

from typing import Any

from rtbank.commands import RtbankCommand
from rtbank.institutions import services
from rtbank.institutions.models import Node


class Command(RtbankCommand):
    help = (
        "Known DICOM nodes: `node add NAME --ae AE --host HOST --port PORT [--institution I] "
        "[--roles send,dest,harvest]`, `node list`, `node remove NAME`."
    )

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="register a node")
        add.add_argument("name")
        add.add_argument("--ae", required=True, help="AE title")
        add.add_argument(
            "--host", required=True, help="IP address or CIDR the node connects from / listens on"
        )
        add.add_argument("--port", type=int, required=True)
        add.add_argument("--institution", default=None, help="institution code")
        add.add_argument(
            "--roles", default="send", help="comma-separated: send, dest, harvest (default send)"
        )
        sub.add_parser("list", help="list nodes")
        remove = sub.add_parser("remove", help="remove a node")
        remove.add_argument("name")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "add":
            roles = [r.strip() for r in options["roles"].split(",") if r.strip()]
            node = services.add_node(
                options["name"],
                ae_title=options["ae"],
                host=options["host"],
                port=options["port"],
                institution_code=options["institution"],
                roles=roles,
                actor=self.actor,
            )
            self.stdout.write(f"added node {node}")
        elif action == "remove":
            services.remove_node(options["name"], actor=self.actor)
            self.stdout.write(f"removed node {options['name']}")
        else:
            for node in Node.objects.select_related("institution"):
                inst = node.institution.code if node.institution else "-"
                self.stdout.write(
                    f"{node.name:<16} {node.ae_title:<16} {node.host}:{node.port:<6} "
                    f"{inst:<10} {','.join(node.roles)}"
                )

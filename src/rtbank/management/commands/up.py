from __future__ import annotations

from typing import Any

from django.core.management import call_command

from rtbank.commands import RtbankCommand
from rtbank.services import Supervisor, banner, ensure_admin


class Command(RtbankCommand):
    help = (
        "Migrate, then run web + DICOM receiver + worker together until Ctrl-C; prints URL, ports and login."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--receivers", type=int, default=1, help="receiver processes sharing the DICOM port"
        )
        parser.add_argument("--workers", type=int, default=1, help="worker processes")

    def handle(self, *args: Any, receivers: int, workers: int, **options: Any) -> None:
        call_command("check", fail_level="ERROR")
        login = ensure_admin()
        commands = {"receiver": ["receive", "--processes", str(receivers)], "web": ["web"]}
        for i in range(workers):
            commands[f"worker-{i + 1}"] = ["worker"]
        self.stdout.write(banner([(*login, "site admin")]))
        Supervisor(commands).run()

from __future__ import annotations

from typing import Any

from django.core.management import call_command

from rtbank.commands import RtbankCommand
from rtbank.ingest import scp


class Command(RtbankCommand):
    help = "Run the DICOM receiver (C-ECHO, C-STORE) on RTBANK_DICOM_PORT."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--processes", type=int, default=1, help="receiver processes sharing the port (SO_REUSEPORT)"
        )
        parser.add_argument("--port", type=int, default=None, help="TCP port (default RTBANK_DICOM_PORT)")

    def handle(self, *args: Any, processes: int, port: int | None, **options: Any) -> None:
        call_command("check", fail_level="ERROR")
        scp.serve(processes=processes, port=port)

from __future__ import annotations

import socket
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command

from rtbank import demo
from rtbank.commands import Failure, RtbankCommand
from rtbank.services import Supervisor, banner


class Command(RtbankCommand):
    help = "`up` with a generated multi-centre archive sent over DICOM, demo users and projects (make run)."

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("check", fail_level="ERROR")
        self.stdout.write("preparing the demo archive (generated once, then reused) …")
        manifest = demo.ensure_archive()
        logins = demo.ensure_setup(manifest)
        supervisor = Supervisor({"receiver": ["receive"], "web": ["web"], "worker": ["worker"]})
        supervisor.start_all()
        if not demo.is_loaded():
            _wait_for_port(settings.DICOM_PORT)
            self.stdout.write(f"sending {len(manifest['files'])} objects over DICOM from the demo centres …")
            started = time.monotonic()
            sent = demo.send_archive(manifest, settings.DICOM_PORT)
            demo.wait_until_indexed(len({f["sop_instance_uid"] for f in manifest["files"]}))
            demo.assign_demo_data(manifest)
            demo.mark_loaded()
            self.stdout.write(f"{sent} objects received and indexed in {time.monotonic() - started:.0f} s")
        self.stdout.write(banner(logins, "rtbank demo is running"))
        supervisor.watch()


def _wait_for_port(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise Failure("the DICOM receiver did not start")

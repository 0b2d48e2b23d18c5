"""Running rtbank as one box: the `up` and `demo` supervisors start the services as child processes."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from rtbank.fileio import write_durably

ADMIN_PASSWORD_FILE = "admin-password.txt"


def ensure_admin() -> tuple[str, str]:
    """Create the first site admin when there is none; return (username, where the password is)."""
    User = get_user_model()
    home = Path(settings.HOME)
    if User.objects.filter(is_superuser=True).exists():
        return "admin", f"see {home / ADMIN_PASSWORD_FILE} (or `rtbank changepassword admin`)"
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser("admin", "", password)
    write_durably(home / ADMIN_PASSWORD_FILE, f"admin {password}\n".encode())
    os.chmod(home / ADMIN_PASSWORD_FILE, 0o600)
    return "admin", password


class Supervisor:
    """Start child processes, restart the ones that die, stop them all on SIGINT/SIGTERM."""

    def __init__(self, commands: dict[str, list[str]]) -> None:
        self.commands = commands
        self.children: dict[str, subprocess.Popen] = {}
        self.stop = threading.Event()

    def start(self, name: str) -> None:
        self.children[name] = subprocess.Popen([sys.executable, "-m", "rtbank.cli", *self.commands[name]])

    def run(self) -> int:
        for name in self.commands:
            self.start(name)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        while not self.stop.wait(1.0):
            for name, child in list(self.children.items()):
                if child.poll() is not None:
                    print(f"rtbank: {name} exited with {child.returncode}; restarting it", file=sys.stderr)
                    self.start(name)
        for child in self.children.values():
            child.send_signal(signal.SIGTERM)
        for child in self.children.values():
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        return 0


def banner(login: tuple[str, str]) -> str:
    url = f"http://{settings.BIND_ADDRESS}:{settings.HTTP_PORT}/"
    return (
        f"\nrtbank is starting\n"
        f"  web:    {url}\n"
        f"  DICOM:  AE title {settings.AE_TITLE} on {settings.BIND_ADDRESS}:{settings.DICOM_PORT}\n"
        f"  login:  {login[0]} / {login[1]}\n"
        f"  data:   {settings.HOME}\n"
        f"Stop with Ctrl-C.\n"
    )

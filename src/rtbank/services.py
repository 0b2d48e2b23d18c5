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

ADMIN_PASSWORD_FILE = "admin-password.txt"  # noqa: S105 - a file name, not a secret


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
        self.children[name] = subprocess.Popen(
            [sys.executable, "-m", "rtbank.cli", *self.commands[name]], preexec_fn=die_with_parent
        )

    def run(self) -> int:
        self.start_all()
        return self.watch()

    def start_all(self) -> None:
        for name in self.commands:
            self.start(name)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())

    def watch(self) -> int:
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


def die_with_parent() -> None:
    """In the child: get SIGTERM when the supervisor dies, so no service outlives a killed `rtbank up`."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def banner(logins: list[tuple[str, str, str]], title: str = "rtbank is running") -> str:
    url = f"http://{settings.BIND_ADDRESS}:{settings.HTTP_PORT}/"
    lines = [
        f"\n{title}",
        f"  web:    {url}",
        f"  DICOM:  AE title {settings.AE_TITLE} on {settings.BIND_ADDRESS}:{settings.DICOM_PORT}",
        *(f"  login:  {user} / {password}   ({role})" for user, password, role in logins),
        f"  data:   {settings.HOME}",
        "Stop with Ctrl-C.\n",
    ]
    return "\n".join(lines)

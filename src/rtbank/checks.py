"""System checks: refuse bad configuration at start-up with a message that says what to fix."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from rtbank.config import INSECURE_DEFAULT_KEY


@register(Tags.security, deploy=False)
def check_secret_key(app_configs: object, **kwargs: object) -> list:
    if settings.SECRET_KEY == INSECURE_DEFAULT_KEY and not settings.DEBUG:
        return [
            Error(
                "rtbank is running with the built-in development secret key and DEBUG off.",
                hint="Set RTBANK_SECRET_KEY, or let `rtbank up` create RTBANK_HOME/secret.key.",
                id="rtbank.E001",
            )
        ]
    return []


@register()
def check_ae_title(app_configs: object, **kwargs: object) -> list:
    title = settings.AE_TITLE
    if not title.strip() or len(title) > 16 or "\\" in title or not title.isprintable():
        return [
            Error(
                f"RTBANK_AE_TITLE {title!r} is not a valid AE title.",
                hint="Use 1–16 printable characters without backslash.",
                id="rtbank.E002",
            )
        ]
    return []


@register()
def check_home(app_configs: object, **kwargs: object) -> list:
    errors = []
    for name in ("HOME", "SPOOL_DIR", "BLOB_DIR"):
        path = Path(getattr(settings, name))
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir() or not os.access(probe, os.W_OK):
            errors.append(
                Error(
                    f"{name} {path} is not writable by this user.",
                    hint="Set RTBANK_HOME to a writable folder (or fix its permissions).",
                    id="rtbank.E003",
                )
            )
    return errors


@register()
def check_ports(app_configs: object, **kwargs: object) -> list:
    problems = []
    for name in ("DICOM_PORT", "HTTP_PORT"):
        value = getattr(settings, name)
        if not 0 < value < 65536:
            problems.append(Error(f"RTBANK_{name} {value} is not a TCP port.", id="rtbank.E004"))
    if settings.ALLOW_ANY_CALLING_AE and settings.BIND_ADDRESS not in ("127.0.0.1", "::1", "localhost"):
        problems.append(
            Warning(
                "RTBANK_ALLOW_ANY_AE accepts DICOM from anyone while listening beyond loopback.",
                hint="Register nodes with `rtbank node add` and unset RTBANK_ALLOW_ANY_AE.",
                id="rtbank.W001",
            )
        )
    return problems

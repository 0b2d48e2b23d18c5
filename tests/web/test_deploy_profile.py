"""The production settings profile passes `rtbank check --deploy` without warnings; the demo stays on
loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def production_env(home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("RTBANK_") and k != "DJANGO_SETTINGS_MODULE"
    }
    env.update({"RTBANK_HOME": str(home), "RTBANK_SECRET_KEY": "production-like-secret-key-" + "x" * 40})
    return env


def test_check_deploy_reports_no_issues(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rtbank.cli", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_the_production_profile_is_strict_and_services_bind_to_loopback(tmp_path: Path) -> None:
    code = (
        "from django.conf import settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT, s.BIND_ADDRESS, "
        "'rtbank.web.middleware.ContentSecurityPolicyMiddleware' in s.MIDDLEWARE, "
        "'axes.middleware.AxesMiddleware' == s.MIDDLEWARE[-1])"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']="
            f"'rtbank.settings'; django.setup(); {code}",
        ],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.split() == [
        "False",
        "True",
        "True",
        "31536000",
        "True",
        "127.0.0.1",
        "True",
        "True",
    ], result.stdout + result.stderr

"""Reading ``RTBANK_*`` environment values: small, Django-free helpers used by :mod:`rtbank.settings`."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

# A key that only ever works with RTBANK_DEBUG: the system checks refuse it otherwise.
INSECURE_DEFAULT_KEY = "rtbank-insecure-development-key-do-not-use"
SECRET_KEY_FILE = "secret.key"  # noqa: S105 - a file name, not a secret


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"rtbank: {name} must be an integer, got {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def read_secret_key(home: Path) -> str:
    """The Django secret key: ``RTBANK_SECRET_KEY``, else ``HOME/secret.key``, else the insecure default."""
    key = os.environ.get("RTBANK_SECRET_KEY", "").strip()
    if key:
        return key
    try:
        return (home / SECRET_KEY_FILE).read_text().strip() or INSECURE_DEFAULT_KEY
    except OSError:
        return INSECURE_DEFAULT_KEY


def ensure_secret_key(home: Path) -> None:
    """Create ``HOME/secret.key`` (mode 0600) once, so a fresh install runs with DEBUG off."""
    if os.environ.get("RTBANK_SECRET_KEY"):
        return
    path = home / SECRET_KEY_FILE
    if path.exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(50))


def database_from_url(url: str, home: Path) -> dict:
    """Django ``DATABASES['default']`` from ``RTBANK_DATABASE_URL``; empty means embedded SQLite.

    Accepted forms: ``sqlite:///abs/path.db``, ``postgresql://user:pw@host:port/name`` (also ``postgres://``;
    ``?host=/run/socket/dir`` selects a Unix socket directory).
    """
    if not url:
        return _sqlite(home / "rtbank.sqlite3")
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return _sqlite(Path(unquote(parts.path)))
    if parts.scheme not in {"postgres", "postgresql"}:
        raise SystemExit(f"rtbank: RTBANK_DATABASE_URL scheme {parts.scheme!r} is not sqlite or postgresql")
    query = parse_qs(parts.query)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "rtbank",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": query.get("host", [parts.hostname or ""])[0],
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def _sqlite(path: Path) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            # IMMEDIATE transactions take the write lock up front, so two writers queue on the busy
            # timeout instead of failing with "database is locked" when a reader upgrades.
            "transaction_mode": "IMMEDIATE",
            "timeout": 60,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                "PRAGMA busy_timeout=60000;"
            ),
        },
    }

"""Is the database ready for a CLI verb?

On embedded SQLite there is one machine and one operator, so every verb applies pending migrations
itself. On PostgreSQL several services may start at once on several machines: they refuse to start
while migrations are pending and tell the operator to run ``rtbank migrate`` (no N-worker race).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor


def pending_migrations() -> list[str]:
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def ensure_home() -> None:
    """RTBANK_HOME (and the upload folder Django checks at start) must exist before anything else runs."""
    from django.conf import settings

    try:
        settings.HOME.mkdir(parents=True, exist_ok=True)
        upload_dir = getattr(settings, "FILE_UPLOAD_TEMP_DIR", None)
        if upload_dir:
            Path(upload_dir).mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # the system checks name the problem


@contextmanager
def _migration_lock(home: Path) -> Iterator[None]:
    with open(home / ".migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def prepare(verb: str) -> str | None:
    """Make the database usable for ``verb``; return a one-line problem when it cannot be."""
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    try:
        if engine.endswith("sqlite3"):
            if pending_migrations():
                # Several verbs started at once on a fresh home (e.g. `rtbank up` and a `rtbank import`)
                # must not both create the tables: one migrates, the others wait and find nothing to do.
                with _migration_lock(settings.HOME):
                    if pending_migrations():
                        call_command("migrate", interactive=False, verbosity=0)
            return None
        pending = pending_migrations()
    except Exception as exc:  # noqa: BLE001 - turn any database failure into one readable line
        return f"cannot use the database: {exc}".splitlines()[0]
    if pending:
        return f"{len(pending)} database migration(s) pending; run `rtbank migrate` first"
    return None

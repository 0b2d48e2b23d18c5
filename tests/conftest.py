"""Suite-wide rules.

* A test that touches the database (Django's ``db``/``transactional_db`` fixtures, the ``django_db``
  marker, or an rtbank service started as a process) is marked ``db``: the harness runs those again on
  PostgreSQL.
* With ``CI=true`` a skipped test fails the run: a missing dcmtk or PostgreSQL must not look green.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
ARTIFACTS = ROOT / ".test-artifacts"
_DB_FIXTURES = {"db", "transactional_db", "django_db_setup", "rtbank_env", "open_rtbank_env"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        uses_db = bool(_DB_FIXTURES & set(getattr(item, "fixturenames", ()))) or item.get_closest_marker(
            "django_db"
        )
        if uses_db:
            item.add_marker(pytest.mark.db)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI", "").lower() != "true":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        reporter.write_line(f"CI=true: {skipped} skipped test(s) count as failures", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def artifacts_dir(request: pytest.FixtureRequest) -> Path:
    """A folder kept after the run (screenshots, logs) for this test."""
    path = ARTIFACTS / request.node.name.replace("/", "_")[:120]
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def test_data() -> Path:
    return DATA

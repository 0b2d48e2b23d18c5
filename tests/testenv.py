"""Loaded by pytest before Django (``-p tests.testenv``): the environment every test runs in.

Settings read ``RTBANK_*`` at import, so the test home and database must be in the environment before
pytest-django imports them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

_home = tempfile.mkdtemp(prefix="rtbank-test-home-")
atexit.register(shutil.rmtree, _home, ignore_errors=True)
os.environ["RTBANK_HOME"] = _home
os.environ.setdefault("RTBANK_SECRET_KEY", "rtbank-test-secret-key-not-for-production-0123456789")
os.environ.setdefault("RTBANK_INSECURE_HTTP", "1")
os.environ["RTBANK_SPOOL_RESERVE_MB"] = os.environ.get("RTBANK_TEST_RESERVE_MB", "16")
if os.environ.get("RTBANK_TEST_DB") == "postgresql":
    os.environ["RTBANK_DATABASE_URL"] = os.environ["RTBANK_TEST_PG_URL"]
else:
    os.environ.pop("RTBANK_DATABASE_URL", None)

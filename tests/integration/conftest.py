"""Fixtures that start real rtbank processes (and dcmtk tools) for black-box tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.rtbank_env import RtbankEnv

pytestmark = pytest.mark.integration


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)} (Debian packages; .ci/run installs them)")


@pytest.fixture
def rtbank_env(tmp_path: Path) -> Iterator[RtbankEnv]:
    """A fresh rtbank home and database. Processes started from it are stopped at the end."""
    env = RtbankEnv(tmp_path / "home")
    try:
        yield env
    finally:
        env.close()


@pytest.fixture
def open_rtbank_env(tmp_path: Path) -> Iterator[RtbankEnv]:
    """Like rtbank_env, but accepting any calling AE title (demo mode), for tests about data, not access."""
    env = RtbankEnv(tmp_path / "home", {"RTBANK_ALLOW_ANY_AE": "1"})
    try:
        yield env
    finally:
        env.close()

from __future__ import annotations

import pytest

from tests.projects.world import World, build_world


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    """Password hashing is deliberately slow; the tests create a dozen people each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(tmp_path) -> World:
    """Projects A, B, S with real data and the nine roles (see :mod:`tests.projects.world`), no export
    jobs."""
    return build_world(tmp_path, with_jobs=False, other_stages=False)

"""Fixtures of the audit tests: the synthetic cases (written once per session) and a fresh world per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audits.support import AuditWorld, Case, build_world, shared_cases


@pytest.fixture(scope="session")
def cases() -> list[Case]:
    return shared_cases()


@pytest.fixture
def world(db: None, cases: list[Case]) -> AuditWorld:
    return build_world(cases)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    return tmp_path

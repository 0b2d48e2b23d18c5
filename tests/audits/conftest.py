"""Fixtures of the audit tests: the synthetic cases (written once per session) and a fresh world per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audits.support import AuditWorld, Case, build_world, synth_cases


@pytest.fixture(scope="session")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    return synth_cases(tmp_path_factory.mktemp("audit-synth"))


@pytest.fixture
def world(db: None, cases: list[Case]) -> AuditWorld:
    return build_world(cases)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    return tmp_path

"""The command line contract: --help everywhere, stats --json format, system checks that refuse bad config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

RTBANK = [sys.executable, "-m", "rtbank.cli"]


def run(
    *args: str, env: dict[str, str] | None = None, home: Path | None = None
) -> subprocess.CompletedProcess:
    full = {**os.environ, **(env or {})}
    if home is not None:
        full["RTBANK_HOME"] = str(home)
    full.pop("RTBANK_DATABASE_URL", None) if home is not None else None
    return subprocess.run([*RTBANK, *args], capture_output=True, text=True, env=full, timeout=120)


def test_every_rtbank_verb_has_help(tmp_path: Path) -> None:
    listing = run("--help", home=tmp_path)
    assert listing.returncode == 0
    verbs = [line.split()[0] for line in listing.stdout.splitlines() if line.startswith("  ")]
    assert {
        "up",
        "demo",
        "receive",
        "worker",
        "web",
        "import",
        "stats",
        "institution",
        "node",
        "export",
        "verify",
        "synth",
        "dvh",
        "anonymize",
        "user",
        "project",
        "grant",
        "assign",
    } <= set(verbs)
    # One real process per verb, four at a time (each spends most of its second importing Django).
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(
            zip(verbs, pool.map(lambda verb: run(verb, "--help", home=tmp_path), verbs), strict=True)
        )
    for verb, result in results.items():
        assert result.returncode == 0, f"rtbank {verb} --help: {result.stderr[-300:]}"
        assert "usage" in result.stdout.lower()


@pytest.mark.db
def test_stats_json_follows_the_contract(tmp_path: Path) -> None:
    result = run("stats", "--json", home=tmp_path)
    data = json.loads(result.stdout)
    assert set(data) >= {"patients", "studies", "series", "instances", "by_modality", "rt", "work"}
    assert set(data["rt"]) == {"plans", "structure_sets", "doses", "records", "registrations"}
    assert set(data["work"]) == {"pending", "in_progress", "failed", "by_kind"}


@pytest.mark.parametrize(
    "env,words",
    [
        ({"RTBANK_AE_TITLE": "A_TITLE_LONGER_THAN_16"}, "rtbank.E002"),
        ({"RTBANK_SECRET_KEY": "", "RTBANK_DEBUG": "0"}, "rtbank.E001"),
    ],
)
def test_system_checks_refuse_bad_configuration(tmp_path: Path, env: dict[str, str], words: str) -> None:
    result = run("check", env=env, home=tmp_path)
    assert result.returncode != 0 and words in result.stderr


def test_an_unwritable_home_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes anywhere: make the home a path under a file instead
        blocker = tmp_path / "file"
        blocker.write_text("x")
        home = blocker / "home"
    else:
        home = tmp_path / "ro"
        home.mkdir(mode=0o500)
    result = run("check", home=home)
    assert result.returncode != 0 and (
        "rtbank.E003" in result.stderr or "not writable" in result.stderr or "cannot" in result.stderr
    )

"""kill -9 of the harvest and worker processes at random points, several times in one run: the resumed run
ends complete, with every expected object filed exactly once."""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import require_tools
from tests.integration.harvest_setup import (
    WINDOW,
    Archive,
    catalog_uids,
    new_env,
    register_source,
    report_json,
    shared_archive,
    start_source,
)
from tests.integration.rtbank_env import RtbankEnv, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.db]


@pytest.fixture(scope="module")
def archive() -> Archive:
    require_tools("Orthanc")
    return shared_archive()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[RtbankEnv]:
    # Short leases so rows of a killed process on another "host" would also come back quickly.
    made = new_env(tmp_path / "home", {"RTBANK_HARVEST_LEASE": "6"})
    try:
        yield made
    finally:
        made.close()


def test_it_survives_kill_9_of_harvest_and_worker_at_random_points(
    env: RtbankEnv, archive: Archive, tmp_path: Path
) -> None:
    rng = random.Random(8)
    env.run("node", "add", "TPS", "--ae", "TPS", "--host", "127.0.0.1", "--port", "104")
    env.start_receiver()
    orthanc = start_source(archive, tmp_path / "orthanc", env)
    try:
        register_source(env, "RV", orthanc.aet, orthanc.dicom_port)
        kills = 0
        for round_no in range(4):
            args = (
                ["harvest", "--resume", "1"]
                if round_no
                else ["harvest", "RV", "--from", WINDOW[0], "--to", WINDOW[1]]
            )
            env.start("harvest", *args, "--no-progress")
            env.start_worker()
            if round_no == 0:
                wait_for(
                    lambda: env.query(
                        "from rtbank.harvest.models import HarvestObject\n"
                        "out = HarvestObject.objects.filter(state='requested').count()"
                    ),
                    60,
                    0.2,
                    "the first objects to be retrieved",
                )
            proc = env.processes["harvest"]
            try:
                proc.wait(rng.uniform(1.0, 4.0))
            except Exception:  # noqa: BLE001 - still running: kill it now
                pass
            for name in rng.sample(["harvest", "worker"], k=rng.choice([1, 2])) + ["harvest", "worker"]:
                if name in env.processes:
                    env.kill(name, signal.SIGKILL)
                    kills += 1
        assert kills >= 4
        env.start_worker()
        result = env.run("harvest", "--resume", "1", "--no-progress", check=False, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        env.wait_idle(120)
        held = catalog_uids(env)
        assert [u for u, n in held.items() if n > 1] == []
        expected = set().union(*archive.expected().values())
        assert set(held) == expected
        rep = report_json(env)
        assert rep["state"] == "complete"
        duplicates = env.query(
            "from collections import Counter\nfrom rtbank.harvest.models import HarvestPlan\n"
            "out = [k for k, n in Counter(HarvestPlan.objects.values_list('plan_uid', flat=True)).items() if n > 1]"
        )
        assert duplicates == []
    finally:
        orthanc.stop()

"""kill -9 of the harvest and worker processes at random points, several times in one run: the resumed run
ends complete, with every expected object filed exactly once.

The kill points are random but tied to the run's progress (objects requested from the source, objects
filed), not to wall-clock time, so every kill lands while the run is going on, however fast the machine.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harvest_setup import (
    Archive,
    HarvestEnv,
    Shared,
    archive_fixture,
    harvest,
    harvest_shared_fixture,
    new_env,
    outcome,
    setup_sources,
    sql,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.db]
FIXTURES = (harvest_shared_fixture, archive_fixture)

REQUESTED = "SELECT COUNT(*) FROM harvest_harvestobject WHERE state IN ('requested', 'collected')"
FILED = "SELECT COUNT(*) FROM catalog_instance"
FINISHED = "SELECT COUNT(*) FROM harvest_harvestrun WHERE state <> 'running'"


def wait_progress(env: HarvestEnv, query: str, at_least: int, timeout: float = 120) -> bool:
    """Poll until ``query`` counts ``at_least``; False if the run finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sql(env, query)[0][0] >= at_least:
            return True
        if sql(env, FINISHED)[0][0]:
            return False
        time.sleep(0.05)
    raise TimeoutError(f"no progress to {at_least} after {timeout:.0f} s ({query})")


@pytest.fixture
def crash_env(tmp_path: Path, harvest_shared: Shared) -> Iterator[HarvestEnv]:
    # Short leases, so rows a killed process held would also come back quickly from another "host".
    made = new_env(tmp_path / "home", {"RTBANK_HARVEST_LEASE": "6"})
    try:
        yield made
    finally:
        made.close()


def test_it_survives_kill_9_of_harvest_and_worker_at_random_points(
    crash_env: HarvestEnv, archive: Archive, harvest_shared: Shared
) -> None:
    env, rng = crash_env, random.Random(8)
    orthanc = harvest_shared.orthanc("Always")
    setup_sources(env, orthanc.dicom_port, orthanc=orthanc)
    first, last = archive.window(2)
    expected = set().union(*archive.expected_in(first, last).values())
    # Kill points: first while the walk requests objects, then each time some more objects were filed.
    points = [("requested", rng.randrange(5, 40))] + [
        ("filed", rng.randrange(5, len(expected) // 6)) for _ in range(3)
    ]
    interrupted = []
    for round_no, (what, count) in enumerate(points):
        args = ["--resume", "1"] if round_no else ["RV", "--from", first, "--to", last]
        query = REQUESTED if what == "requested" else FILED
        start = sql(env, query)[0][0]
        env.start("harvest", "harvest", *args, "--no-progress")
        env.start_worker()
        reached = wait_progress(env, query, start + count)
        time.sleep(rng.uniform(0.0, 0.3))
        victims = rng.sample(["harvest", "worker"], k=rng.choice([1, 2]))
        alive = {name: env.processes[name].poll() is None for name in ("harvest", "worker")}
        for name in [*victims, "harvest", "worker"]:
            if name in env.processes:
                env.kill(name, signal.SIGKILL)
        if reached and alive["harvest"]:
            interrupted.append((what, count, victims))
    assert len(interrupted) >= 3, f"the run ended before the kills: {interrupted}"
    env.start_worker()
    result = harvest(env, "--resume", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    out = outcome(
        env,
        extra="from collections import Counter\nfrom rtbank.harvest.models import HarvestPlan\n"
        "plans = Counter(HarvestPlan.objects.values_list('plan_uid', flat=True))\n"
        "out['plans'] = [k for k, n in plans.items() if n > 1]",
    )
    held = out["held"]
    assert [u for u, n in held.items() if n > 1] == []
    assert set(held) == expected
    assert out["report"]["state"] == "complete"
    assert out["plans"] == []
    assert out["provenance"] == [[1, "RV"]]  # also objects a killed step moved before it could record it

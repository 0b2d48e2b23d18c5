"""Fault injection: a source that refuses associations for a while, aborts C-MOVEs midway, or answers a
failure status for one object type. The harvest completes, or ends with exactly those objects missing.

Each test harvests the treatment window of one patient of the session's archive (``harvest_setup``).
"""

from __future__ import annotations

import pytest

from tests.integration.faultproxy import FaultProxy
from tests.integration.harvest_setup import (
    Archive,
    HarvestEnv,
    Shared,
    archive_fixture,
    env_fixture,
    harvest,
    harvest_shared_fixture,
    outcome,
    setup_sources,
)
from tests.integration.qrstandin import QrStandIn

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.db]
FIXTURES = (harvest_shared_fixture, archive_fixture, env_fixture)

WARNINGS = (
    "from rtbank.eventlog.models import Event\n"
    "out['warnings'] = list(Event.objects.filter(service='harvest', outcome='warning')"
    ".values_list('action', flat=True))"
)


def test_it_completes_through_refused_associations_and_aborted_moves(
    env: HarvestEnv, archive: Archive, harvest_shared: Shared
) -> None:
    orthanc = harvest_shared.orthanc("Always")
    # The harvest's first associations (for 2 s) are refused; C-MOVEs 2, 4 and 6 are cut midway.
    proxy = FaultProxy(orthanc.dicom_port, refuse_for_s=2.0, abort_moves={2, 4, 6}, abort_after_responses=0)
    try:
        setup_sources(env, proxy.port, orthanc=orthanc)
        first, last = archive.window(0)
        result = harvest(env, "RV", "--from", first, "--to", last)
        assert result.returncode == 0, result.stdout + result.stderr
        assert proxy.refused >= 1 and proxy.aborted >= 3
        out = outcome(env, extra=WARNINGS)
        held = out["held"]
        assert [u for u, n in held.items() if n > 1] == []
        assert set(held) == set().union(*archive.expected_in(first, last).values())
        assert out["report"]["state"] == "complete"
        # Each fault was seen and retried: refused associations, and three C-MOVEs cut midway.
        assert out["warnings"].count("c_move") >= 3
        assert len(out["warnings"]) >= 4
    finally:
        proxy.stop()


def test_it_reports_exactly_the_objects_of_a_type_the_source_refuses(
    env: HarvestEnv, archive: Archive, harvest_shared: Shared
) -> None:
    """A C-MOVE-only source (no C-GET: ``--inspect-get no``) that answers 0xC000 to every RT Dose retrieve.

    The window is the patient with the RT Ion plan (three doses: the plan's and two per-beam doses) and a
    plan exported without dose; everything but the doses is collected, and exactly the doses are reported
    missing, failed after retries.
    """
    orthanc = harvest_shared.orthanc("Always")
    series_of = archive.series_of
    doses = archive.uids_of("RTDOSE")
    standin = QrStandIn(
        ae_title="RVPACS",
        orthanc_port=orthanc.dicom_port,
        files=archive.files,
        series_of=series_of,
        destinations={"RTBANK": env.dicom_port},
        fail_series={series_of[u] for u in doses},
    )
    try:
        setup_sources(env, standin.port, "--max-attempts", "2", "--inspect-get", "no", orthanc=orthanc)
        first, last = archive.window(2)
        result = harvest(env, "RV", "--from", first, "--to", last)
        assert result.returncode == 1, result.stdout + result.stderr
        expected = set().union(*archive.expected_in(first, last).values())
        refused = expected & doses
        assert len(refused) >= 3 and archive.quirks["ion_plan"] in archive.expected_in(first, last)
        out = outcome(env)
        held = out["held"]
        assert [u for u, n in held.items() if n > 1] == []
        assert set(held) == expected - doses
        rep = out["report"]
        missing = {uid for plan in rep["plans"] for uid, _ in plan["missing"]}
        assert missing == refused
        reasons = {reason for plan in rep["plans"] for _, reason in plan["missing"]}
        assert all(r.startswith("failed after retries") and "0xC000" in r for r in reasons), reasons
        assert rep["state"] == "incomplete"
        assert standin.failed >= 2 * len({series_of[u] for u in refused})  # every dose series, twice
    finally:
        standin.stop()

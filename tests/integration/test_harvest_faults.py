"""Fault injection: a source that refuses associations for a while, aborts C-MOVEs midway, or answers a
failure status for one object type. The harvest completes, or ends with exactly those objects missing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import require_tools
from tests.integration.faultproxy import FaultProxy
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
from tests.integration.qrstandin import QrStandIn
from tests.integration.rtbank_env import RtbankEnv

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.db]


@pytest.fixture(scope="module")
def archive() -> Archive:
    require_tools("Orthanc")
    return shared_archive()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[RtbankEnv]:
    made = new_env(tmp_path / "home")
    made.run("node", "add", "TPS", "--ae", "TPS", "--host", "127.0.0.1", "--port", "104")
    made.start_receiver()
    try:
        yield made
    finally:
        made.close()


def test_it_completes_through_refused_associations_and_aborted_moves(
    env: RtbankEnv, archive: Archive, tmp_path: Path
) -> None:
    orthanc = start_source(archive, tmp_path / "orthanc", env)
    proxy = FaultProxy(orthanc.dicom_port, abort_moves={2, 4, 6}, abort_after_responses=0)
    try:
        register_source(env, "RV", orthanc.aet, proxy.port)
        proxy.refuse_until = time.monotonic() + 4.0  # from now: the harvest's first associations are refused
        result = env.run(
            "harvest", "RV", "--from", WINDOW[0], "--to", WINDOW[1], "--no-progress", check=False, timeout=600
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert proxy.refused >= 1 and proxy.aborted >= 2
        held = catalog_uids(env)
        assert [u for u, n in held.items() if n > 1] == []
        assert set(held) == set().union(*archive.expected().values())
        retries = env.query(
            "from rtbank.eventlog.models import Event\n"
            "out = Event.objects.filter(service='harvest', outcome='warning').count()"
        )
        assert retries >= 3
    finally:
        proxy.stop()
        orthanc.stop()


@pytest.mark.xfail(
    reason="known gap (issue 8 report): with a C-MOVE-only source (--inspect-get no) two non-dose objects of "
    "one plan are also reported missing; the RT Dose failures themselves are reported as asked",
    strict=False,
)
def test_it_reports_exactly_the_objects_of_a_type_the_source_refuses(
    env: RtbankEnv, archive: Archive, tmp_path: Path
) -> None:
    orthanc = start_source(archive, tmp_path / "orthanc", env)
    files = {f["sop_instance_uid"]: archive.folder / f["path"] for f in archive.manifest["files"]}
    series_of = {f["sop_instance_uid"]: f["series_instance_uid"] for f in archive.manifest["files"]}
    doses = {f["sop_instance_uid"] for f in archive.manifest["files"] if f["modality"] == "RTDOSE"}
    standin = QrStandIn(
        ae_title="RVPACS",
        orthanc_port=orthanc.dicom_port,
        files=files,
        series_of=series_of,
        destinations={"RTBANK": env.dicom_port},
        fail_series={series_of[u] for u in doses},
    )
    try:
        register_source(env, "RV", "RVPACS", standin.port, "--max-attempts", "2", "--inspect-get", "no")
        result = env.run(
            "harvest", "RV", "--from", WINDOW[0], "--to", WINDOW[1], "--no-progress", check=False, timeout=600
        )
        assert result.returncode == 1, result.stdout + result.stderr
        expected = set().union(*archive.expected().values())
        held = set(catalog_uids(env))
        assert held == expected - doses
        rep = report_json(env)
        missing = {uid for plan in rep["plans"] for uid, _ in plan["missing"]}
        assert missing == expected & doses
        reasons = {reason for plan in rep["plans"] for _, reason in plan["missing"]}
        assert all(r.startswith("failed after retries") and "0xC000" in r for r in reasons), reasons
        assert standin.failed >= 2
    finally:
        standin.stop()
        orthanc.stop()

"""The harvester against a real Orthanc holding a synthetic R&V archive with vendor quirks."""

from __future__ import annotations

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
from tests.integration.rtbank_env import RtbankEnv

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.db]


@pytest.fixture
def harvest_env(tmp_path: Path) -> Iterator[RtbankEnv]:
    env = new_env(tmp_path / "home")
    try:
        yield env
    finally:
        env.close()


@pytest.fixture(scope="module")
def archive() -> Archive:
    require_tools("Orthanc", "storescu")
    return shared_archive()


@pytest.fixture
def source_env(
    harvest_env: RtbankEnv, archive: Archive, tmp_path: Path
) -> Iterator[tuple[RtbankEnv, object]]:
    rtbank_env = harvest_env
    rtbank_env.run(
        "node", "add", "TPS", "--ae", "TPS", "--host", "127.0.0.1", "--port", "104"
    )  # C-ECHO probe
    rtbank_env.start_receiver()
    orthanc = start_source(archive, tmp_path / "orthanc", rtbank_env)
    try:
        register_source(rtbank_env, "RV", orthanc.aet, orthanc.dicom_port)
        yield rtbank_env, orthanc
    finally:
        orthanc.stop()


def assert_exact_harvest(env: RtbankEnv, archive: Archive) -> dict:
    held = catalog_uids(env)
    expected = set().union(*archive.expected().values())
    assert not [u for u, n in held.items() if n > 1], "an object was filed twice"
    missing = expected - set(held)
    kinds = sorted({(archive.index.objects[u].kind, archive.index.objects[u].series_uid) for u in missing})
    assert missing == set(), f"{len(missing)} expected objects are missing: {kinds}"
    assert set(held) & archive.decoys() == set(), "a decoy (untreated or unrelated object) was collected"
    assert set(held) == expected
    return held


def test_it_answer_key_matches_the_synthetic_manifest(archive: Archive) -> None:
    quirky = {archive.quirks["ion_plan"], archive.quirks["plan_without_ss"]}
    for patient in archive.manifest["patients"]:
        for plan in patient["plans"]:
            if plan["treated"] and plan["sop_instance_uid"] not in quirky:
                assert archive.index.expected(plan["sop_instance_uid"]) == set(
                    plan["harvest_expected"]["instances"]
                )


def test_it_collects_exactly_the_treated_plans_with_all_their_objects(
    source_env: tuple, archive: Archive
) -> None:
    env, _ = source_env
    result = env.run(
        "harvest", "RV", "--from", WINDOW[0], "--to", WINDOW[1], "--no-progress", check=False, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr + env.log("receiver")
    assert_exact_harvest(env, archive)
    rep = report_json(env)
    assert rep["state"] == "complete" and rep["record_level"] == "image"
    by_plan = {p["plan_uid"]: p for p in rep["plans"]}
    for plan_uid, expected in archive.expected().items():
        row = by_plan[plan_uid]
        assert (
            row["expected"] == len(expected) and row["collected"] == len(expected) and not row["missing"]
        ), row
    # Quirks handled as data: Ion plan with Ion records and per-beam doses; plan without structure set.
    assert set(archive.quirks["beam_doses"]) <= archive.expected()[archive.quirks["ion_plan"]]
    assert by_plan[archive.quirks["plan_without_ss"]]["expected"] >= 2
    # A record whose plan is absent is reported, not collected.
    for plan_uid in archive.dangling_plans():
        assert by_plan[plan_uid]["state"] == "absent"
    assert rep["stats"]["plans_absent"] == len(archive.dangling_plans())
    provenance = env.query(
        "from rtbank.catalog.models import Instance\n"
        "out = sorted({(i.provenance.get('harvest_run'), i.provenance.get('source_node')) "
        "for i in Instance.objects.all()})"
    )
    assert provenance == [[1, "RV"]]


@pytest.mark.parametrize(
    ("levels", "level"), [("image,series,patient", "series"), ("image,patient", "patient")]
)
def test_it_falls_back_when_the_source_cannot_match_treatment_date(
    harvest_env: RtbankEnv, archive: Archive, tmp_path: Path, levels: str, level: str
) -> None:
    """Orthanc without StorageAccessOnFind matches no TreatmentDate at image level (and returns no sequences)."""
    env = harvest_env
    env.run("node", "add", "TPS", "--ae", "TPS", "--host", "127.0.0.1", "--port", "104")
    env.start_receiver()
    orthanc = start_source(archive, tmp_path / "orthanc", env, storage_access_on_find="Never")
    try:
        register_source(env, "RV", orthanc.aet, orthanc.dicom_port, "--query-levels", levels)
        result = env.run(
            "harvest", "RV", "--from", WINDOW[0], "--to", WINDOW[1], "--no-progress", check=False, timeout=600
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert report_json(env)["record_level"] == level
        assert_exact_harvest(env, archive)
    finally:
        orthanc.stop()


def test_it_harvests_a_patient_list_into_a_project(
    source_env: tuple, archive: Archive, tmp_path: Path
) -> None:
    env, _ = source_env
    patient = archive.manifest["patients"][1]
    (tmp_path / "patients.txt").write_text(f"# data manager's list\n{patient['patient_id']}\n")
    env.run("project", "add", "HARV", "--name", "Harvested", "--renew-by", "2099-01-01")
    result = env.run(
        "harvest",
        "RV",
        "--patients",
        str(tmp_path / "patients.txt"),
        "--project",
        "HARV",
        "--no-progress",
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    expected = {
        uid: objs
        for uid, objs in archive.expected().items()
        if uid in {p["sop_instance_uid"] for p in patient["plans"]}
    }
    held = catalog_uids(env)
    assert set(held) == set().union(*expected.values())
    assigned = env.query(
        "from rtbank.projects.models import ProjectPlan\n"
        "out = sorted(ProjectPlan.objects.values_list('plan__sop_instance_uid', flat=True))"
    )
    assert assigned == sorted(expected)
    retained = env.query(
        "from rtbank.harvest.services import retained_instance_ids\n"
        "from rtbank.catalog.models import Instance\n"
        "out = Instance.objects.filter(pk__in=retained_instance_ids()).count()"
    )
    assert retained == len(held)

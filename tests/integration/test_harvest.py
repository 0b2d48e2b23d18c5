"""The harvester against a real Orthanc holding a synthetic R&V archive with vendor quirks.

The archive, its answer key and the Orthancs are shared by the session (``harvest_setup``); each test has a
fresh rtbank. Only the main test walks the whole archive (every quirk); the fallback tests walk the window
of one patient, which exercises their query levels (and the window filter) on less data.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

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

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.db]
FIXTURES = (harvest_shared_fixture, archive_fixture, env_fixture)


def assert_exact(held: dict[str, int], expected: set[str], archive: Archive) -> None:
    """Every expected object filed once, nothing else (no decoy: untreated or unrelated objects)."""
    assert [u for u, n in held.items() if n > 1] == [], "an object was filed twice"
    missing = expected - set(held)
    kinds = sorted({(archive.index.objects[u].kind, archive.index.objects[u].series_uid) for u in missing})
    assert missing == set(), f"{len(missing)} expected objects are missing: {kinds}"
    extra = set(held) - expected
    assert extra == set(), f"{len(extra)} objects collected that no treated plan of the window needs"


def test_it_answer_key_matches_the_synthetic_manifest(archive: Archive) -> None:
    quirky = {archive.quirks["ion_plan"], archive.quirks["plan_without_ss"]}
    checked = 0
    for patient in archive.manifest["patients"]:
        for plan in patient["plans"]:
            if plan["treated"] and plan["sop_instance_uid"] not in quirky:
                assert archive.index.expected(plan["sop_instance_uid"]) == set(
                    plan["harvest_expected"]["instances"]
                )
                checked += 1
    assert checked >= 3
    # The archive holds what the tests rely on: decoys, and every quirk of the synth generator.
    kinds = {a["kind"] for p in archive.manifest["patients"] for a in p["anomalies"]}
    kinds |= {
        d if isinstance(d, str) else d["kind"] for p in archive.manifest["patients"] for d in p["decoys"]
    }
    assert {
        "missing_slice",
        "dangling_record",
        "dose_references_structure_set",
        "plan_without_dose",
        "trial_plan",
        "second_structure_set",
        "untreated_course",
        "qa_phantom",
        "unregistered_series",
    } <= kinds
    assert archive.decoys()


def test_it_collects_exactly_the_treated_plans_with_all_their_objects(
    env: HarvestEnv, archive: Archive, harvest_shared: Shared
) -> None:
    orthanc = harvest_shared.orthanc("Always")
    first, last = archive.window(0, 1, 2)
    days = (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1
    chunk = math.ceil(days / 5)  # a few day chunks (the default is one day per query)
    setup_sources(env, orthanc.dicom_port, orthanc=orthanc, chunk_days=chunk)
    result = harvest(env, "RV", "--from", first, "--to", last)
    assert result.returncode == 0, result.stdout + result.stderr + env.log("receiver")
    out = outcome(
        env,
        extra="from rtbank.work.models import WorkItem\n"
        "out['chunks'] = WorkItem.objects.filter(kind='harvest_find', payload__find='chunk').count()",
    )
    assert_exact(out["held"], archive.all_expected(), archive)
    rep = out["report"]
    assert rep["state"] == "complete" and rep["record_level"] == "image"
    assert out["chunks"] >= 5
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
    assert archive.dangling_plans()
    for plan_uid in archive.dangling_plans():
        assert by_plan[plan_uid]["state"] == "absent"
    assert rep["stats"]["plans_absent"] == len(archive.dangling_plans())
    assert out["provenance"] == [[1, "RV"]]


@pytest.mark.parametrize(
    ("levels", "level", "patient"), [("image,series,patient", "series", 2), ("image,patient", "patient", 0)]
)
def test_it_falls_back_when_the_source_cannot_match_treatment_date(
    env: HarvestEnv, archive: Archive, harvest_shared: Shared, levels: str, level: str, patient: int
) -> None:
    """Orthanc without StorageAccessOnFind matches no TreatmentDate at image level, returns no sequences."""
    orthanc = harvest_shared.orthanc("Never")
    first, last = archive.window(patient)
    setup_sources(env, orthanc.dicom_port, "--query-levels", levels, orthanc=orthanc)
    result = harvest(env, "RV", "--from", first, "--to", last)
    assert result.returncode == 0, result.stdout + result.stderr
    out = outcome(env)
    assert out["report"]["record_level"] == level
    expected = archive.expected_in(first, last)
    assert expected and len(expected) < len(archive.expected())
    assert_exact(out["held"], set().union(*expected.values()), archive)
    assert {p["plan_uid"] for p in out["report"]["plans"] if p["state"] != "absent"} == set(expected)


def test_it_harvests_a_patient_list_into_a_project(
    env: HarvestEnv, archive: Archive, harvest_shared: Shared, tmp_path: Path
) -> None:
    orthanc = harvest_shared.orthanc("Always")
    project = ["project", "add", "HARV", "--name", "Harvested", "--renew-by", "2099-01-01"]
    setup_sources(env, orthanc.dicom_port, orthanc=orthanc, more=[project])
    (tmp_path / "patients.txt").write_text(f"# data manager's list\n{archive.patient_id(2)}\n")
    result = harvest(env, "RV", "--patients", str(tmp_path / "patients.txt"), "--project", "HARV")
    assert result.returncode == 0, result.stdout + result.stderr
    plans = {p["sop_instance_uid"] for p in archive.manifest["patients"][2]["plans"]}
    expected = {uid: objs for uid, objs in archive.expected().items() if uid in plans}
    out = outcome(
        env,
        extra="from rtbank.projects.models import ProjectPlan\n"
        "from rtbank.harvest.services import retained_instance_ids\n"
        "out['assigned'] = sorted(ProjectPlan.objects.values_list('plan__sop_instance_uid', flat=True))\n"
        "out['retained'] = Instance.objects.filter(pk__in=retained_instance_ids()).count()",
    )
    assert_exact(out["held"], set().union(*expected.values()), archive)
    assert out["assigned"] == sorted(expected)
    assert out["retained"] == len(out["held"])

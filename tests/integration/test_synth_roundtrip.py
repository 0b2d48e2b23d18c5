"""A generated archive sent over DICOM: the catalog agrees with the generator's manifest, plan bundles too."""

from __future__ import annotations

from pathlib import Path

from rtbank.dicom.synth import generate_archive
from tests.integration.conftest import require_tools
from tests.integration.rtbank_env import RtbankEnv


def test_stats_and_plan_bundles_agree_with_the_manifest(open_rtbank_env: RtbankEnv, tmp_path: Path) -> None:
    require_tools("storescu")
    manifest = generate_archive(tmp_path / "archive", patients=2, seed=5)
    env = open_rtbank_env
    env.start_receiver()
    env.start_worker()
    result = env.storescu(
        *[
            tmp_path / "archive" / inst["code"]
            for inst in manifest["institutions"]
            if (tmp_path / "archive" / inst["code"]).exists()
        ]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    stats = env.wait_idle(timeout=300)
    counts = manifest["counts"]
    for key in ("patients", "studies", "series", "instances", "by_modality", "rt"):
        assert stats[key] == counts[key], key
    bundles = env.query(
        "from rtbank.catalog.models import PlanBundleMember, Instance\n"
        "out = {}\n"
        "for m in PlanBundleMember.objects.select_related('plan', 'member'):\n"
        "    out.setdefault(m.plan.sop_instance_uid, []).append(m.member.sop_instance_uid)"
    )
    treated = [plan for p in manifest["patients"] for plan in p["plans"] if plan["treated"]]
    assert treated
    for plan in treated:
        expected = set(plan["harvest_expected"]["instances"])
        assert set(bundles[plan["sop_instance_uid"]]) == expected, plan["label"]

"""Trigger rules end to end over DICOM: a planner's empty ROI files the plan; a tag value forwards the
data."""

from __future__ import annotations

from pathlib import Path

from tests.integration.rtbank_env import RtbankEnv, wait_for
from tests.integration.rules_setup import KINDS, settled, setup_world, sql, storescp, uids_of
from tests.rules.helpers import RD, RECORD_FILES, RP, with_empty_roi


def test_an_empty_roi_sent_over_dicom_files_the_plan_and_the_dose_and_records_sent_later(
    rtbank_env: RtbankEnv, tmp_path: Path
) -> None:
    env = rtbank_env
    setup_world(
        env,
        """
from rtbank.rules.models import Rule
Rule.objects.create(project=trial, name="proton trial", enabled=True, scope="plan", created_by="test",
                    conditions={"type": "all", "conditions": [
                        {"type": "roi", "pattern": "trial_*", "contours": "empty"}]},
                    actions=[{"type": "assign"}])
""",
    )
    env.start_receiver()
    env.start("worker", "worker", "--kinds", KINDS)
    rs = with_empty_roi(tmp_path / "RS.dcm", "TRIAL_PROTON")
    sent = env.storescu(rs, RP, calling="TPS")
    assert sent.returncode == 0, sent.stderr
    wait_for(
        lambda: sql(env, "SELECT COUNT(*) FROM projects_projectplan")[0][0] == 1,
        60,
        0.2,
        "the rule to assign the plan",
    )

    later = env.storescu(RD, *RECORD_FILES, calling="TPS", called="TRIAL_AE")  # to the project's own AE title
    assert later.returncode == 0, later.stderr
    wait_for(lambda: settled(env, 2 + 1 + len(RECORD_FILES)), 90, 0.2, "the late objects to be analysed")
    held, firings, subjects = env.query("""
from rtbank.projects.access import instances_in
from rtbank.projects.models import Project, ProjectSubject
from rtbank.rules.models import RuleFiring
held = sorted(set(instances_in(Project.objects.get(code="TRIAL")).values_list("sop_instance_uid", flat=True)))
out = [held, sorted(RuleFiring.objects.values_list("action", "outcome")),
       list(ProjectSubject.objects.values_list("assigned_via", "assigned_by"))]
""")
    dangling = uids_of(RECORD_FILES[1])  # a record of a plan that exists nowhere: not in the plan bundle
    assert set(held) == uids_of(rs, RP, RD, *RECORD_FILES) - dangling
    assert [f for f in firings if f[0] == "assign"] == [
        ["assign", "done"]
    ]  # once, though analysed several times
    assert all(
        outcome == "done" for _, outcome in firings
    )  # a "waiting" match (RS before its plan) is resolved
    assert len(subjects) == 1 and subjects[0][0] == "rule" and subjects[0][1].startswith("rule:")


def test_a_rule_on_a_tag_value_forwards_every_object_to_a_second_receiver(
    rtbank_env: RtbankEnv, tmp_path: Path
) -> None:
    env = rtbank_env
    with storescp(tmp_path / "dest") as dest:
        setup_world(
            env,
            f"""
from rtbank.rules.models import Rule
node = Node.objects.create(name="PROTONS", ae_title="DEST", host="127.0.0.1", port={dest.port}, \
roles=["dest"])
trial.destinations.add(node)
Rule.objects.create(project=trial, name="Elekta plans to the proton centre", enabled=True, scope="patient",
                    created_by="test", actions=[{{"type": "forward", "node": node.pk}}],
                    conditions={{"type": "all", "conditions": [
                        {{"type": "attribute", "path": "BeamSequence[*].TreatmentMachineName", "op": "equals",
                          "value": "ElektaAgility"}}]}})
""",
        )
        env.start_receiver()
        env.start("worker", "worker", "--kinds", KINDS)
        rs = with_empty_roi(tmp_path / "RS.dcm", "ANY")
        assert env.storescu(rs, RP, calling="TPS").returncode == 0
        first = uids_of(rs, RP)
        wait_for(
            lambda: set(dest.received()) == first, 60, 0.3, "the plan and structure set at the destination"
        )
        assert env.storescu(RD, *RECORD_FILES, calling="TPS").returncode == 0
        everything = uids_of(rs, RP, RD, *RECORD_FILES)
        wait_for(lambda: set(dest.received()) == everything, 90, 0.3, "the late objects at the destination")
        received = dest.received()
    assert all(n == 1 for n in received.values()), received  # every object exactly once
    log = env.query(
        "from rtbank.projects.models import AccessLog\n"
        "out = list(AccessLog.objects.filter(action='forward').values_list('outcome', flat=True))"
    )
    assert log and set(log) == {"allowed"}

"""An audit from end to end with real processes: rtbank's receiver and worker, three dcmtk ``storescp``
centres on free ports, ``storescu`` sending the centres' edited structure sets back.

Two synthetic patients (their first plan: planning CT — every 4th slice — and structure set) go as
individually anonymised copies to three centres through the outbox; each centre edits what it received
(centre 1 saves it unchanged, centre 2 moves every contour by 3 mm, centre 3 grows them by 10 %) and sends
it back over DICOM. rtbank must attach each return to the right centre and case, score it (identical →
Dice 1, edited → below 1), and keep it out of the clinical data (no new clinical patient, not in the inbox).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audits.support import edited_structure_set, shared_cases, structure_sets
from tests.integration.conftest import require_tools
from tests.integration.rtbank_env import RtbankEnv, wait_for
from tests.integration.rules_setup import StoreScp, sql
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.db]  # runs again on PostgreSQL
CENTRES = ("CENTRE1", "CENTRE2", "CENTRE3")
EDITS = {"CENTRE1": {}, "CENTRE2": {"shift_mm": 3.0}, "CENTRE3": {"scale": 1.1}}

NODES = """
from rtbank.institutions.models import Institution, Node
for code in {institutions!r}:
    Institution.objects.create(code=code, name=code)
Node.objects.create(name="TPS", ae_title="TPS", host="127.0.0.1", port=104, roles=["send"])
for name, port in {centres!r}.items():
    Node.objects.create(name=name, ae_title=name, host="127.0.0.1", port=port, roles=["dest", "send"])
out = Node.objects.count()
"""

SETUP = """
import datetime as dt
from django.contrib.auth.models import User
from rtbank.audits import services
from rtbank.audits.services import ParticipantSpec
from rtbank.catalog.models import Instance, Patient
from rtbank.institutions.models import Node
from rtbank.projects.access import Access
from rtbank.projects.services import add_project, assign_plan, grant
until = dt.date.today() + dt.timedelta(days=30)
project = add_project("AUD", name="Audit", renew_by=until, institutions={institutions!r}, actor="test")
for uid in {plans!r}:
    assign_plan(project, Instance.objects.get(sop_instance_uid=uid, state="current"), actor="test")
auditor = User.objects.create_user("auditor", "auditor@example.org", None)
grant(auditor, project, ["view", "audit", "forward"], until, actor="test")
admin = User.objects.create_superuser("admin", "admin@example.org", None)
nodes = [Node.objects.get(name=name) for name in {centres!r}]
project.destinations.add(*nodes)
audit = services.create_audit(Access(auditor), project, name="E2E", plans={plans!r},
                              participants=[ParticipantSpec(n.name, node=n) for n in nodes],
                              contents=["planning_images", "structure_set"], remove_roi_types=["PTV"],
                              options=["retain_longitudinal_modified_dates", "clean_descriptors"])
services.request_copies(Access(auditor), audit, send=True)
out = {{"audit": audit.pk, "inbox": Access(admin).inbox_patients().count(),
        "clinical": Patient.objects.exclude(issuer__startswith="audit:").count()}}
"""

# The work an audit needs from a worker (other areas' stages, e.g. DVHs, would only cost time here).
KINDS = "ingest,analysis,rules,forward,audit_copy,audit_qa"
PROGRESS = (
    "SELECT p.name, p.copy_state, p.copy_files, w.state, p.copy_error "
    "FROM audits_participant p LEFT JOIN work_workitem w "
    "ON w.kind = 'forward' AND w.key = CAST(p.forward_id AS TEXT) WHERE p.audit_id = %s"
)


def settled(env: RtbankEnv, instances: int) -> bool:
    """``instances`` objects stored, none in the spool, no work of the audit's kinds pending or running."""
    kinds = tuple(KINDS.split(","))
    marks = ", ".join(["%s"] * len(kinds))
    busy = sql(
        env,
        f"SELECT COUNT(*) FROM work_workitem WHERE state IN ('pending', 'in_progress') "  # noqa: S608
        f"AND kind IN ({marks})",
        kinds,
    )[0][0]
    stored = sql(env, "SELECT COUNT(*) FROM catalog_instance")[0][0]
    ready = env.home / "spool" / "ready"
    return stored == instances and busy == 0 and not (ready.exists() and any(ready.glob("*.dcm")))


RESULTS = """
from django.contrib.auth.models import User
from rtbank.audits.models import ReturnedObject, RoiAgreement
from rtbank.catalog.models import Patient
from rtbank.projects.access import Access
from rtbank.projects.models import ProjectSubject
returns = ReturnedObject.objects.filter(participant__audit_id={audit}).select_related(
    "participant", "dataset", "instance")
rows = RoiAgreement.objects.filter(participant__audit_id={audit}, against="reference", dice__isnull=False)
audit_patients = Patient.objects.filter(issuer__startswith="audit:{audit}:")


def scores(field):
    return {{name: sorted(rows.filter(participant__name=name).values_list(field, flat=True))
             for name in {centres!r}}}


out = {{
    "returns": sorted([r.participant.name, r.dataset.label, r.instance.calling_ae, r.matched_by]
                      for r in returns),
    "dice": scores("dice"),
    "msd": scores("mean_surface_distance_mm"),
    "consensus": RoiAgreement.objects.filter(participant__audit_id={audit}, against="consensus").count(),
    "inbox": Access(User.objects.get(username="admin")).inbox_patients().count(),
    "clinical": Patient.objects.exclude(issuer__startswith="audit:").count(),
    "audit_patients": audit_patients.count(),
    "assigned": ProjectSubject.objects.filter(patient__in=audit_patients).count(),
}}
"""


@pytest.fixture
def env(tmp_path: Path) -> Iterator[RtbankEnv]:
    """A fresh rtbank; a stalled send is given up after 20 s and retried at once on a new association."""
    env = RtbankEnv(
        tmp_path / "home",
        {"RTBANK_FORWARD_TIMEOUT": "20", "RTBANK_FORWARD_BACKOFF": "0.5", "RTBANK_FORWARD_BACKOFF_CAP": "2"},
    )
    try:
        yield env
    finally:
        env.close()


@pytest.fixture
def centres(tmp_path: Path) -> Iterator[dict[str, StoreScp]]:
    """Three dcmtk storescp destinations, each on a free port with its own folder."""
    require_tools("storescp", "storescu", "echoscu")
    running: dict[str, StoreScp] = {}
    try:
        for name in CENTRES:
            running[name] = StoreScp(tmp_path / name, free_port(), ae_title=name)
            running[name].start()
        yield running
    finally:
        for scp in running.values():
            scp.stop()


def test_an_audit_goes_out_to_three_centres_and_their_returns_come_back_attached_and_scored(
    env: RtbankEnv, centres: dict[str, StoreScp], tmp_path: Path
) -> None:
    cases = shared_cases()
    imported: list[list[Path]] = []
    env.query(
        NODES.format(
            institutions=sorted({c.institution for c in cases}),
            centres={name: scp.port for name, scp in centres.items()},
        )
    )
    for case in cases:
        ct = [p for p in case.files if p.parent.name.startswith("CT")]
        chosen = [p for p in case.files if p.parent.name.startswith(("RTPLAN", "RTSTRUCT"))] + ct[::4]
        env.run("import", *map(str, chosen), "--institution", case.institution, "--no-wait")
        imported.append(chosen)
    env.start_receiver()
    env.start("worker", "worker", "--kinds", KINDS)
    stored = sum(len(paths) for paths in imported)
    wait_for(lambda: settled(env, stored), 180, 0.3, "rtbank to file the cases")
    setup = env.query(
        SETUP.format(
            institutions=sorted({c.institution for c in cases}),
            plans=[c.plan_uid for c in cases],
            centres=list(CENTRES),
        )
    )
    audit = setup["audit"]

    def sent() -> dict[str, tuple] | None:
        rows = {name: rest for name, *rest in sql(env, PROGRESS, (audit,))}
        assert len(rows) == 3 and all(state != "failed" for state, *_ in rows.values()), rows
        assert all(work != "failed" for _state, _files, work, _error in rows.values()), rows
        return rows if all(work == "done" for _state, _files, work, _error in rows.values()) else None

    progress = wait_for(sent, 300, 0.5, "the copies to be made and sent to the three centres")
    for name, scp in centres.items():
        received = scp.received()
        assert len(received) == progress[name][1] == progress[CENTRES[0]][1], name
        assert not set(received) & set(centres[CENTRES[0] if name != CENTRES[0] else CENTRES[1]].received())
        structures = structure_sets(scp.folder)
        assert len(structures) == len(cases), f"{name} received {len(structures)} structure sets"
        paths = [
            edited_structure_set(p, tmp_path / "returns" / name / p.name, **EDITS[name]) for p in structures
        ]
        done = env.storescu(*paths, calling=name)
        assert done.returncode == 0, done.stderr
    returned = sum(len(structure_sets(scp.folder)) for scp in centres.values())
    wait_for(lambda: settled(env, stored + returned), 300, 0.3, "rtbank to file and score the returns")
    results = env.query(RESULTS.format(audit=audit, centres=list(CENTRES)))

    assert [(centre, ae) for centre, _case, ae, _how in results["returns"]] == [
        (c, c) for c in CENTRES for _ in cases
    ], results["returns"]
    assert {(c, case) for c, case, _ae, _how in results["returns"]} == {
        (c, f"case {i}") for c in CENTRES for i in range(1, len(cases) + 1)
    }
    assert all(how == "uid" for *_, how in results["returns"])
    dice = results["dice"]
    assert len(dice["CENTRE1"]) >= 2 * 5 and set(dice["CENTRE1"]) == {1.0}, "identical contours must score 1"
    assert results["msd"]["CENTRE1"] == [0.0] * len(dice["CENTRE1"])
    for edited in ("CENTRE2", "CENTRE3"):
        assert (
            len(dice[edited]) == len(dice["CENTRE1"]) and max(dice[edited]) < 1.0 and min(dice[edited]) > 0.3
        )
        assert min(results["msd"][edited]) > 0.0
    assert results["consensus"] == sum(len(scores) for scores in dice.values()), (
        "each ROI against the other two"
    )
    # never mistaken for clinical data
    assert results["clinical"] == setup["clinical"] and results["inbox"] == setup["inbox"]
    assert results["audit_patients"] == 3 * len(cases) and results["assigned"] == 0

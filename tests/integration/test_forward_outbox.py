"""The forwarding outbox against real destinations: down for a while, and never up (failed, visible,
resubmitted).

Both scenarios share one rtbank (one worker) and run as two forwards to two dcmtk ``storescp`` destinations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.rtbank_env import RtbankEnv, wait_for
from tests.integration.rules_setup import KINDS, setup_world, sql, storescp, uids_of
from tests.ports import free_port
from tests.rules.helpers import RD, RECORD_FILES, RP, RS

pytestmark = pytest.mark.db
COURSE = [RS, RP, RD, *RECORD_FILES]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtbankEnv]:
    """ODE's course stored; a manager with ``forward`` on TRIAL; fast back-off; the cap at 3 attempts."""
    env = RtbankEnv(
        tmp_path_factory.mktemp("outbox") / "home",
        {
            "RTBANK_FORWARD_BACKOFF": "0.3",
            "RTBANK_FORWARD_BACKOFF_CAP": "1.5",
            "RTBANK_FORWARD_MAX_ATTEMPTS": "3",
        },
    )
    try:
        setup_world(
            env,
            """
from django.contrib.auth.models import User
from rtbank.projects.services import grant
manager = User.objects.create_user("manager", "manager@example.org", None)
grant(manager, trial, ["view", "forward"], dt.date.today() + dt.timedelta(days=30), actor="test")
""",
        )
        env.start("worker", "worker", "--kinds", KINDS)
        env.run("import", "--institution", "ODE", *map(str, COURSE), "--no-wait")
        wait_for(
            lambda: sql(env, "SELECT COUNT(*) FROM catalog_instance")[0][0] == len(COURSE),
            60,
            0.2,
            "the course to be stored",
        )
        yield env
    finally:
        env.close()


def queue_forward(env: RtbankEnv, name: str, port: int, max_attempts: int = 0) -> int:
    """Queue all of the patient's objects to a new destination ``name`` on ``port`` (nothing listens yet).

    ``max_attempts`` lets this row try longer than the site's cap (set in the same transaction).
    """
    return env.query(f"""
from django.contrib.auth.models import User
from django.db import transaction
from rtbank.catalog.models import Patient
from rtbank.institutions.models import Node
from rtbank.projects.models import Project
from rtbank.rules import outbox
from rtbank.work.models import WorkItem
trial = Project.objects.get(code="TRIAL")
with transaction.atomic():
    node = Node.objects.create(name="{name}", ae_title="DEST", host="127.0.0.1", port={port}, roles=["dest"])
    trial.destinations.add(node)
    manager = User.objects.get(username="manager")
    out = outbox.send_patient(node, Patient.objects.get(patient_id="brain"), project=trial, actor="manager",
                              user=manager).pk
    if {max_attempts}:
        WorkItem.objects.filter(kind="forward", key=str(out)).update(max_attempts={max_attempts})
""")


def row(env: RtbankEnv, forward: int) -> tuple[str, int]:
    return sql(
        env, "SELECT state, attempts FROM work_workitem WHERE kind = 'forward' AND key = %s", (str(forward),)
    )[0]


def test_a_destination_down_for_a_while_gets_everything_once_when_it_comes_up(
    env: RtbankEnv, tmp_path: Path
) -> None:
    port = free_port()
    forward = queue_forward(env, "LATE", port, max_attempts=100)
    wait_for(lambda: row(env, forward)[1] >= 3, 60, 0.1, "three failed attempts")
    assert row(env, forward)[0] in ("pending", "in_progress")  # backing off, not given up
    with storescp(tmp_path / "dest", port) as dest:
        wait_for(lambda: row(env, forward)[0] == "done", 60, 0.1, "the forward to be delivered")
        received = dest.received()
    assert set(received) == uids_of(*COURSE)
    assert all(n == 1 for n in received.values()), received  # nothing duplicated
    rows = sql(env, "SELECT outcome, details FROM projects_accesslog WHERE action = 'forward'")
    outcomes = [
        outcome
        for outcome, details in rows
        if (json.loads(details) if isinstance(details, str) else details)["forward"] == forward
    ]
    attempts = row(env, forward)[1]
    assert attempts >= 3 and outcomes.count("allowed") == 1
    assert outcomes.count("error") == attempts - 1  # every attempt is in the access log


def test_a_destination_that_never_comes_up_fails_at_the_cap_and_is_resubmitted_from_the_outbox(
    env: RtbankEnv, tmp_path: Path
) -> None:
    port = free_port()
    forward = queue_forward(env, "NEVER", port)
    wait_for(lambda: row(env, forward)[0] == "failed", 60, 0.1, "the forward to fail at the cap")
    assert row(env, forward)[1] == 3
    page, told = env.query("""
from django.contrib.auth.models import User
from rtbank.notifications.models import Notification
from tests.web.clients import client_for
page = client_for(User.objects.get(username="manager")).get(\
"/projects/TRIAL/outbox/?state=failed").content.decode()
out = [page, list(Notification.objects.filter(event="forward_failed").values_list(\
"user__username", "subject"))]
""")
    assert "NEVER" in page and "Resubmit" in page and f"<td>{forward}</td>" in page  # visible, resubmittable
    assert [who for who, subject in told if f"#{forward} " in subject] == ["manager"]
    with storescp(tmp_path / "dest", port) as dest:
        status = env.query(f"""
from django.contrib.auth.models import User
from tests.web.clients import client_for
out = client_for(User.objects.get(username="manager")).post("/outbox/{forward}/resubmit/").status_code
""")
        assert status == 302
        wait_for(lambda: row(env, forward)[0] == "done", 60, 0.1, "the resubmitted forward to be delivered")
        received = dest.received()
    assert set(received) == uids_of(*COURSE) and all(n == 1 for n in received.values())

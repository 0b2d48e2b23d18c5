"""`rtbank cleanup` on a real home: notices by mail first (aiosmtpd), then the dry run is what the real run
deletes.

Kept: a patient in a project, a harvested patient; deleted (into the trash): an idle patient in no project.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import DATA
from tests.integration.rtbank_env import RtbankEnv, wait_for
from tests.integration.rules_setup import KINDS, setup_world, sql
from tests.rules.helpers import COURSE, RECORDS
from tests.rules.servers import smtp_server

INBOX = DATA / "rt-utils"  # PHANTOM_EXAMPLE: in no project
pytestmark = pytest.mark.db  # runs again on PostgreSQL
HARVESTED = DATA / "pyplanscoring" / "pinnacle_dicom_plan1"  # 2018_Comp_Lung: collected by a harvest run


def uids(env: RtbankEnv, patient_id: str) -> set[str]:
    return {
        r[0]
        for r in sql(
            env,
            "SELECT i.sop_instance_uid FROM catalog_instance i JOIN catalog_series s "
            "ON i.series_id = s.id JOIN catalog_study st ON s.study_id = st.id JOIN "
            "catalog_patient p ON st.patient_id = p.id WHERE p.patient_id = %s",
            (patient_id,),
        )
    }


def test_cleanup_tells_data_managers_then_deletes_exactly_its_dry_run_and_keeps_retained_data(
    tmp_path: Path,
) -> None:
    with smtp_server() as (mailbox, smtp_port):
        env = RtbankEnv(
            tmp_path / "home",
            {
                "RTBANK_SMTP_HOST": "127.0.0.1",
                "RTBANK_SMTP_PORT": str(smtp_port),
                "RTBANK_CLEANUP_AGE_DAYS": "90",
                "RTBANK_CLEANUP_NOTICE_DAYS": "7",
            },
        )
        try:
            _scenario(env, mailbox)
        finally:
            env.close()


def _scenario(env: RtbankEnv, mailbox: object) -> None:
    setup_world(
        env,
        """
from django.contrib.auth.models import User
from rtbank.institutions.models import UserProfile
dm = User.objects.create_user("dm", "dm@odense.example", None)
UserProfile.objects.create(user=dm, institution=ode, roles=["data_manager"])
""",
    )
    env.start("worker", "worker", "--kinds", KINDS)
    env.run(
        "import", "--institution", "ODE", str(COURSE), str(RECORDS), str(INBOX), str(HARVESTED), "--no-wait"
    )
    wait_for(
        lambda: len(uids(env, "2018_Comp_Lung")) == 2 and len(uids(env, "PHANTOM_EXAMPLE")) == 4,
        60,
        0.2,
        "the data to be stored",
    )
    wait_for(
        lambda: (
            sql(env, "SELECT COUNT(*) FROM work_workitem WHERE kind = 'analysis' AND state <> 'done'")[0][0]
            == 0
        ),
        60,
        0.2,
        "analysis",
    )
    env.query("""
import datetime as dt
from django.utils import timezone
from rtbank.catalog.models import Instance, Patient
from rtbank.projects.models import Project
from rtbank.projects.services import assign_patient
assign_patient(Project.objects.get(code="TRIAL"), Patient.objects.get(patient_id="brain"), actor="test")
from rtbank.harvest.models import HarvestRun
from rtbank.institutions.models import Node
pacs = Node.objects.create(name="PACS", ae_title="PACS", host="127.0.0.1", port=104, roles=["harvest"])
run = HarvestRun.objects.create(source=pacs, created_by="test")  # a kept run
Instance.objects.filter(series__study__patient__patient_id="2018_Comp_Lung").update(\
provenance={"harvest_run": run.pk})
out = Instance.objects.update(\
received_at=timezone.now() - dt.timedelta(days=120))  # everything idle for 120 days
""")
    kept = {pid: uids(env, pid) for pid in ("brain", "2018_Comp_Lung")}
    inbox = uids(env, "PHANTOM_EXAMPLE")

    first = json.loads(
        env.run("cleanup", "--json").stdout
    )  # announces; deletes nothing before the notice period
    assert [p["objects"] for p in first["plan"]["announce"]] == [5] and first["result"]["deleted"] == []
    assert uids(env, "PHANTOM_EXAMPLE") == inbox
    wait_for(lambda: mailbox.to("dm@odense.example"), 60, 0.2, "the notice mail to the ODE data manager")
    (notice,) = mailbox.to("dm@odense.example")
    assert (
        "Cleanup: 1 patient(s) from ODE" in notice["Subject"] and "PHANTOM_EXAMPLE" not in notice.as_string()
    )

    env.query("""
import datetime as dt
from rtbank.rules.models import CleanupNotice
for n in CleanupNotice.objects.all():  # a week later
    CleanupNotice.objects.filter(pk=n.pk).update(noticed_at=n.noticed_at - dt.timedelta(days=8),
                                                 delete_after=n.delete_after - dt.timedelta(days=8))
out = 0
""")
    dry = json.loads(env.run("cleanup", "--dry-run", "--json").stdout)
    planned = {u for p in dry["plan"]["delete"] for u in p["sop_instance_uids"]}
    assert planned == inbox and uids(env, "PHANTOM_EXAMPLE") == inbox
    real = json.loads(env.run("cleanup", "--json").stdout)
    assert set(real["result"]["deleted"]) == planned  # the dry run was exactly what the real run deleted
    assert uids(env, "PHANTOM_EXAMPLE") == set()
    assert {pid: uids(env, pid) for pid in kept} == kept  # in a project, harvested: untouched
    trash = [r[0] for r in sql(env, "SELECT trash_path FROM rules_trashedinstance")]
    assert len(trash) == 5 and all((env.home / "trash" / path).is_file() for path in trash)

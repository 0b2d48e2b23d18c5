"""'Export ready' and grant-expiry mail arrive in a real SMTP server (aiosmtpd on a free loopback port)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from rtbank.notifications.services import NOTIFY
from rtbank.projects import exports
from rtbank.projects.models import ExportJob, Grant
from rtbank.projects.services import grant, remind_expiring_grants
from rtbank.work.worker import run_until_idle
from tests.ports import free_port
from tests.projects.world import World
from tests.web.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's API
        with self.lock:
            message = message_from_bytes(envelope.content)
            message["X-Rcpt"] = ",".join(envelope.rcpt_tos)
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if address in m["X-Rcpt"]]


@pytest.fixture
def smtp(settings) -> Iterator[Inbox]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
    try:
        yield inbox
    finally:
        controller.stop()


def body(message: Message) -> str:
    return message.get_payload(decode=True).decode()


def test_export_ready_mail_arrives(world: World, smtp: Inbox, settings) -> None:
    settings.EXPORT_STREAM_MAX_FILES = 1
    manager = world.users["manager_A"]
    client_for(manager).post("/projects/A/export/", {"scope": "all"})
    job = ExportJob.objects.get(user=manager)
    run_until_idle([exports.EXPORT, NOTIFY])
    mails = smtp.to("manager_A@example.org")
    ready = [m for m in mails if "Export of A is ready" in m["Subject"]]
    assert len(ready) == 1, [m["Subject"] for m in mails]
    assert f"/exports/{job.pk}/" in body(ready[0])
    assert "PIDSENT7741" not in body(ready[0]) and "A-0001" not in body(ready[0])  # mail leaves the system


def test_grant_expiry_reminders_reach_the_person_and_the_manager_once(world: World, smtp: Inbox) -> None:
    today = dt.date.today()
    viewer = world.users["viewer_A"]
    grant(viewer, world.projects["A"], ["view"], today + dt.timedelta(days=5), actor="test")
    # Everyone else's grants are far away (the other A grants run a year).
    sent = remind_expiring_grants(today)
    again = remind_expiring_grants(today)  # the scheduler may run twice: nobody is told twice
    run_until_idle([NOTIFY])
    to_viewer = [m for m in smtp.to("viewer_A@example.org") if "ends on" in m["Subject"]]
    to_manager = [m for m in smtp.to("manager_A@example.org") if "viewer_A" in m["Subject"]]
    assert len(to_viewer) == 1 and len(to_manager) == 1 and sent >= 2 and again == 0
    assert (today + dt.timedelta(days=5)).isoformat() in to_viewer[0]["Subject"]
    assert "/projects/A/members/" in body(to_manager[0])
    assert Grant.objects.get(user=viewer, permission="view").reminded_for == today + dt.timedelta(days=5)
    # Renewal to a new date arms a new reminder when that one comes near.
    grant(viewer, world.projects["A"], ["view"], today + dt.timedelta(days=10), actor="test")
    assert remind_expiring_grants(today) >= 1


def test_projects_near_their_renewal_date_remind_managers_and_site_admins(world: World, smtp: Inbox) -> None:
    today = dt.date.today()
    world.projects["B"].renew_by = today + dt.timedelta(days=20)
    world.projects["B"].save()
    remind_expiring_grants(today)
    run_until_idle([NOTIFY])
    subjects = [m["Subject"] for m in smtp.messages if "renewed" in m["Subject"]]
    assert any("B" in s for s in subjects)
    assert smtp.to("member_B@example.org") and smtp.to("admin@example.org")

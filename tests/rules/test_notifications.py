"""Notifications: e-mail through a real SMTP server, SMS through an HTTP webhook, daily digests."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from rtbank.institutions.models import NotifyMode, UserProfile
from rtbank.notifications.events import Event
from rtbank.notifications.models import Notification
from rtbank.notifications.services import notify, queue_digests
from rtbank.work.models import WorkItem, WorkState
from tests.rules.conftest import drain
from tests.rules.servers import sms_webhook, smtp_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mail(settings: Any) -> Any:
    with smtp_server() as (mailbox, port):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        yield mailbox


@pytest.fixture
def sms(settings: Any) -> Any:
    with sms_webhook() as (hook, url):
        settings.SMS_WEBHOOK_URL, settings.SMS_WEBHOOK_TOKEN = url, "s3cret"
        yield hook


def person(name: str, mode: str = NotifyMode.IMMEDIATE, phone: str = "") -> User:
    user = User.objects.create_user(name, f"{name}@example.org", None)
    UserProfile.objects.create(user=user, notify_mode=mode, phone=phone, notify_sms=bool(phone))
    return user


def test_immediate_notifications_arrive_by_mail_and_sms(mail: Any, sms: Any) -> None:
    ann = person("ann", phone="+4511223344")
    bob = person("bob")
    notify(
        [ann, bob],
        Event.FORWARD_FAILED,
        "Forward #3 to PROTONS failed",
        "It waits in the outbox.",
        url="/outbox/",
    )
    drain()
    (to_ann,) = mail.to("ann@example.org")
    assert to_ann["Subject"] == "[rtbank] Forward #3 to PROTONS failed"
    assert "It waits in the outbox." in to_ann.get_payload() and "/outbox/" in to_ann.get_payload()
    assert len(mail.to("bob@example.org")) == 1
    (text,) = sms.received  # bob did not ask for SMS
    assert text["to"] == "+4511223344" and text["text"].startswith("rtbank: Forward #3 to PROTONS failed")
    assert sms.headers[0]["Authorization"] == "Bearer s3cret"
    assert Notification.objects.filter(sms_sent_at__isnull=False).count() == 1


def test_a_failing_sms_gateway_delays_the_message_and_never_loses_it(mail: Any, sms: Any) -> None:
    sms.status = 503
    notify([person("ann", phone="+4511223344")], Event.CLEANUP_UPCOMING, "Cleanup soon", "Body")
    drain()
    row = WorkItem.objects.get(key__startswith="sms:")
    assert row.state == WorkState.PENDING and "HTTP 503" in row.last_error and row.not_before is not None
    sms.status = 200
    WorkItem.objects.filter(pk=row.pk).update(not_before=None)
    drain()
    assert len(sms.received) == 1 and WorkItem.objects.get(pk=row.pk).state == WorkState.DONE


def test_digest_people_get_one_mail_a_day_with_everything_held(mail: Any, sms: Any) -> None:
    dora = person("dora", NotifyMode.DIGEST, phone="+4599887766")
    quiet = person("quiet", NotifyMode.OFF)
    for i in range(3):
        notify([dora, quiet], Event.RULE_ASSIGNED, f"Rule assigned plan {i}", f"Subject A-000{i}")
    drain()
    assert mail.messages == [] and sms.received == []  # held for the digest
    assert queue_digests("2026-03-10") == {"digests": 1}
    assert queue_digests("2026-03-10") == {"digests": 1}  # the same period queues the same row
    drain()
    (digest,) = mail.to("dora@example.org")
    body = digest.get_payload()
    assert digest["Subject"] == "[rtbank] daily digest: 3 notification(s)"
    assert all(f"Rule assigned plan {i}" in body for i in range(3))
    assert len(sms.received) == 1 and "3 new notification" in sms.received[0]["text"]
    assert not Notification.objects.filter(user=dora, digest_sent_at__isnull=True).exists()
    assert queue_digests("2026-03-11") == {"digests": 0}  # nothing held any more
    assert Notification.objects.filter(user=quiet).count() == 3 and not mail.to("quiet@example.org")


def test_event_names_are_one_list() -> None:
    assert {e.value for e in Event} >= {
        "rule_assigned",
        "forward_failed",
        "cleanup_upcoming",
        "grant_expiring",
        "export_ready",
        "harvest_finished",
    }
    assert all(len(e.value) <= 48 for e in Event)

"""Telling people what happened: ``notify()`` is the one entry point every area uses.

Messages are stored first (visible in the web interface), then delivered by the worker as work rows —
so a down mail server or SMS gateway delays a message, it never loses it or blocks the caller. Per-user
preferences (:class:`rtbank.institutions.models.UserProfile`) choose immediate delivery, the daily digest,
or none; people who opted in to SMS (``notify_sms`` and a ``phone``) also get a short text message — one
per notification when immediate, one summary with the digest. Event names are in
:class:`rtbank.notifications.events.Event`.

Work rows (kind ``notify``): ``email:<notification>``, ``sms:<notification>``, ``digest:<user>:<period>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from rtbank.institutions.models import NotifyMode, UserProfile
from rtbank.notifications.events import Event
from rtbank.notifications.models import Notification
from rtbank.notifications.sms import SmsError, sms_gateway
from rtbank.work import services as work
from rtbank.work.models import WorkItem
from rtbank.work.registry import Batch, PermanentError

NOTIFY = "notify"
EMAIL, SMS, DIGEST = "email", "sms", "digest"

__all__ = ["NOTIFY", "Event", "deliver", "deliver_email", "notify", "queue_digests"]


def notify(
    users: Iterable[User], event: str, subject: str, body: str, *, url: str = ""
) -> list[Notification]:
    """Store a notification for each user and queue its delivery according to their preferences.

    ``event`` is an :class:`Event` (plain strings are accepted for compatibility). Texts must not contain
    patient names or IDs: mail and SMS leave the system. Use subject IDs and links.
    """
    created = []
    with transaction.atomic():
        for user in {u.pk: u for u in users}.values():
            if not user.is_active:
                continue
            profile = UserProfile.objects.filter(user=user).first()
            mode = profile.notify_mode if profile else NotifyMode.IMMEDIATE
            n = Notification.objects.create(
                user=user,
                event=str(event)[:48],
                subject=subject[:200],
                body=body,
                url=url,
                digest=mode == NotifyMode.DIGEST,
            )
            created.append(n)
            if mode != NotifyMode.IMMEDIATE:
                continue
            if user.email:
                work.enqueue(NOTIFY, f"{EMAIL}:{n.pk}", {"notification": n.pk, "channel": EMAIL}, rearm=False)
            if _wants_sms(profile):
                work.enqueue(NOTIFY, f"{SMS}:{n.pk}", {"notification": n.pk, "channel": SMS}, rearm=False)
    return created


def deliver(item: WorkItem, batch: Batch) -> dict[str, Any]:
    """Work handler of kind ``notify``: one e-mail, one SMS, or one user's digest."""
    channel = item.payload.get("channel", EMAIL)
    if channel == EMAIL:
        return deliver_email(item, batch)
    if channel == SMS:
        return _deliver_sms(item)
    if channel == DIGEST:
        return _deliver_digest(item)
    raise PermanentError(f"unknown notification channel {channel!r}")


def deliver_email(item: WorkItem, batch: Batch) -> dict:
    """Send one notification by e-mail (retried with back-off while SMTP is down)."""
    n = Notification.objects.select_related("user").get(pk=item.payload["notification"])
    if n.email_sent_at:
        return {"sent": "already"}
    send_mail(
        f"[rtbank] {n.subject}", n.body + _link(n.url, "\n\n"), settings.DEFAULT_FROM_EMAIL, [n.user.email]
    )
    Notification.objects.filter(pk=n.pk).update(email_sent_at=timezone.now())
    return {"sent": n.user.email and "email"}


def _deliver_sms(item: WorkItem) -> dict[str, Any]:
    n = Notification.objects.select_related("user").get(pk=item.payload["notification"])
    if n.sms_sent_at:
        return {"sent": "already"}
    profile = UserProfile.objects.filter(user=n.user).first()
    if not _wants_sms(profile):
        return {"sent": "no longer wanted"}
    _send_sms(profile.phone, f"rtbank: {n.subject}{_link(n.url, ' ')}")  # type: ignore[union-attr]
    Notification.objects.filter(pk=n.pk).update(sms_sent_at=timezone.now())
    return {"sent": "sms"}


# --- the daily digest ----------------------------------------------------------------------------------
def queue_digests(period: str) -> dict[str, int]:
    """Scheduled job ``digest``: one delivery row per person with notifications held for the digest."""
    until = timezone.now()
    users = (
        Notification.objects.filter(digest=True, digest_sent_at__isnull=True, created_at__lte=until)
        .values_list("user_id", flat=True)
        .distinct()
        .order_by("user_id")
    )
    queued = 0
    for user_id in users:
        work.enqueue(
            NOTIFY,
            f"{DIGEST}:{user_id}:{period}",
            {"channel": DIGEST, "user": user_id, "until": until.isoformat()},
            rearm=False,
        )
        queued += 1
    return {"digests": queued}


def _deliver_digest(item: WorkItem) -> dict[str, Any]:
    user = User.objects.get(pk=item.payload["user"])
    held = list(
        Notification.objects.filter(
            user=user, digest=True, digest_sent_at__isnull=True, created_at__lte=item.payload["until"]
        ).order_by("created_at", "id")
    )
    if not held:
        return {"sent": "nothing held"}
    lines = [f"{len(held)} notification(s) since the last digest:", ""]
    for n in held:
        lines += [
            f"* {n.created_at:%Y-%m-%d %H:%M} {n.subject}",
            *(f"  {line}" for line in n.body.splitlines()[:6]),
        ]
        if n.url:
            lines.append(f"  {_link(n.url)}")
        lines.append("")
    sent = []
    if user.email:
        send_mail(
            f"[rtbank] daily digest: {len(held)} notification(s)",
            "\n".join(lines),
            settings.DEFAULT_FROM_EMAIL,
            [user.email],
        )
        sent.append(EMAIL)
    profile = UserProfile.objects.filter(user=user).first()
    if _wants_sms(profile):
        try:
            text = f"rtbank: {len(held)} new notification(s); see your e-mail or rtbank."
            _send_sms(profile.phone, text)  # type: ignore[union-attr]
            sent.append(SMS)
        except SmsError:
            if not sent:
                raise  # nothing went out: retry the whole digest later
    now = timezone.now()
    Notification.objects.filter(pk__in=[n.pk for n in held]).update(
        digest_sent_at=now, email_sent_at=now if user.email else None
    )
    return {"sent": sent, "notifications": len(held)}


# --- helpers -------------------------------------------------------------------------------------------
def _wants_sms(profile: UserProfile | None) -> bool:
    return bool(profile and profile.notify_sms and profile.phone.strip())


def _send_sms(phone: str, text: str) -> None:
    gateway = sms_gateway()
    if gateway is None:
        raise PermanentError("SMS is not configured (RTBANK_SMS_WEBHOOK_URL)")
    gateway.send(phone.strip(), text)


def _link(url: str, before: str = "") -> str:
    return f"{before}{settings.SITE_URL.rstrip('/')}{url}" if url else ""

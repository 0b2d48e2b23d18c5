"""Telling people what happened: ``notify()`` is the one entry point every area uses.

Messages are stored first (visible in the web interface), then delivered by the worker as work rows —
so a down mail server delays mail, it never loses it or blocks the caller. Per-user preferences
(:class:`rtbank.institutions.models.UserProfile`) choose immediate mail, the daily digest, or none.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from rtbank.institutions.models import NotifyMode, UserProfile
from rtbank.notifications.models import Notification
from rtbank.work import services as work
from rtbank.work.models import WorkItem
from rtbank.work.registry import Batch

NOTIFY = "notify"


def notify(users: Iterable[User], event: str, subject: str, body: str, *, url: str = "") -> list[Notification]:
    """Store a notification for each user and queue its delivery according to their preferences.

    Texts must not contain patient names or IDs: mail leaves the system. Use subject IDs and links.
    """
    created = []
    with transaction.atomic():
        for user in users:
            if not user.is_active:
                continue
            mode = _mode(user)
            n = Notification.objects.create(user=user, event=event, subject=subject[:200], body=body, url=url,
                                            digest=mode == NotifyMode.DIGEST)
            created.append(n)
            if mode == NotifyMode.IMMEDIATE and user.email:
                work.enqueue(NOTIFY, f"email:{n.pk}", {"notification": n.pk}, rearm=False)
    return created


def deliver_email(item: WorkItem, batch: Batch) -> dict:
    """Work handler: send one notification by e-mail (retried with back-off while SMTP is down)."""
    n = Notification.objects.select_related("user").get(pk=item.payload["notification"])
    if n.email_sent_at:
        return {"sent": "already"}
    link = f"\n\n{settings.SITE_URL.rstrip('/')}{n.url}" if n.url else ""
    send_mail(f"[rtbank] {n.subject}", n.body + link, settings.DEFAULT_FROM_EMAIL, [n.user.email])
    Notification.objects.filter(pk=n.pk).update(email_sent_at=timezone.now())
    return {"sent": n.user.email and "email"}


def _mode(user: User) -> str:
    profile = UserProfile.objects.filter(user=user).first()
    return profile.notify_mode if profile else NotifyMode.IMMEDIATE

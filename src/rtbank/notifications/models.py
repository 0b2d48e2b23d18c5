"""Notifications: what a person is told, and whether it has been delivered."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Notification(models.Model):
    """One message to one person about one event. Delivery is a work row (kind ``notify``) per channel."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=48, db_index=True, help_text="e.g. export_ready, grant_expiring")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    url = models.CharField(max_length=500, blank=True, help_text="a link into rtbank, relative to SITE_URL")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    email_sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    digest = models.BooleanField(default=False, help_text="held for the daily digest")
    sms_sent_at = models.DateTimeField(null=True, blank=True)
    digest_sent_at = models.DateTimeField(
        null=True, blank=True, help_text="when the digest holding it went out"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["digest", "digest_sent_at", "user"], name="notification_digest_idx")]

    def __str__(self) -> str:
        return f"{self.event} for user #{self.user_id}"

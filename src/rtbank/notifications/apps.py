from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Notifications: e-mail and SMS channels, per-user preferences, digests."""

    name = "rtbank.notifications"
    label = "notifications"

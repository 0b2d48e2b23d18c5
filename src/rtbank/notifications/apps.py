from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Notifications: e-mail and SMS channels, per-user preferences, digests."""

    name = "rtbank.notifications"
    label = "notifications"

    def ready(self) -> None:
        from rtbank.notifications import services
        from rtbank.work.registry import WorkKind, register_kind

        register_kind(WorkKind(services.NOTIFY, services.deliver, batch_size=20, order=60))

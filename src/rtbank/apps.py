from django.apps import AppConfig


class RtbankConfig(AppConfig):
    """The project itself: system checks and commands that span the apps (up, demo, stats)."""

    name = "rtbank"
    label = "rtbank"
    verbose_name = "rtbank"

    def ready(self) -> None:
        from rtbank import checks  # noqa: F401  (registers the system checks)

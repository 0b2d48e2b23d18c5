from django.apps import AppConfig


class WorkConfig(AppConfig):
    """Work rows, leases, retries, the worker loop and the scheduler."""

    name = "rtbank.work"
    label = "work"

    def ready(self) -> None:
        from rtbank.work import scheduler

        scheduler.register()

from django.apps import AppConfig


class EventlogConfig(AppConfig):
    """One structured event log every service writes to (who, what, when, outcome)."""

    name = "rtbank.eventlog"
    label = "eventlog"

from django.apps import AppConfig


class RulesConfig(AppConfig):
    """Trigger rules, the forwarding outbox, the cleanup service."""

    name = "rtbank.rules"
    label = "rules"

from django.apps import AppConfig


class AuditsConfig(AppConfig):
    """Audits: anonymised copies, distribution, collection of returns, QA of returns."""

    name = "rtbank.audits"
    label = "audits"

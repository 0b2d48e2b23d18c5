from django.apps import AppConfig


class InstitutionsConfig(AppConfig):
    """Participating institutions and their DICOM nodes (senders, destinations, harvest sources)."""

    name = "rtbank.institutions"
    label = "institutions"

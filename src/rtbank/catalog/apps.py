from django.apps import AppConfig


class CatalogConfig(AppConfig):
    """Patients … instances, RT objects, references, plan bundles, and the blob store."""

    name = "rtbank.catalog"
    label = "catalog"

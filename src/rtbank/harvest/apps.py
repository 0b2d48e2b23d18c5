from django.apps import AppConfig


class HarvestConfig(AppConfig):
    """The harvester: sources, runs, the reference walk, manifests, statistics."""

    name = "rtbank.harvest"
    label = "harvest"

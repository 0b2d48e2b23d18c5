from django.apps import AppConfig


class IngestConfig(AppConfig):
    """The way in: DICOM receiver, spool, `rtbank import`, and the ingest/analysis work stages."""

    name = "rtbank.ingest"
    label = "ingest"

    def ready(self) -> None:
        from rtbank.ingest import pipeline

        pipeline.register()

from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    """RT analysis: DVH service, metrics, ROI name mapping, completeness, protocol QA, CSV."""

    name = "rtbank.analysis"
    label = "analysis"

from django.apps import AppConfig


class ViewerConfig(AppConfig):
    """The plan viewer: slice and geometry endpoints, static JS."""

    name = "rtbank.viewer"
    label = "viewer"

from django.apps import AppConfig


class WebConfig(AppConfig):
    """Pages, templates and static files of the web interface."""

    name = "rtbank.web"
    label = "web"

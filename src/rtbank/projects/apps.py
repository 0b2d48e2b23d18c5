from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    """Research projects, grants, data assignment, the one access helper and the access log."""

    name = "rtbank.projects"
    label = "projects"

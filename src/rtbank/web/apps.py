from django.apps import AppConfig


class WebConfig(AppConfig):
    """Pages, templates and static files of the web interface."""

    name = "rtbank.web"
    label = "web"
    nav_items = [("Inbox", "inbox", lambda request: _may_route(request.user))]


def _may_route(user: object) -> bool:
    from rtbank.projects.access import is_site_admin

    profile = getattr(user, "profile", None)
    return is_site_admin(user) or bool(profile and profile.has_role("data_manager"))

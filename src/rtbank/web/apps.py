from django.apps import AppConfig


class WebConfig(AppConfig):
    """Pages, templates and static files of the web interface."""

    name = "rtbank.web"
    label = "web"
    nav_items = [
        ("Inbox", "inbox", lambda request: _may_route(request.user)),
        ("Upload", "upload", lambda request: _may_upload(request.user)),
        ("Access log", "access_log", lambda request: _site_admin(request.user)),
        ("Notifications", "notifications", lambda request: request.user.is_authenticated),
    ]

    def ready(self) -> None:
        # Uploads stream to RTBANK_HOME/uploads (not a RAM-backed /tmp); Django's checks require the folder.
        import os

        from django.conf import settings

        try:
            os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, exist_ok=True)
        except OSError:
            pass  # reported by Django's system check (files.E001) with the path


def _site_admin(user: object) -> bool:
    from rtbank.projects.access import is_site_admin

    return is_site_admin(user)


def _may_route(user: object) -> bool:
    profile = getattr(user, "profile", None)
    return _site_admin(user) or bool(profile and profile.institution_id and profile.has_role("data_manager"))


def _may_upload(user: object) -> bool:
    profile = getattr(user, "profile", None)
    return bool(profile and profile.institution_id and profile.has_role("uploader"))

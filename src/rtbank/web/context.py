"""Template context shared by every page, including the navigation each area contributes.

An app adds entries to the top navigation with a ``nav_items`` attribute on its AppConfig:
``[(label, url_name, predicate)]`` where ``predicate(request) -> bool`` says who sees the link. No app
edits the base template to appear in the menu.
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from rtbank import __version__


def site(request: HttpRequest) -> dict[str, object]:
    return {"rtbank_version": __version__, "rtbank_ae_title": settings.AE_TITLE, "nav": _nav(request)}


def _nav(request: HttpRequest) -> list[tuple[str, str]]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    items = []
    for config in apps.get_app_configs():
        for label, url_name, predicate in getattr(config, "nav_items", ()):
            try:
                if predicate(request):
                    items.append((label, reverse(url_name)))
            except NoReverseMatch:
                continue
    return items

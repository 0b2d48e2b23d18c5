"""Template context shared by every page."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from rtbank import __version__


def site(request: HttpRequest) -> dict[str, object]:
    return {"rtbank_version": __version__, "rtbank_ae_title": settings.AE_TITLE}

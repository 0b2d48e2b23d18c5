"""Display helpers for DICOM values in templates (always autoescaped: names are shown as text)."""

from __future__ import annotations

from django import template
from django.http import QueryDict

register = template.Library()


@register.filter
def person_name(value: str) -> str:
    """``FAMILY^GIVEN^MIDDLE`` → ``FAMILY, GIVEN MIDDLE`` (first component group only)."""
    if not value:
        return ""
    parts = [p for p in str(value).split("=")[0].split("^")]
    family, rest = parts[0], " ".join(p for p in parts[1:] if p)
    return f"{family}, {rest}" if rest else family


@register.filter
def short_uid(value: str, keep: int = 12) -> str:
    value = str(value or "")
    return value if len(value) <= keep + 1 else f"…{value[-keep:]}"


@register.filter
def label(value: str) -> str:
    return str(value or "").replace("_", " ")


@register.filter
def get(mapping: dict, key: object) -> object:
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.simple_tag(takes_context=True)
def page_query(context: template.Context, param: str, number: int) -> str:
    """The current query string with ``param`` set to ``number`` (keeps filters while paging)."""
    request = context.get("request")
    query = request.GET.copy() if request is not None else QueryDict(mutable=True)
    query[param] = str(number)
    return "?" + query.urlencode()


@register.simple_tag(takes_context=True)
def panels(context: template.Context, kind: str) -> str:
    """Sections other areas contribute to this page (see :mod:`rtbank.web.panels`)."""
    from rtbank.web.panels import render_panels

    return render_panels(kind, context["request"], context.flatten())

"""Panels: other areas add sections to the project, subject and plan pages without editing their templates.

An app declares, on its AppConfig::

    project_panels = [
        ("analysis/panels/project_dvh.html", lambda access, project: access.has(project, "view"))
    ]
    subject_panels = [...]   # context also has ``subject`` and ``instances`` (what the project holds of them)
    plan_panels = [...]      # context also has ``subject`` and ``plan`` (the plan's Instance) and ``rtplan``

Each entry is ``(template_name, predicate(access, project) -> bool)``. The page renders every panel whose
predicate is true, in app order, with the page's context: ``project``, ``access``
(:class:`rtbank.projects.access.Access` — the only way to read patient data; a panel that reads more must ask
it, e.g. ``access.has(project, "images")``), ``label`` (how this user may name the patient) and the page's
objects. A panel that fails to render shows a short error box instead of breaking the page (and logs it).
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.http import HttpRequest
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

logger = logging.getLogger("rtbank.web.panels")
KINDS = ("project", "subject", "plan")


def panels(kind: str) -> list[tuple[str, Any]]:
    if kind not in KINDS:
        raise ValueError(f"unknown panel kind {kind!r}; use one of {', '.join(KINDS)}")
    found = []
    for config in apps.get_app_configs():
        found += list(getattr(config, f"{kind}_panels", ()))
    return found


def render_panels(kind: str, request: HttpRequest, context: dict[str, Any]) -> SafeString:
    access, project = context["access"], context["project"]
    parts = []
    for template_name, predicate in panels(kind):
        try:
            if not predicate(access, project):
                continue
            parts.append(render_to_string(template_name, context, request=request))
        except TemplateDoesNotExist:
            logger.error("panel template %s does not exist", template_name)
            parts.append(
                format_html('<section class="card panel error">Panel {} is missing.</section>', template_name)
            )
        except Exception:  # noqa: BLE001 - one area's broken panel must not take the page down
            logger.exception("panel %s failed", template_name)
            parts.append(
                format_html('<section class="card panel error">Panel {} failed.</section>', template_name)
            )
    return mark_safe("".join(parts))  # noqa: S308 - each part was rendered by an autoescaping template

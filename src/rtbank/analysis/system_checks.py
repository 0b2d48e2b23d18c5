"""System check: refuse an unreadable RTBANK_ANALYSIS_METRICS at start-up instead of failing every DVH."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from rtbank.dicom.dvh import parse_metric


@register()
def check_analysis_metrics(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    for name in getattr(settings, "ANALYSIS_METRICS", []):
        try:
            parse_metric(name)
        except ValueError as exc:
            errors.append(
                Error(
                    f"RTBANK_ANALYSIS_METRICS: {exc}",
                    hint="e.g. D95%,V20Gy[%],D0.03cc",
                    id="rtbank.analysis.E001",
                )
            )
    return errors

"""Template tags for the viewer's panels on other areas' pages."""

from __future__ import annotations

from typing import Any

from django import template

from rtbank.catalog.models import Instance, RTPlan, StructureSet
from rtbank.dicom.sop import VOLUME_MODALITIES

register = template.Library()


@register.simple_tag
def viewer_targets(instances: Any) -> list[dict[str, str]]:
    """What of a subject can be opened in the viewer: plans, structure sets, image series (from the
    instances the page already cut down to the project)."""
    pks = list(instances or [])
    rows = Instance.objects.filter(pk__in=pks)
    out: list[dict[str, str]] = []
    plans = RTPlan.objects.filter(instance__in=rows.filter(kind__in=("plan", "ion_plan"))).select_related(
        "instance"
    )
    for plan in plans.order_by("plan_date", "label"):
        out.append({"uid": plan.instance.sop_instance_uid, "what": "plan", "label": plan.label or plan.name})
    for ss in StructureSet.objects.filter(instance__in=rows.filter(kind="structure_set")).select_related(
        "instance"
    ):
        out.append(
            {"uid": ss.instance.sop_instance_uid, "what": "structure set", "label": ss.label or ss.name}
        )
    series = (
        rows.filter(kind="image", series__modality__in=VOLUME_MODALITIES)
        .values_list("series__uid", "series__modality", "series__description")
        .distinct()
    )
    for uid, modality, description in sorted(set(series), key=lambda s: (s[1], s[2], s[0])):
        out.append({"uid": uid, "what": f"{modality} series", "label": description})
    return out

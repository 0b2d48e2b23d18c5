"""ROI rows for the viewer: original name, the project's standard name where a mapping exists, colour.

Standard names come from the analysis area's ROI name mapping (``rtbank.analysis.mapping.MappingIndex``):
the verdicts stored per project, institution and original name. The viewer shows the mapping of the
project it was opened through. Without the analysis area (or without rules) names stay as received.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rtbank.catalog.models import Roi
from rtbank.projects.models import Project
from rtbank.viewer.dataset import ObjectFile


def standard_names(project: Project, institution_id: int | None, names: Iterable[str]) -> dict[str, str]:
    """Original name → standard name, for the names the project's rules map (conflicts are left out)."""
    try:
        from rtbank.analysis.mapping import MappingIndex
    except ImportError:  # the analysis area is optional for the viewer
        return {}
    index = MappingIndex.of(project)
    key = institution_id or 0
    found = {name: index.standard(key, name) for name in names}
    return {name: standard for name, standard in found.items() if standard}


def roi_rows(project: Project, structure_set: ObjectFile | None) -> list[dict[str, Any]]:
    """The ROIs of the structure set in ROI-number order, as the page's ROI list shows them."""
    if structure_set is None:
        return []
    rois = list(Roi.objects.filter(structure_set__instance_id=structure_set.pk).order_by("number"))
    standard = standard_names(project, structure_set.institution_id, {r.name for r in rois})
    return [
        {
            "number": r.number,
            "name": r.name,
            "standard": standard.get(r.name, ""),
            "color": r.color if _is_colour(r.color) else "#ffff00",
            "type": r.interpreted_type,
            "empty": r.contour_count == 0,
        }
        for r in rois
    ]


def _is_colour(value: str) -> bool:
    return len(value) == 7 and value.startswith("#") and all(c in "0123456789abcdefABCDEF" for c in value[1:])

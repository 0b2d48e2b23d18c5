"""DVH curves for display, from files: what the viewer computes when no stored DVH fits (no Django).

Runs in a separate process in the web server (the calculation is seconds of CPU for a large structure
set, and must not hold the web process's interpreter lock while people scroll), so it takes paths and
returns plain data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pydicom

from rtbank.dicom.contours import StructureSet
from rtbank.dicom.dosegrid import DoseGrid, combine_plan_doses
from rtbank.dicom.dvh import ENGINE_VERSION, dvhs_for_structure_set


def dvh_curves(rtstruct_path: str, rtdose_paths: Sequence[str], fractions: int | None) -> dict[str, Any]:
    """``{"status": "ok", "engine": …, "rois": [{number, volume_cc, covered_cc, step_gy, cumulative_cc,
    flags}]}`` for every ROI with contours, or ``{"status": "error", "reason": …}``."""
    try:
        grids = [DoseGrid.from_dataset(pydicom.dcmread(p, force=True)) for p in rtdose_paths]
        grid = combine_plan_doses(grids, fractions)
        contours = StructureSet.from_dataset(pydicom.dcmread(rtstruct_path, force=True))
        results = dvhs_for_structure_set(contours, grid)
    except (ValueError, AttributeError, OSError) as exc:
        return {"status": "error", "reason": str(exc)[:300], "rois": []}
    rois = []
    for result in results:
        curve = result.histogram.curve()
        rois.append(
            {
                "number": result.roi.number,
                "volume_cc": _finite(result.volume_cc),
                "covered_cc": _finite(result.covered_volume_cc),
                "step_gy": curve.dose_step_gy,
                "cumulative_cc": [round(v, 4) for v in curve.cumulative_cc],
                "flags": list(result.flags),
            }
        )
    return {"status": "ok", "source": "computed", "engine": ENGINE_VERSION, "rois": rois}


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)

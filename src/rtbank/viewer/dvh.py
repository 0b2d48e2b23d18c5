"""The DVH panel beside the image: the stored DVHs of the analysis area, else computed here on demand.

Stored curves (``rtbank.analysis.models.PlanDvh``) are used when they were calculated from the same
structure set and doses the viewer shows. Otherwise the viewer computes the DVHs itself with
:func:`rtbank.dicom.dvh.dvhs_for_structure_set` in one background thread (a 30-ROI plan takes seconds)
and keeps the curves in a bounded in-process cache; the page polls until they are there.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rtbank.dicom.dvh import ENGINE_VERSION, dvhs_for_structure_set
from rtbank.viewer import loading
from rtbank.viewer.cache import LruCache
from rtbank.viewer.dataset import ViewerDataset

logger = logging.getLogger("rtbank.viewer")
COMPUTED: LruCache[dict[str, Any]] = LruCache(
    "dvh", 16 * loading.MB, lambda d: 2048 * len(d.get("rois", [])) + 256
)
_RUNNING: set[tuple[Any, ...]] = set()
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtbank-viewer-dvh")


def dvh_panel(dataset: ViewerDataset) -> dict[str, Any]:
    """``{"status": "ok" | "computing" | "unavailable" | "error", "source": …, "rois": [...]}``."""
    ss, doses = dataset.structure_set, dataset.doses
    if ss is None or not doses:
        return {"status": "unavailable", "reason": "a DVH needs a structure set and a dose", "rois": []}
    stored = _stored(dataset)
    if stored is not None:
        return stored
    fractions = dataset.plan.fractions_planned if dataset.plan else None
    key = ("dvh", ss.blob_key, tuple(sorted(d.blob_key for d in doses)), fractions, ENGINE_VERSION)
    done = COMPUTED.peek(key)
    if done is not None:
        return done
    if key not in _RUNNING:
        _RUNNING.add(key)
        _EXECUTOR.submit(_compute, key, ss, list(doses), fractions)
    return {"status": "computing", "rois": []}


def _compute(key: tuple[Any, ...], ss: Any, doses: list[Any], fractions: int | None) -> None:
    try:
        loaded = loading.dose(doses, fractions)
        if loaded.grid is None:
            COMPUTED.put(key, {"status": "error", "reason": loaded.error, "rois": []})
            return
        contours = loading.structures(ss).contours
        results = dvhs_for_structure_set(contours, loaded.grid)
        rois = []
        for result in results:
            curve = result.histogram.curve()
            rois.append(
                {
                    "number": result.roi.number,
                    "volume_cc": _round(result.volume_cc),
                    "covered_cc": _round(result.covered_volume_cc),
                    "step_gy": curve.dose_step_gy,
                    "cumulative_cc": [round(v, 4) for v in curve.cumulative_cc],
                    "flags": list(result.flags),
                }
            )
        COMPUTED.put(key, {"status": "ok", "source": "computed", "engine": ENGINE_VERSION, "rois": rois})
    except Exception as exc:  # noqa: BLE001 - reported to the page, never a dead thread
        logger.exception("viewer DVH calculation failed")
        COMPUTED.put(key, {"status": "error", "reason": str(exc)[:300], "rois": []})
    finally:
        _RUNNING.discard(key)


def _stored(dataset: ViewerDataset) -> dict[str, Any] | None:
    try:
        from rtbank.analysis.models import PlanDvh
    except ImportError:
        return None
    if dataset.plan is None:
        return None
    found = PlanDvh.objects.filter(plan_id=dataset.plan.instance_id, state="ok").first()
    if found is None or dataset.structure_set is None or found.structure_set_id != dataset.structure_set.pk:
        return None
    if sorted(found.dose_ids or []) != sorted(d.pk for d in dataset.doses):
        return None
    rois = [
        {
            "number": r.roi_number,
            "volume_cc": r.volume_cc,
            "covered_cc": r.covered_volume_cc,
            "step_gy": r.dose_step_gy,
            "cumulative_cc": r.cumulative_cc(),
            "flags": list(r.flags or []),
        }
        for r in found.rois.order_by("roi_number")
    ]
    return {"status": "ok", "source": "stored", "engine": found.engine_version, "rois": rois}


def _round(value: float) -> float | None:
    return None if value != value else round(float(value), 4)  # NaN → None (JSON has no NaN)

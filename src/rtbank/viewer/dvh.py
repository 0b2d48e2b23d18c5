"""The DVH panel beside the image: the stored DVHs of the analysis area, else computed here on demand.

Stored curves (``rtbank.analysis.models.PlanDvh``) are used when they were calculated from the same
structure set and doses the viewer shows. Otherwise the viewer computes the DVHs itself
(:func:`rtbank.dicom.imaging.curves.dvh_curves`, i.e. :func:`rtbank.dicom.dvh.dvhs_for_structure_set`) in a
separate process — seconds of CPU for a large structure set, which must not slow down scrolling in the web
process — and keeps the curves in a bounded in-process cache; the page polls until they are there.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from typing import Any

from rtbank.catalog.blobstore import blob_store
from rtbank.dicom.dvh import ENGINE_VERSION
from rtbank.dicom.imaging.curves import dvh_curves
from rtbank.viewer import loading
from rtbank.viewer.cache import LruCache
from rtbank.viewer.dataset import ViewerDataset

logger = logging.getLogger("rtbank.viewer")
COMPUTED: LruCache[dict[str, Any]] = LruCache(
    "dvh", 16 * loading.MB, lambda d: 2048 * len(d.get("rois", [])) + 256
)
_RUNNING: dict[tuple[Any, ...], Future[dict[str, Any]]] = {}
_LOCK = threading.Lock()
_POOL: ProcessPoolExecutor | None = None


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
    paths = [blob_store().local_path(f.blob_key) for f in (ss, *doses)]
    if any(p is None for p in paths):
        return {"status": "unavailable", "reason": "DVHs are calculated from local files only", "rois": []}
    with _LOCK:
        if key not in _RUNNING:
            future = _pool().submit(dvh_curves, str(paths[0]), [str(p) for p in paths[1:]], fractions)
            _RUNNING[key] = future
            future.add_done_callback(partial(_finished, key))
    return {"status": "computing", "rois": []}


def wait_for_running(timeout_s: float) -> None:
    """Block until the calculations under way are done (tests, benchmarks)."""
    with _LOCK:
        futures = list(_RUNNING.values())
    for future in futures:
        future.exception(timeout=timeout_s)


def _finished(key: tuple[Any, ...], future: Future[dict[str, Any]]) -> None:
    try:
        result = future.result()
    except Exception as exc:  # noqa: BLE001 - a crashed calculation is reported to the page
        logger.error("viewer DVH calculation failed: %s", exc)
        result = {"status": "error", "reason": str(exc)[:300], "rois": []}
    COMPUTED.put(key, result)
    with _LOCK:
        _RUNNING.pop(key, None)


def _pool() -> ProcessPoolExecutor:
    global _POOL
    if _POOL is None:
        # "spawn": a fresh interpreter, never a fork of a multi-threaded web worker.
        _POOL = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return _POOL


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

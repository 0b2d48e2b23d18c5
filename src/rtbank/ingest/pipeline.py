"""The explicit order of work after an object arrives (no signals):

register (ingest: parse, blob store, index) → analyse (plan bundles, references) → the stages of later
areas, called in order from :func:`analyse_patient`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from rtbank.catalog.bundles import refresh_patient_bundles
from rtbank.ingest import stages
from rtbank.work.models import WorkItem
from rtbank.work.registry import Batch, Poller, WorkKind, register_kind, register_poller

# The stages after analysis, in this order, each called with the patient id. Each area owns its function;
# adding a stage is one line here (explicit flow, no signals).
AFTER_ANALYSIS: list[str] = [
    "rtbank.rules.engine.evaluate_patient",  # trigger rules: assign, forward, notify
    "rtbank.analysis.stages.after_analysis",  # ROI mapping, completeness, DVH work rows, protocol QA
]


def analyse_patient(item: WorkItem, batch: Batch) -> dict[str, Any]:
    patient_id = int(item.payload["patient"])
    bundles = refresh_patient_bundles(patient_id)
    for dotted in AFTER_ANALYSIS:
        import_string(dotted)(patient_id)
    return {"plans": len(bundles)}


def register() -> None:
    register_kind(
        WorkKind(
            stages.INGEST,
            stages.ingest_item,
            batch_size=settings.WORK_BATCH,
            order=10,
            prepare=stages.prepare_ingest,
        )
    )
    register_kind(WorkKind(stages.ANALYSIS, analyse_patient, batch_size=8, order=20))
    register_poller(Poller("spool", stages.register_ready_files, every_s=0.2))

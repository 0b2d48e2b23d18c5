"""Ingest: spool item → parse → blob store → catalog, as work rows a worker runs in batches.

Every step is idempotent. The blob is hard-linked from the spool (the spool file stays until the batch has
committed), the blob directory is fsynced before the commit, and the row is marked done in the same
transaction as the catalog rows; only after the commit is the spool file removed. A worker killed at any
point leaves either nothing or a committed result, and the item is simply claimed again.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from django.db import transaction
from django.utils import timezone
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from rtbank.catalog.blobstore import LocalBlobStore, blob_store, make_key
from rtbank.catalog.indexing import (
    Filed,
    FilingCache,
    Source,
    StoredFile,
    attach_claimed,
    classify,
    file_object,
    prepare_hierarchy,
)
from rtbank.dicom.keys import InstanceKeys
from rtbank.dicom.validate import RejectedDicom, check_part10_bytes, dataset_offset
from rtbank.eventlog.models import Outcome
from rtbank.eventlog.services import log_event
from rtbank.ingest import spool
from rtbank.institutions.models import Institution
from rtbank.work import services as work
from rtbank.work.models import WorkItem
from rtbank.work.registry import Batch, PermanentError

logger = logging.getLogger("rtbank.ingest")
INGEST = "ingest"
ANALYSIS = "analysis"


def register_ready_files(worker_id: str, limit: int = 5000) -> int:
    """Turn files in ``spool/ready`` into ingest rows (idempotent), then move them to ``spool/queued``."""
    dirs = spool.spool_dirs()
    names = sorted(
        e.name for e in os.scandir(dirs.ready) if e.name.endswith(".dcm") and spool.ITEM_NAME.match(e.name)
    )
    names = names[:limit]
    if not names:
        return 0
    sources: dict[str, dict[str, Any]] = {}
    rows = []
    for name in names:
        source_id = spool.source_of(name)
        if source_id not in sources:
            sources[source_id] = spool.read_source(dirs, source_id)
        rows.append((name, {"source": source_id, **sources[source_id]}))
    with transaction.atomic():
        work.enqueue_many(INGEST, rows, priority=10)
    for name in names:
        try:
            os.rename(dirs.ready / name, dirs.queued / name)
        except FileNotFoundError:
            pass  # another worker registered it first
    return len(names)


@dataclass
class Parsed:
    path: Path
    data: bytes
    ds: Dataset
    keys: InstanceKeys
    transfer_syntax_uid: str
    source: Source


def prepare_ingest(items: list[WorkItem], batch: Batch) -> None:
    """Outside the batch transaction: read and parse every item, then create the hierarchy rows."""
    parsed: dict[int, Parsed | Exception] = {}
    for item in items:
        try:
            parsed[item.pk] = _parse(item, batch)
        except Exception as exc:  # noqa: BLE001 - reported per item by the handler
            parsed[item.pk] = exc
    batch.data["parsed"] = parsed
    cache: FilingCache = batch.data.setdefault("cache", FilingCache())
    prepare_hierarchy([(p.keys, p.source) for p in parsed.values() if isinstance(p, Parsed)], cache)


def _parse(item: WorkItem, batch: Batch) -> Parsed:
    dirs = spool.spool_dirs()
    if not spool.ITEM_NAME.match(item.key):
        raise PermanentError(f"not a spool item name: {item.key!r}")
    path = dirs.queued / item.key
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PermanentError("spool file is gone (already filed, or removed by hand)") from None
    source = _source(item.payload, item.key, batch)
    try:
        summary = check_part10_bytes(data)
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        keys = InstanceKeys.from_dataset(ds)
    except (RejectedDicom, InvalidDicomError, ValueError, TypeError, RecursionError) as exc:
        raise PermanentError(f"cannot file this object: {exc}") from exc
    source = classify(ds, keys, source)  # e.g. returned audit data: filed apart from clinical data
    return Parsed(path, data, ds, keys, summary.transfer_syntax_uid, source)


def ingest_item(item: WorkItem, batch: Batch) -> dict[str, Any] | None:
    """File one spool item (parsed by :func:`prepare_ingest`)."""
    parsed = batch.data.get("parsed", {}).get(item.pk)
    if parsed is None:  # run without prepare (e.g. a single item)
        prepare_ingest([item], batch)
        parsed = batch.data["parsed"][item.pk]
    if isinstance(parsed, PermanentError):
        log_event(
            "worker",
            "ingest_rejected",
            outcome=Outcome.REJECTED,
            object_type="spool",
            object_id=item.key,
            message=str(parsed)[:500],
        )
        raise parsed
    if isinstance(parsed, Exception):
        raise parsed
    store: LocalBlobStore = batch.data.setdefault("store", blob_store())
    cache: FilingCache = batch.data.setdefault("cache", FilingCache())
    data = parsed.data
    file_sha = hashlib.sha256(data).hexdigest()
    stored = StoredFile(
        blob_key=make_key(file_sha, timezone.now()),
        size=len(data),
        file_sha256=file_sha,
        content_sha256=hashlib.sha256(memoryview(data)[dataset_offset(data) :]).hexdigest(),
        transfer_syntax_uid=parsed.transfer_syntax_uid,
    )
    result = file_object(parsed.ds, parsed.keys, stored, parsed.source, cache)
    if result.instance is not None and result.outcome != Filed.QUARANTINED:
        attach_claimed(result.instance, parsed.source)
    if result.outcome != Filed.DUPLICATE:
        store.put_file(parsed.path, stored.blob_key)
        _once(batch, "sync-blobs", lambda: batch.before_commit.append(store.sync))
    path = parsed.path
    batch.after_commit.append(lambda: path.unlink(missing_ok=True))
    _once(batch, "finish", lambda: batch.before_commit.append(lambda: _finish_batch(batch)))
    if result.patient is not None:
        # C-STORE in is an access to patient data: one access-log row per (source, patient) per batch.
        access: dict[tuple[str, str, int], int] = batch.data.setdefault("access", {})
        key = (parsed.source.actor, spool.source_of(item.key), result.patient.pk)
        access[key] = access.get(key, 0) + 1
    return {"outcome": result.outcome.value, "instance": result.instance.pk if result.instance else None}


def _source(payload: dict[str, Any], name: str, batch: Batch) -> Source:
    code = payload.get("institution") or ""
    institutions: dict[str, int | None] = batch.data.setdefault("institutions", {})
    if code not in institutions:
        institutions[code] = (
            Institution.objects.filter(code=code).values_list("pk", flat=True).first() if code else None
        )
    return Source(
        via=payload.get("via", "dicom"),
        institution_id=institutions[code],
        institution_code=code if institutions[code] else "",
        node_id=payload.get("node_id"),
        calling_ae=payload.get("calling_ae", ""),
        called_ae=payload.get("called_ae", ""),
        spool_name=name,
        provenance={
            k: payload[k] for k in ("harvest_run", "source_node", "upload", "import_path") if k in payload
        },
    )


def _once(batch: Batch, key: str, action: Any) -> None:
    flags: set[str] = batch.data.setdefault("once", set())
    if key not in flags:
        flags.add(key)
        action()


def _finish_batch(batch: Batch) -> None:
    """Before commit: the next stage for every touched patient, and the access-log rows."""
    from rtbank.projects.models import AccessLog

    access: dict[tuple[str, str, int], int] = batch.data.get("access", {})
    for patient_id in sorted({patient for (_, _, patient) in access}):
        work.enqueue(ANALYSIS, f"patient:{patient_id}", {"patient": patient_id})
    AccessLog.objects.bulk_create(
        AccessLog(
            actor=actor,
            action="store_in",
            object_type="patient",
            object_id=str(patient),
            outcome="allowed",
            details={"source": source_id, "instances": n},
        )
        for (actor, source_id, patient), n in access.items()
    )


def spool_path(name: str) -> Path:
    return spool.spool_dirs().queued / name

"""Returns uploaded on the audit page (sent by e-mail or a file share instead of DICOM).

Each file is checked before anything is stored: only objects recognised as returns of *this* audit (by
the copy's UIDs or pseudonyms, :func:`rtbank.audits.collection.recognise`) go into the spool; anything
else is refused with a message, so an upload here can never bring in clinical data. The worker then files
and attaches them exactly like returns that came over DICOM.
"""

from __future__ import annotations

import io
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from rtbank.audits.collection import recognise
from rtbank.audits.models import Audit, Participant
from rtbank.dicom.validate import RejectedDicom
from rtbank.ingest.importer import MAX_OBJECT_BYTES, NotDicom, SpoolWriter, as_part10
from rtbank.projects.access import ALLOWED, Access


def receive_returns(access: Access, audit: Audit, files: list[Any]) -> list[tuple[str, str]]:
    """Spool the recognised returns among ``files``; (file name, what happened) for each."""
    writer = SpoolWriter({"via": "upload", "upload": f"audit:{audit.pk}"})
    names = dict(Participant.objects.filter(audit=audit).values_list("pk", "name"))
    results: list[tuple[str, str]] = []
    for uploaded in files:
        name = str(getattr(uploaded, "name", "file"))[:200]
        results.append((name, _one(uploaded, audit, names, writer)))
    writer.sync()
    stored = sum(1 for _, r in results if r.startswith("stored"))
    access.record(
        "audit_upload", "audit", audit.pk, ALLOWED, project=audit.project, files=len(results), stored=stored
    )
    return results


def _one(uploaded: Any, audit: Audit, names: dict[int, str], writer: SpoolWriter) -> str:
    if getattr(uploaded, "size", 0) > MAX_OBJECT_BYTES:
        return "refused: too large for one DICOM object"
    try:
        data = as_part10(uploaded.read())
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        found = recognise(ds)
    except (NotDicom, RejectedDicom, InvalidDicomError, ValueError, TypeError, EOFError) as exc:
        return f"refused: not a readable DICOM object ({str(exc)[:120]})"
    if found is None or found[0] not in names:
        return "refused: not recognised as a return of this audit (no UID or pseudonym of its copies)"
    writer.add(data)
    return f"stored: a return of {names[found[0]]}; it is attached as soon as the worker has filed it"

"""Talking to a harvest source: C-FIND, C-MOVE (to rtbank's receiver) and C-GET over one association.

Every failure a source can produce becomes one of two exceptions: :class:`Transient` (refused or aborted
association, timeout, out-of-resources or unable-to-process statuses, a C-MOVE with failed
sub-operations — retried with back-off by the step) or :class:`QueryRefused` (the source cannot answer
this kind of query — the record-finding fallback chain moves to the next level).
"""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from rtbank.dicom import sop

logger = logging.getLogger("rtbank.harvest")
PENDING = (0xFF00, 0xFF01)
# The storage classes a C-GET may bring (RT objects and volume images); far below the 128-context limit.
GET_CLASSES = sorted(
    {
        sop.RT_PLAN,
        sop.RT_ION_PLAN,
        sop.RT_STRUCTURE_SET,
        sop.RT_DOSE,
        sop.RT_BEAMS_RECORD,
        sop.RT_ION_BEAMS_RECORD,
        sop.RT_BRACHY_RECORD,
        sop.RT_SUMMARY_RECORD,
        sop.SPATIAL_REGISTRATION,
        sop.DEFORMABLE_REGISTRATION,
        sop.RT_IMAGE,
        *sop.VOLUME_IMAGE_CLASSES,
        *sop.PRIVATE_STORAGE_CLASSES,
    }
)
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.5",
]


class Transient(Exception):
    """Worth retrying later."""


class Unreachable(Transient):
    """No association: the source cannot be reached or refuses us (retry the step later)."""


class QueryRefused(Exception):
    """The source refuses or cannot match this query (try another query level)."""


@dataclass
class RetrieveResult:
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_uids: list[str] = field(default_factory=list)
    status: int = 0


@dataclass(frozen=True)
class Peer:
    ae_title: str
    host: str
    port: int
    name: str = ""


class Connection:
    """One association with a source. Use :func:`connect`."""

    def __init__(
        self, assoc: Any, peer: Peer, received: list[bytes], on_progress: Callable[[], None]
    ) -> None:
        self.assoc = assoc
        self.peer = peer
        self._received = received
        self._progress = on_progress

    def find(self, level: str, keys: dict[str, Any]) -> list[Dataset]:
        ds = Dataset()
        ds.QueryRetrieveLevel = level
        for keyword, value in keys.items():
            setattr(ds, keyword, value)
        answers: list[Dataset] = []
        final = None
        for status, identifier in self._run(
            lambda: self.assoc.send_c_find(ds, StudyRootQueryRetrieveInformationModelFind)
        ):
            code = _code(status)
            if code in PENDING and identifier is not None:
                answers.append(identifier)
            else:
                final = code
        if final is None:
            raise Transient(f"{self.peer.name}: C-FIND ended without a final status (association lost)")
        if final == 0xA700:
            raise Transient(f"{self.peer.name}: C-FIND refused: out of resources (0xA700)")
        if final != 0x0000:
            raise QueryRefused(f"{self.peer.name}: C-FIND at {level} level failed with status 0x{final:04X}")
        return answers

    def move(self, level: str, keys: dict[str, Any], destination: str) -> RetrieveResult:
        ds = _identifier(level, keys)
        return self._retrieve(
            "C-MOVE",
            lambda: self.assoc.send_c_move(ds, destination, StudyRootQueryRetrieveInformationModelMove),
        )

    def get(self, level: str, keys: dict[str, Any]) -> tuple[RetrieveResult, list[bytes]]:
        ds = _identifier(level, keys)
        self._received.clear()
        result = self._retrieve(
            "C-GET", lambda: self.assoc.send_c_get(ds, StudyRootQueryRetrieveInformationModelGet)
        )
        data = list(self._received)
        self._received.clear()
        return result, data

    def _retrieve(self, what: str, send: Callable[[], Iterator[Any]]) -> RetrieveResult:
        result = RetrieveResult(status=-1)
        for status, identifier in self._run(send):
            code = _code(status)
            for attr, name in (
                ("completed", "NumberOfCompletedSuboperations"),
                ("failed", "NumberOfFailedSuboperations"),
                ("warning", "NumberOfWarningSuboperations"),
            ):
                if status is not None and name in status:
                    setattr(result, attr, int(status.get(name) or 0))
            if code in PENDING:
                self._progress()
                continue
            result.status = code if code is not None else -1
            if identifier is not None and "FailedSOPInstanceUIDList" in identifier:
                value = identifier.FailedSOPInstanceUIDList
                result.failed_uids = [
                    str(v)
                    for v in (value if isinstance(value, list | pydicom.multival.MultiValue) else [value])
                    if v
                ]
        if result.status == -1:
            raise Transient(f"{self.peer.name}: {what} ended without a final status (association lost)")
        if result.status in (0xA701, 0xA702, 0xA700):
            raise Transient(f"{self.peer.name}: {what} refused: out of resources (0x{result.status:04X})")
        if result.status == 0xA801:
            raise Transient(
                f"{self.peer.name}: {what} refused: move destination unknown (0xA801); register "
                f"rtbank's AE title as a DICOM modality at the source"
            )
        if result.status == 0xFE00:
            raise Transient(f"{self.peer.name}: {what} cancelled by the source")
        if result.status not in (0x0000, 0xB000):
            raise Transient(f"{self.peer.name}: {what} failed with status 0x{result.status:04X}")
        if result.failed or result.status == 0xB000:
            raise Transient(
                f"{self.peer.name}: {what} had {result.failed} failed sub-operation(s) "
                f"(status 0x{result.status:04X})"
            )
        return result

    def _run(self, send: Callable[[], Iterator[Any]]) -> Iterator[tuple[Any, Any]]:
        if not self.assoc.is_established:
            raise Transient(f"{self.peer.name}: association lost")
        try:
            yield from send()
        except (RuntimeError, OSError, ValueError) as exc:
            raise Transient(f"{self.peer.name}: {type(exc).__name__}: {exc}") from None
        if self.assoc.is_aborted:
            raise Transient(f"{self.peer.name}: association aborted by the source")


def _code(status: Dataset | None) -> int | None:
    if status is None or "Status" not in status:
        return None
    return int(status.Status)


def _identifier(level: str, keys: dict[str, Any]) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


@contextmanager
def connect(
    peer: Peer,
    *,
    calling_ae: str,
    timeout: float,
    with_get: bool,
    on_progress: Callable[[], None] = lambda: None,
) -> Iterator[Connection]:
    """An association for C-FIND and C-MOVE (and C-GET with storage roles when ``with_get``)."""
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.connection_timeout = min(timeout, 30)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    received: list[bytes] = []
    roles = []
    handlers: list[Any] = []
    if with_get:
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        for uid in GET_CLASSES:
            ae.add_requested_context(uid, TRANSFER_SYNTAXES)
            roles.append(build_role(uid, scp_role=True))

        def on_store(event: Any) -> int:
            received.append(event.encoded_dataset())
            on_progress()
            return 0x0000

        handlers.append((evt.EVT_C_STORE, on_store))
    try:
        assoc = ae.associate(
            peer.host, peer.port, ae_title=peer.ae_title, ext_neg=roles or None, evt_handlers=handlers or None
        )
    except (OSError, RuntimeError, ValueError) as exc:
        raise Unreachable(f"{peer.name}: cannot connect: {exc}") from None
    if not assoc.is_established:
        reason = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "not established"
        raise Unreachable(f"{peer.name}: association {reason} ({peer.ae_title}@{peer.host}:{peer.port})")
    sock = getattr(getattr(assoc, "dul", None), "socket", None)
    raw = getattr(sock, "socket", None)
    if isinstance(raw, socket.socket):
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        yield Connection(assoc, peer, received, on_progress)
    finally:
        if assoc.is_established:
            try:
                assoc.release()
            except (RuntimeError, OSError):
                assoc.abort()


def parse(data: bytes) -> Dataset:
    """A received object's header (without pixel data)."""
    return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)

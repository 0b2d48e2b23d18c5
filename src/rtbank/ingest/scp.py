"""The DICOM receiver: C-ECHO and C-STORE, kept thin.

Per C-STORE: pynetdicom streams the dataset into a spool temporary file as the PDUs arrive (bounded
memory, also for 100 MB doses); the handler checks the encoded structure without decoding values
(:mod:`rtbank.dicom.validate`), then fsync → rename into ``ready/`` → fsync the directory, and only then
answers success. No database access happens on this path: the AE policy is a snapshot refreshed by a
background thread, and log rows are written by another.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pynetdicom
from django.conf import settings
from pynetdicom import AE, _config, evt
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import Verification, register_uid
from pynetdicom.transport import ThreadedAssociationServer

from rtbank.dicom import status
from rtbank.dicom.sop import PRIVATE_STORAGE_CLASSES, storage_classes, transfer_syntaxes
from rtbank.dicom.validate import RejectedDicom, check_part10_file
from rtbank.eventlog.background import BackgroundWriter
from rtbank.eventlog.models import Outcome
from rtbank.eventlog.services import log_event
from rtbank.fileio import free_bytes
from rtbank.ingest import spool
from rtbank.ingest.policy import AssociationPolicy, Rejection, Sender

logger = logging.getLogger("rtbank.receiver")
RESERVE_CHECK_BYTES = 64 * 1024 * 1024


class SpoolTempFile:
    """Where pynetdicom writes an incoming dataset: a file in ``spool/incoming``.

    pynetdicom writes each PDU fragment as it arrives. A write error (disk full, file size limit) or a
    free-space reserve reached is remembered instead of raised, so the C-STORE handler can answer
    "out of resources" — an exception here would only abort the association without a status.
    """

    def __init__(self, directory: Path, reserve_bytes: int) -> None:
        fd, name = tempfile.mkstemp(suffix=".part", dir=directory)
        self.fd: int | None = fd
        self.name = name
        self.file = self  # pynetdicom calls .file.flush()
        self.error = ""
        self.written = 0
        self._reserve = reserve_bytes
        self._checked_at = 0
        self._check_space()

    def write(self, data: bytes) -> int:
        if self.error or self.fd is None:
            return len(data)
        try:
            view = memoryview(data)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
            self.written += len(data)
        except OSError as exc:
            self.error = f"write failed: {exc.strerror or exc}"
            self._release_space()
        if self.written - self._checked_at >= RESERVE_CHECK_BYTES:
            self._check_space()
        return len(data)

    def flush(self) -> None:
        """Data goes straight to the OS with os.write; durability comes from the handler's fsync."""

    def fsync(self) -> None:
        if self.fd is not None:
            os.fsync(self.fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _check_space(self) -> None:
        self._checked_at = self.written
        try:
            if free_bytes(Path(self.name).parent) < self._reserve:
                self.error = "free space on the spool is below the reserve"
                self._release_space()
        except OSError as exc:
            self.error = f"cannot check free space: {exc}"

    def _release_space(self) -> None:
        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass


class _TempFiles:
    """The factory pynetdicom calls for each incoming dataset, and a registry for the handler."""

    def __init__(self, directory: Path, reserve_bytes: int) -> None:
        self.directory = directory
        self.reserve_bytes = reserve_bytes
        self._open: dict[str, SpoolTempFile] = {}
        self._lock = threading.Lock()

    def __call__(self, delete: bool = False, mode: str = "wb", suffix: str = "") -> SpoolTempFile:
        tmp = SpoolTempFile(self.directory, self.reserve_bytes)
        with self._lock:
            self._open[tmp.name] = tmp
        return tmp

    def take(self, path: Path) -> SpoolTempFile | None:
        with self._lock:
            return self._open.pop(str(path), None)


@dataclass
class AssociationContext:
    """What the receiver knows about one accepted association."""

    source_id: str
    sender: Sender
    calling_ae: str
    called_ae: str
    peer: str
    seq: int = 0
    stored: int = 0
    refused: int = 0
    source_written: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def info(self) -> dict[str, Any]:
        return {
            "via": "dicom",
            "calling_ae": self.calling_ae,
            "called_ae": self.called_ae,
            "peer": self.peer,
            "node_id": self.sender.node_id,
            "node": self.sender.node_name,
            "institution": self.sender.institution,
            "receiver": f"{socket.gethostname()}:{os.getpid()}",
            "started": time.time(),
        }


class Receiver:
    def __init__(
        self, *, port: int | None = None, bind: str | None = None, ae_title: str | None = None
    ) -> None:
        self.port = settings.DICOM_PORT if port is None else port
        self.bind = bind or settings.BIND_ADDRESS
        self.ae_title = ae_title or settings.AE_TITLE
        self.dirs = spool.spool_dirs()
        self.policy = AssociationPolicy()
        self.log = BackgroundWriter()
        self.temp_files = _TempFiles(self.dirs.incoming, settings.SPOOL_RESERVE_MB * 1024 * 1024)
        self.server: ThreadedAssociationServer | None = None
        # One descriptor of ready/ shared by all threads: fsync(dir) per instance without an open() each time.
        self._ready_dir_fd = os.open(self.dirs.ready, os.O_RDONLY)

    # --- set-up -------------------------------------------------------------------------------------
    def build_ae(self) -> AE:
        ae = AE(ae_title=self.ae_title)
        # pynetdicom holds one whole PDU in memory: 256 KiB keeps that bounded (a 100 MB dose streams to disk
        # in fragments) while needing 16× fewer fragments than the common 16 KiB default.
        ae.maximum_pdu_size = 262144
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = settings.DICOM_TIMEOUT_S
        ae.maximum_associations = 64
        syntaxes = transfer_syntaxes()
        register_private_storage_classes()
        ae.add_supported_context(Verification)
        for uid in storage_classes():
            ae.add_supported_context(uid, syntaxes)
        ae.require_called_aet = False  # decided per association by the policy (own + project AE titles)
        return ae

    def serve(self) -> None:
        """Serve until SIGTERM/SIGINT."""
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file size limit must fail a write, not kill us
        _config.STORE_RECV_CHUNKED_DATASET = True
        # pynetdicom opens its chunk file with tempfile.NamedTemporaryFile; give it spool files instead.
        pynetdicom.dimse_messages.NamedTemporaryFile = self.temp_files  # type: ignore[attr-defined]
        self.log.start()
        self.policy.start()
        ae = self.build_ae()
        handlers = [
            (evt.EVT_REQUESTED, self.on_requested),
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_C_STORE, self.on_store),
            (evt.EVT_RELEASED, self.on_closed),
            (evt.EVT_ABORTED, self.on_closed),
        ]
        self.server = ae.make_server(
            (self.bind, self.port), evt_handlers=handlers, server_class=ReusePortServer
        )
        ae._servers.append(self.server)  # as ae.start_server does, so server.shutdown() can deregister it
        threading.Thread(target=self.server.serve_forever, name="dicom-server", daemon=True).start()
        logger.info(
            "DICOM receiver %s listening on %s:%d (pid %d)", self.ae_title, self.bind, self.port, os.getpid()
        )
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        self.server.shutdown()
        self.policy.stop()
        self.log.close()

    # --- handlers -----------------------------------------------------------------------------------
    def on_requested(self, event: evt.Event) -> None:
        rq = event.assoc.requestor.primitive
        calling, called = str(rq.calling_ae_title).strip(), str(rq.called_ae_title).strip()
        peer = str(event.assoc.requestor.address)
        decision = self.policy.decide(calling, called, peer)
        if isinstance(decision, Rejection):
            event.assoc.acse.send_reject(0x01, 0x01, decision.diagnostic)
            # As pynetdicom does for its own rejections: wait until the A-ASSOCIATE-RJ has gone out, or the
            # socket is shut down first and the peer sees an abort instead of the reason.
            event.assoc.kill()
            self.log.submit(
                lambda: log_event(
                    "receiver",
                    "association_rejected",
                    actor=f"{calling}@{peer}",
                    outcome=Outcome.REJECTED,
                    message=decision.reason,
                    details={"called_ae": called},
                )
            )
            return
        event.assoc.rtbank = AssociationContext(spool.new_source_id("a"), decision, calling, called, peer)

    def on_echo(self, event: evt.Event) -> int:
        return status.SUCCESS

    def on_store(self, event: evt.Event) -> int:
        ctx: AssociationContext | None = getattr(event.assoc, "rtbank", None)
        path = event.dataset_path
        tmp = self.temp_files.take(path)
        try:
            if ctx is None:
                return status.NOT_AUTHORISED
            return self._store(ctx, event, path, tmp)
        finally:
            if tmp is not None:
                tmp.close()
            if path.exists():
                path.unlink(missing_ok=True)

    def _store(self, ctx: AssociationContext, event: evt.Event, path: Path, tmp: SpoolTempFile | None) -> int:
        req = event.request
        try:
            if tmp is None or tmp.error:
                raise OSError(tmp.error if tmp else "incoming file missing")
            summary = check_part10_file(
                path, expected_sop_instance_uid=str(req.AffectedSOPInstanceUID).strip()
            )
            if summary.sop_class_uid != str(req.AffectedSOPClassUID).strip():
                return self._refuse(
                    ctx, status.DATASET_DOES_NOT_MATCH_SOP_CLASS, "dataset SOP class differs from the request"
                )
            with ctx.lock:
                if not ctx.source_written or not (self.dirs.ready / f"{ctx.source_id}.json").exists():
                    spool.write_source(self.dirs, ctx.source_id, ctx.info())
                    ctx.source_written = True
                ctx.seq += 1
                name = spool.item_name(ctx.source_id, ctx.seq)
            tmp.fsync()
            os.rename(path, self.dirs.ready / name)
            os.fsync(self._ready_dir_fd)
            ctx.stored += 1
            return status.SUCCESS
        except RejectedDicom as exc:
            return self._refuse(ctx, status.CANNOT_UNDERSTAND, str(exc))
        except OSError as exc:
            return self._refuse(ctx, status.OUT_OF_RESOURCES, f"could not store: {exc}")

    def _refuse(self, ctx: AssociationContext, code: int, reason: str) -> int:
        ctx.refused += 1
        actor = f"{ctx.calling_ae}@{ctx.peer}"
        self.log.submit(lambda: _log_refused(actor, code, reason))
        return code

    def on_closed(self, event: evt.Event) -> None:
        ctx: AssociationContext | None = getattr(event.assoc, "rtbank", None)
        if ctx is None or not (ctx.stored or ctx.refused):
            return
        self.log.submit(
            lambda: log_event(
                "receiver",
                "association_closed",
                actor=f"{ctx.calling_ae}@{ctx.peer}",
                outcome=Outcome.OK if not ctx.refused else Outcome.WARNING,
                object_type="source",
                object_id=ctx.source_id,
                message=f"{ctx.stored} stored, {ctx.refused} refused",
                details={"called_ae": ctx.called_ae, "node": ctx.sender.node_name},
            )
        )


def _log_refused(actor: str, code: int, reason: str) -> None:
    log_event(
        "receiver",
        "store_refused",
        actor=actor,
        outcome=Outcome.REJECTED,
        message=f"0x{code:04X}: {reason}",
        details={"status": code},
    )


def register_private_storage_classes() -> None:
    """pynetdicom only dispatches SOP classes it knows; tell it the private TPS classes are storage."""
    for uid, (name, _kind) in PRIVATE_STORAGE_CLASSES.items():
        keyword = "Private" + "".join(ch for ch in name.title() if ch.isalnum())
        if uid not in _registered:
            register_uid(uid, keyword, StorageServiceClass)
            _registered.add(uid)


_registered: set[str] = set()


class ReusePortServer(ThreadedAssociationServer):
    """Several receiver processes share one port (SO_REUSEPORT); accepted sockets get TCP_NODELAY."""

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address


def serve(processes: int = 1, port: int | None = None) -> int:
    """Run ``processes`` receiver processes on one port; with more than one, supervise child processes."""
    if processes <= 1:
        Receiver(port=port).serve()
        return 0
    args = [sys.executable, "-m", "rtbank.cli", "receive", "--processes", "1"]
    if port is not None:
        args += ["--port", str(port)]
    children = [subprocess.Popen(args) for _ in range(processes)]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        for i, child in enumerate(children):
            if child.poll() is not None:
                logger.warning(
                    "receiver process %d exited with %s; restarting it", child.pid, child.returncode
                )
                children[i] = subprocess.Popen(args)
    for child in children:
        child.terminate()
    for child in children:
        child.wait(10)
    return 0

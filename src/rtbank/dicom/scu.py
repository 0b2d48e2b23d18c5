"""Sending DICOM files to a C-STORE SCP: the demo loader, forwarding and audit distribution use this.

Files are sent as they are stored (pynetdicom's chunked send: no decode, no re-encode), over one
association per batch with exactly the presentation contexts the files need (at most 128 per association,
as PS3.8 allows). A send counts as done only when every sub-operation answered success.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from pynetdicom import AE, _config
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import register_uid

from rtbank.dicom.sop import PRIVATE_STORAGE_CLASSES

MAX_CONTEXTS = 128


@dataclass
class SendResult:
    sent: list[str] = field(default_factory=list)  # SOP Instance UIDs answered with success (or warning)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (UID or path, reason)

    @property
    def ok(self) -> bool:
        return not self.failed


def send_files(
    paths: Iterable[Path],
    host: str,
    port: int,
    *,
    called_ae: str,
    calling_ae: str = "RTBANK",
    timeout_s: float = 120,
    retries: int = 2,
    progress: Callable[[int], None] | None = None,
) -> SendResult:
    """C-STORE every file in ``paths``; groups files by needed contexts into as few associations as possible.

    Files whose association failed or whose response never came (a peer that stalls, or pynetdicom's
    sporadic response race, pydicom/pynetdicom#875) are sent again on a fresh association, up to
    ``retries`` times. Refusals with a DIMSE status are not retried: the peer has answered.
    """
    result = SendResult()
    files = []
    for path in paths:
        try:
            meta = read_file_meta_info(path)
            files.append(
                (
                    path,
                    str(meta.MediaStorageSOPClassUID),
                    str(meta.TransferSyntaxUID),
                    str(meta.MediaStorageSOPInstanceUID),
                )
            )
        except Exception as exc:  # noqa: BLE001 - one unreadable file is a failed item, not a crash
            result.failed.append((str(path), f"unreadable: {exc}"))
    pending = files
    for attempt in range(retries + 1):
        round_result = SendResult()
        for group in _groups(pending):
            _send_group(group, host, port, called_ae, calling_ae, timeout_s, round_result, progress)
        result.sent += round_result.sent
        transient = {uid for uid, reason in round_result.failed if reason in _TRANSIENT}
        final = [(uid, reason) for uid, reason in round_result.failed if uid not in transient]
        result.failed += final
        pending = [f for f in pending if f[3] in transient]
        if not pending:
            break
        if attempt == retries:
            result.failed += [(f[3], "no answer after retries") for f in pending]
    return result


_TRANSIENT = {"association refused or failed", "association lost", "no response"}


def _groups(files: list[tuple[Path, str, str, str]]) -> list[list[tuple[Path, str, str, str]]]:
    groups: list[list[tuple[Path, str, str, str]]] = []
    contexts: list[set[tuple[str, str]]] = []
    for item in files:
        key = (item[1], item[2])
        for i, ctx in enumerate(contexts):
            if key in ctx or len(ctx) < MAX_CONTEXTS:
                ctx.add(key)
                groups[i].append(item)
                break
        else:
            contexts.append({key})
            groups.append([item])
    return groups


def _send_group(
    group: list[tuple[Path, str, str, str]],
    host: str,
    port: int,
    called_ae: str,
    calling_ae: str,
    timeout_s: float,
    result: SendResult,
    progress: Callable[[int], None] | None,
) -> None:
    for uid in PRIVATE_STORAGE_CLASSES:
        register_uid(uid, "Private" + uid.replace(".", ""), StorageServiceClass)
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    for sop_class, syntax in sorted({(g[1], g[2]) for g in group}):
        ae.add_requested_context(sop_class, syntax)
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        assoc = ae.associate(host, port, ae_title=called_ae)
        if not assoc.is_established:
            result.failed += [(g[3], "association refused or failed") for g in group]
            return
        _nodelay(assoc)
        for path, _cls, _ts, uid in group:
            try:
                status = assoc.send_c_store(path)
            except (RuntimeError, OSError, ValueError):
                result.failed.append((uid, "association lost"))
                if not assoc.is_established:
                    break
                continue
            code = int(status.Status) if "Status" in status else -1
            if code == 0 or 0xB000 <= code <= 0xBFFF:
                result.sent.append(uid)
            else:
                result.failed.append((uid, f"status 0x{code:04X}" if code >= 0 else "no response"))
            if progress:
                progress(len(result.sent) + len(result.failed))
        if assoc.is_established:
            assoc.release()
        else:
            sent_or_failed = set(result.sent) | {f[0] for f in result.failed}
            result.failed += [(g[3], "association lost") for g in group if g[3] not in sent_or_failed]
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous


def _nodelay(assoc: object) -> None:
    sock = getattr(getattr(getattr(assoc, "dul", None), "socket", None), "socket", None)
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

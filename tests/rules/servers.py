"""Real servers started by tests on free loopback ports: an SMTP server (aiosmtpd) and an SMS webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.ports import free_port


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's API
        with self.lock:
            message = message_from_bytes(envelope.content)
            message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if address in m["X-Envelope-To"]]


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@dataclass
class Webhook:
    """What the SMS webhook received; ``status`` is what it answers (set 503 to play a broken provider)."""

    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    status: int = 200


@contextmanager
def sms_webhook() -> Iterator[tuple[Webhook, str]]:
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's API
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if hook.status == 200:
                hook.received.append(json.loads(body))
                hook.headers.append(dict(self.headers))
            self.send_response(hook.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook, f"http://127.0.0.1:{server.server_port}/sms"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class StoreLog:
    """What an in-process C-STORE SCP received (SOP Instance UIDs, in order, duplicates kept)."""

    uids: list[str] = field(default_factory=list)
    calling: list[str] = field(default_factory=list)


@contextmanager
def store_scp(ae_title: str = "DEST") -> Iterator[tuple[StoreLog, int]]:
    """A pynetdicom C-STORE SCP on a free loopback port that accepts every storage class rtbank knows."""
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import Verification

    from rtbank.dicom.sop import storage_classes, transfer_syntaxes

    log = StoreLog()

    def on_store(event: Any) -> int:
        log.uids.append(str(event.request.AffectedSOPInstanceUID))
        log.calling.append(str(event.assoc.requestor.ae_title).strip())
        return 0x0000

    ae = AE(ae_title=ae_title)
    ae.add_supported_context(Verification)
    for uid in storage_classes():
        ae.add_supported_context(uid, transfer_syntaxes())
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        yield log, port
    finally:
        server.shutdown()

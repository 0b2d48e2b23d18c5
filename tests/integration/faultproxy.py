"""A TCP fault proxy on 127.0.0.1 in front of a real DICOM server (Orthanc cannot fail on cue).

Faults, each bounded: refuse every connection for a while (accept and close at once: the peer sees a
refused association) — until a deadline, or for ``refuse_for_s`` from the first connection attempt, so the
fault hits however long the client takes to start — and abort chosen associations in the middle of a
C-MOVE (after the C-MOVE request and a few of the server's pending responses have passed). Runs in
threads of the test process; ``stop()`` ends it.
"""

from __future__ import annotations

import socket
import threading
import time

from tests.ports import free_port

# (0000,0100) Command Field = 0x0021 (C-MOVE-RQ), implicit VR little endian as every DIMSE command.
C_MOVE_RQ = b"\x00\x00\x00\x01\x02\x00\x00\x00\x21\x00"


class FaultProxy:
    def __init__(
        self,
        target_port: int,
        *,
        refuse_for_s: float = 0.0,
        abort_moves: set[int] | None = None,
        abort_after_responses: int = 2,
    ) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.refuse_until = 0.0  # refuse before this deadline (time.monotonic())
        self.refuse_for_s = refuse_for_s  # or for this long from the first connection attempt
        self._first_attempt: float | None = None
        self.abort_moves = (
            abort_moves or set()
        )  # which C-MOVEs (1-based, counted over all connections) to cut
        self.abort_after = abort_after_responses
        self.refused = self.aborted = self.moves = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            now = time.monotonic()
            if self._first_attempt is None:
                self._first_attempt = now
            if now < max(self.refuse_until, self._first_attempt + self.refuse_for_s):
                self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(None)
            state = {"cut_after": None, "responses": 0}
            threading.Thread(target=self._pump, args=(client, upstream, state, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, state, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, state: dict, from_client: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client and C_MOVE_RQ in data:
                    with self._lock:
                        self.moves += 1
                        if self.moves in self.abort_moves:
                            state["cut_after"] = self.abort_after
                if not from_client and state["cut_after"] is not None:
                    state["responses"] += 1
                    if state["responses"] > state["cut_after"]:
                        self.aborted += 1
                        break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

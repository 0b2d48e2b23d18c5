"""A real Orthanc (Debian ``orthanc`` 1.10.1) as the record-and-verify PACS of harvest tests.

Each instance gets a generated JSON configuration and a fresh storage folder (a killed Orthanc can leave its
SQLite index locked). HTTP listens on loopback only (``RemoteAccessAllowed: false``). Orthanc cannot bind
its DICOM port to 127.0.0.1 alone; instead every DICOM service is refused to peers that are not a
registered modality *on 127.0.0.1* (``DicomAlwaysAllow*: false`` + ``DicomCheckModalityHost: true``), so
nothing outside this machine can query, retrieve or store.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.ports import free_port

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"


class Orthanc:
    def __init__(
        self,
        folder: Path,
        *,
        aet: str = "RVPACS",
        modalities: dict[str, tuple[str, int]] | None = None,
        storage_access_on_find: str = "Always",
        storage: Path | None = None,
    ) -> None:
        self.folder = folder
        self.aet = aet
        self.dicom_port = free_port()
        self.http_port = free_port()
        self.storage = storage or folder / "storage"
        self.modalities = modalities or {}
        self.storage_access_on_find = storage_access_on_find
        self.proc: subprocess.Popen | None = None

    def config(self) -> dict[str, Any]:
        return {
            "Name": f"rtbank-test-{self.aet}",
            "StorageDirectory": str(self.storage),
            "IndexDirectory": str(self.storage),
            "StorageCompression": False,
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowStore": False,
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
            "DicomCheckModalityHost": True,
            "DicomModalities": {
                name: [ae, "127.0.0.1", port] for name, (ae, port) in self.modalities.items()
            },
            "StorageAccessOnFind": self.storage_access_on_find,
            "UnknownSopClassAccepted": True,
            "LimitFindResults": 0,
            "LimitFindInstances": 0,
            "SaveJobs": False,
            "SynchronousCMove": True,
            "TcpNoDelay": True,
            "DicomScuTimeout": 30,
            "Plugins": [],
            "ConcurrentJobs": 2,
            "StableAge": 1,
            "HttpDescribeErrors": True,
        }

    def start(self, timeout: float = 30) -> Orthanc:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(parents=True, exist_ok=True)
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(self.config(), indent=1))
        log = open(self.folder / "orthanc.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [ORTHANC, "--logdir=" + str(self.folder), str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "TCP_NODELAY": "1"},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited: {self.log()}")
            try:
                self.rest("/system")
                return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("Orthanc did not start")

    def terminate(self) -> None:
        """Ask Orthanc to shut down (without waiting; ``stop()`` waits)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def log(self) -> str:
        path = self.folder / "orthanc.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    # --- REST (loopback only) ----------------------------------------------------------------------
    def rest(self, path: str, data: bytes | None = None, method: str | None = None) -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/dicom")
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - loopback test server
            body = resp.read()
        return json.loads(body) if body else None

    def upload(self, paths: list[Path], connections: int = 2) -> int:
        """Store files over REST ``POST /instances``, on kept-alive connections (a few in parallel)."""
        chunks = [paths[i::connections] for i in range(connections)]
        errors: list[BaseException] = []

        def send(chunk: list[Path]) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=120)
            try:
                for path in chunk:
                    conn.request(
                        "POST", "/instances", path.read_bytes(), {"Content-Type": "application/dicom"}
                    )
                    resp = conn.getresponse()
                    body = resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"Orthanc refused {path.name}: {resp.status} {body[:300]!r}")
            except BaseException as exc:  # noqa: BLE001 - reported by the caller's thread
                errors.append(exc)
            finally:
                conn.close()

        threads = [threading.Thread(target=send, args=(chunk,)) for chunk in chunks if chunk]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return len(paths)

    def set_modality(self, name: str, ae_title: str, port: int) -> None:
        """Register (or replace) a DICOM modality on 127.0.0.1 at runtime: a C-MOVE destination."""
        body = json.dumps({"AET": ae_title, "Host": "127.0.0.1", "Port": port}).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/modalities/{name}", data=body, method="PUT"
        )
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30):  # noqa: S310 - loopback test server
            pass
        self.modalities[name] = (ae_title, port)

    def instance_count(self) -> int:
        return int(self.rest("/statistics")["CountInstances"])

"""A small pynetdicom Q/R SCP standing in for an R&V system that fails on cue.

C-FIND is relayed to a real Orthanc (so matching is Orthanc's); C-MOVE is served from the archive's files,
except for the series in ``fail_series``, which answer a failure status (0xC000, unable to process) every
time — like an R&V system that will not export RT Dose objects.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from tests.ports import free_port

UNABLE_TO_PROCESS = 0xC000


class QrStandIn:
    def __init__(
        self,
        *,
        ae_title: str,
        orthanc_port: int,
        files: dict[str, Path],
        series_of: dict[str, str],
        destinations: dict[str, int],
        fail_series: set[str],
    ) -> None:
        self.ae_title, self.orthanc_port = ae_title, orthanc_port
        self.files, self.series_of, self.destinations = files, series_of, destinations
        self.fail_series = fail_series
        self.port = free_port()
        self.failed = 0
        self._lock = threading.Lock()
        ae = AE(ae_title=ae_title)
        ae.add_supported_context(Verification)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
        for uid in {pydicom.dcmread(p, stop_before_pixels=True).SOPClassUID for p in _one_per_class(files)}:
            ae.add_requested_context(uid)
        self.ae = ae
        self.server = ae.start_server(
            ("127.0.0.1", self.port),
            block=False,
            evt_handlers=[(evt.EVT_C_FIND, self._find), (evt.EVT_C_MOVE, self._move)],
        )

    def stop(self) -> None:
        self.server.shutdown()

    def _find(self, event: Any) -> Any:
        relay = AE(ae_title="RTBANK")
        relay.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = relay.associate("127.0.0.1", self.orthanc_port, ae_title="RVPACS")
        if not assoc.is_established:
            yield 0xA700, None
            return
        try:
            for status, identifier in assoc.send_c_find(
                event.identifier, StudyRootQueryRetrieveInformationModelFind
            ):
                if status and status.Status in (0xFF00, 0xFF01):
                    yield 0xFF00, identifier
        finally:
            assoc.release()
        yield 0x0000, None

    def _move(self, event: Any) -> Any:
        ds: Dataset = event.identifier
        port = self.destinations.get(str(event.move_destination).strip())
        if port is None:
            yield None, None
            return
        yield "127.0.0.1", port
        series = str(ds.get("SeriesInstanceUID", ""))
        if series in self.fail_series:
            with self._lock:
                self.failed += 1
            yield 1  # pynetdicom ends a move with zero sub-operations as a success: announce one, then fail
            yield UNABLE_TO_PROCESS, None
            return
        uids = ds.get("SOPInstanceUID", "")
        if uids:
            wanted = [uids] if isinstance(uids, str) else list(uids)
        else:
            wanted = [u for u, s in self.series_of.items() if s == series]
        yield len(wanted)
        for uid in wanted:
            yield 0xFF00, pydicom.dcmread(self.files[uid])


def _one_per_class(files: dict[str, Path]) -> list[Path]:
    seen: dict[str, Path] = {}
    for path in files.values():
        uid = str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"]).SOPClassUID)
        seen.setdefault(uid, path)
    return list(seen.values())

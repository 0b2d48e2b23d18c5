"""Nothing acknowledged is ever lost: kill -9 at any time, the order of system calls, and a full disk."""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from tests.conftest import DATA
from tests.integration.conftest import require_tools
from tests.integration.rtbank_env import RtbankEnv, wait_for

CT_SLICES = sorted((DATA / "nelms-dvh-benchmark/CT_3mm").glob("*.dcm"))


def make_slices(out: Path, count: int, prefix: str) -> list[Path]:
    """``count`` CT objects with fresh UIDs (copies of the public 512×512 phantom slices)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        ds = pydicom.dcmread(CT_SLICES[i % len(CT_SLICES)])
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{prefix}.{i + 1}"
        ds.SeriesInstanceUID = f"{prefix}.0"
        ds.InstanceNumber = i + 1
        path = out / f"{i:04d}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


class Sender(threading.Thread):
    """Sends files over one association, recording which UIDs got a success status."""

    def __init__(self, port: int, paths: list[Path]) -> None:
        super().__init__(daemon=True)
        self.port, self.paths = port, paths
        self.acked: list[str] = []

    def run(self) -> None:
        ae = AE(ae_title="TPS")
        ae.add_requested_context(CTImageStorage, "1.2.840.10008.1.2.1")
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
        assoc = ae.associate("127.0.0.1", self.port, ae_title="RTBANK")
        if not assoc.is_established:
            return
        for path in self.paths:
            ds = pydicom.dcmread(path)
            try:
                status = assoc.send_c_store(ds)
            except (RuntimeError, OSError):
                break
            if "Status" in status and status.Status == 0x0000:
                self.acked.append(str(ds.SOPInstanceUID))
            elif not assoc.is_established:
                break
        if assoc.is_established:
            assoc.release()


def catalog_uids(env: RtbankEnv) -> list[str]:
    return env.query(
        "from rtbank.catalog.models import Instance\n"
        "out = list(Instance.objects.values_list('sop_instance_uid', flat=True))"
    )


def test_every_acknowledged_instance_survives_kill_9_of_receiver_and_worker(
    open_rtbank_env: RtbankEnv, tmp_path: Path
) -> None:
    env = open_rtbank_env
    acked: list[str] = []
    for round_ in range(3):  # kill -9 the receiver in the middle of a multi-instance association, three times
        env.start_receiver()
        sender = Sender(
            env.dicom_port, make_slices(tmp_path / f"r{round_}", 40, f"1.2.826.0.1.3680043.10.777.{round_}")
        )
        sender.start()
        wait_for(lambda s=sender, n=round_: len(s.acked) >= 5 + 6 * n, 60, 0.01, "some acknowledged stores")
        env.kill("receiver")
        sender.join(30)
        assert 0 < len(sender.acked) < 40
        acked += sender.acked
    for _ in range(3):  # kill -9 the worker while it indexes, three times
        env.start_worker()
        wait_for(
            lambda: (
                env.query("from rtbank.catalog.models import Instance\nout = Instance.objects.count()") > 0
                or not list((env.home / "spool/ready").glob("*.dcm"))
            ),
            60,
            0.05,
            "indexing to start",
        )
        env.kill("worker")
    env.start_worker()
    env.wait_idle()
    stored = catalog_uids(env)
    assert set(acked) <= set(stored), "an acknowledged instance was lost"
    assert len(stored) == len(set(stored)), "an instance was stored twice"
    failed = env.stats()["work"]["failed"]
    assert failed == 0


def test_file_and_directory_are_fsynced_before_the_store_response(
    open_rtbank_env: RtbankEnv, tmp_path: Path
) -> None:
    require_tools("strace", "storescu")
    env = open_rtbank_env
    trace = tmp_path / "trace.txt"
    env.start(
        "receiver",
        "receive",
        wrapper=[
            "strace",
            "-f",
            "-yy",
            "-qq",
            "-o",
            str(trace),
            "-e",
            "trace=fsync,rename,renameat,renameat2,write,sendto,sendmsg",
        ],
    )
    wait_for(env.echo, 60, what="the traced receiver")
    files = make_slices(tmp_path / "five", 5, "1.2.826.0.1.3680043.10.778")
    assert env.storescu(*files).returncode == 0
    env.stop_traced("receiver")
    lines = trace.read_text().splitlines()
    renames = [
        i for i, line in enumerate(lines) if "rename" in line and "/spool/ready/" in line and ".dcm" in line
    ]
    assert len(renames) == 5
    for i in renames:
        part = re.search(r'"([^"]+\.part)"', lines[i]).group(1)
        file_sync = [j for j in range(i) if "fsync(" in lines[j] and part in lines[j]]
        assert file_sync, f"no fsync of {part} before its rename"
        after = lines[i + 1 :]
        dir_sync = next(
            k for k, line in enumerate(after) if re.search(r"fsync\(\d+</[^>]*/spool/ready>\)", line)
        )
        # The association's socket (local port = the receiver's); on PostgreSQL the database socket is TCP
        # too.
        association = rf"(write|sendto|sendmsg)\(\d+<TCP(v6)?:\[[^\]]*:{env.dicom_port}->"
        socket_write = next(k for k, line in enumerate(after) if re.search(association, line))
        assert dir_sync < socket_write, "the C-STORE response went out before the directory fsync"


@pytest.mark.parametrize("limit", ["prlimit", "reserve"])
def test_a_full_disk_gives_a_failure_status_and_leaves_stored_data_intact(
    open_rtbank_env: RtbankEnv, tmp_path: Path, limit: str
) -> None:
    require_tools("prlimit", "storescu")
    env = open_rtbank_env
    env.start_receiver()
    env.start_worker()
    assert env.storescu(DATA / "rt-utils/ct_1.dcm").returncode == 0
    env.wait_idle()
    before = {p: p.read_bytes() for p in (env.home / "blobs").rglob("*.dcm")}
    env.kill("receiver", 15)
    dose = (
        DATA / "aptg-dcpt-let/plan03_ramp_full/RD1.2.752.243.1.1.20250523160113556.3000.73252.dcm"
    )  # 2.5 MB
    if limit == "prlimit":
        env.start("receiver", "receive", wrapper=["prlimit", f"--fsize={2 * 1024 * 1024}", "--"])
    else:
        env.start(
            "receiver",
            "receive",
            env={"RTBANK_SPOOL_RESERVE_MB": str(shutil.disk_usage(env.home).free // 2**20 + 10)},
        )
    wait_for(env.echo, 30, what="the limited receiver")
    result = env.storescu(dose, extra=["-v"])
    assert result.returncode != 0
    assert "Refused: OutOfResources" in result.stdout + result.stderr, result.stdout + result.stderr
    assert env.processes["receiver"].poll() is None
    time.sleep(0.5)
    assert not list((env.home / "spool/ready").glob("*.dcm"))
    assert not list((env.home / "spool/incoming").iterdir()), "a partial file was left behind"
    env.wait_idle()
    assert {p: p.read_bytes() for p in (env.home / "blobs").rglob("*.dcm")} == before
    refused = env.query(
        "from rtbank.eventlog.models import Event\n"
        "out = list(Event.objects.filter(action='store_refused').values_list('message', flat=True))"
    )
    assert refused and "0xA700" in refused[0]

"""Bad input never crashes a service, never corrupts stored data, always gets a clear refusal and a log
row."""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pynetdicom import AE, _config

from tests.conftest import DATA
from tests.integration.rtbank_env import RtbankEnv, wait_for

CT = DATA / "rt-utils/ct_1.dcm"
CT_CLASS = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


def write_raw(path: Path, meta_uid: str, body: bytes, sop_class: str = CT_CLASS) -> Path:
    """A Part-10 file whose file meta names ``meta_uid`` and whose dataset bytes are ``body`` as given."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = meta_uid
    meta.TransferSyntaxUID = EXPLICIT_LE
    buf = io.BytesIO()
    buf.write(b"\0" * 128 + b"DICM")
    pydicom.filewriter.write_file_meta_info(buf, meta, enforce_standard=True)
    path.write_bytes(buf.getvalue() + body)
    return path


def dataset_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, implicit_vr=False, little_endian=True)
    return buf.getvalue()


def send_raw(env: RtbankEnv, path: Path, calling: str = "TPS") -> int:
    """C-STORE the file's bytes exactly as they are (pynetdicom's chunked send does not re-encode)."""
    ae = AE(ae_title=calling)
    ae.add_requested_context(CT_CLASS, EXPLICIT_LE)
    assoc = ae.associate("127.0.0.1", env.dicom_port, ae_title="RTBANK")
    assert assoc.is_established
    old = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        status = assoc.send_c_store(path)
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = old
        assoc.release()
    return int(status.Status) if "Status" in status else -1


def snapshot(env: RtbankEnv) -> tuple[dict, dict[str, str]]:
    blobs = {
        str(p.relative_to(env.home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((env.home / "blobs").rglob("*.dcm"))
    }
    stats = env.stats()
    stats.pop("work")
    return stats, blobs


@pytest.fixture
def loaded(open_rtbank_env: RtbankEnv) -> Iterator[RtbankEnv]:
    """A running receiver and worker that already hold a few objects."""
    env = open_rtbank_env
    env.start_receiver()
    env.start_worker()
    assert env.storescu(DATA / "rt-utils/rt.dcm", CT).returncode == 0
    env.wait_idle()
    yield env


def _deep_sequence(depth: int) -> bytes:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    ds = Dataset()
    ds.SOPClassUID = CT_CLASS
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.999.1"
    ds.PatientID = "DEEP"
    inner = Dataset()
    inner.CodeValue = "X"
    for _ in range(depth):
        outer = Dataset()
        outer.ContentSequence = Sequence([inner])
        inner = outer
    ds.ContentSequence = Sequence([inner])
    return dataset_bytes(ds)


def _bad_bodies(tmp: Path) -> dict[str, Path]:
    ct = pydicom.dcmread(CT)
    good = dataset_bytes(ct)
    uid = str(ct.SOPInstanceUID)
    missing = pydicom.dcmread(CT)
    del missing.SOPInstanceUID
    other = pydicom.dcmread(CT)
    other.SOPInstanceUID = "1.2.826.0.1.3680043.10.999.2"
    slash = pydicom.dcmread(CT)
    slash.SOPInstanceUID = "1.2.3/../../etc"
    long_uid = pydicom.dcmread(CT)
    long_uid.SOPInstanceUID = "1." + "2" * 70
    return {
        "truncated": write_raw(tmp / "truncated.dcm", uid, good[: len(good) // 2]),
        "not_dicom": write_raw(tmp / "garbage.dcm", uid, b"this is not a DICOM dataset at all" * 40),
        "missing_uid": write_raw(tmp / "missing.dcm", uid, dataset_bytes(missing)),
        "uid_differs": write_raw(tmp / "differs.dcm", uid, dataset_bytes(other)),
        "uid_with_path": write_raw(tmp / "slash.dcm", uid, dataset_bytes(slash)),
        "uid_too_long": write_raw(tmp / "long.dcm", uid, dataset_bytes(long_uid)),
        "deep_sequence": write_raw(tmp / "deep.dcm", "1.2.826.0.1.3680043.10.999.1", _deep_sequence(300)),
    }


def test_it_refuses_malformed_objects_with_a_failure_status(loaded: RtbankEnv, tmp_path: Path) -> None:
    env = loaded
    before = snapshot(env)
    for name, path in _bad_bodies(tmp_path).items():
        status = send_raw(env, path)
        assert 0xC000 <= status <= 0xCFFF or status == 0xA900, f"{name}: status 0x{status:04X}"
        assert env.processes["receiver"].poll() is None, f"receiver died on {name}"
    refused = wait_for(
        lambda: (
            (
                n := env.query(
                    "from rtbank.eventlog.models import Event\n"
                    "out = Event.objects.filter(action='store_refused').count()"
                )
            )
            >= 7
            and n
        ),
        30,
        what="a log row per refusal",
    )
    assert refused == 7
    env.wait_idle()
    assert snapshot(env) == before
    assert env.echo()  # still serving


def test_it_rejects_unknown_calling_ae_wrong_host_and_unknown_called_ae(rtbank_env: RtbankEnv) -> None:
    env = rtbank_env
    env.run("institution", "add", "ODE", "--name", "Odense")
    env.run(
        "node",
        "add",
        "ode-tps",
        "--ae",
        "ODE_TPS",
        "--host",
        "127.0.0.1",
        "--port",
        "104",
        "--institution",
        "ODE",
    )
    env.run("node", "add", "far-tps", "--ae", "FAR_TPS", "--host", "10.200.0.0/16", "--port", "104")
    proc = env.start("receiver", "receive")
    wait_for(lambda: env.echo("ODE_TPS"), 30, what="the receiver")
    env.start_worker()
    unknown = env.storescu(CT, calling="STRANGER")
    wrong_host = env.storescu(CT, calling="FAR_TPS")
    wrong_called = env.storescu(CT, calling="ODE_TPS", called="NOT_RTBANK")
    for result, reason in (
        (unknown, "Calling AE Title Not Recognized"),
        (wrong_host, "Calling AE Title Not Recognized"),
        (wrong_called, "Called AE Title Not Recognized"),
    ):
        assert result.returncode != 0
        assert reason in result.stderr, result.stderr
    assert proc.poll() is None
    ok = env.storescu(CT, calling="ODE_TPS")  # positive control: the registered node from its host
    assert ok.returncode == 0, ok.stderr
    stats = env.wait_idle()
    assert stats["instances"] == 1
    rows = env.query(
        "from rtbank.eventlog.models import Event\n"
        "out = sorted(e.message for e in Event.objects.filter(action='association_rejected'))"
    )
    assert len(rows) == 3
    assert any("not registered, but" in m or "is registered, but not for host" in m for m in rows)
    inst = env.query(
        "from rtbank.catalog.models import Instance\ni = Instance.objects.get()\n"
        "out = [i.calling_ae, i.institution.code, i.source_node.name]"
    )
    assert inst == ["ODE_TPS", "ODE", "ode-tps"]


def test_import_refuses_zip_slip_zip_bomb_and_reports_non_dicom(
    open_rtbank_env: RtbankEnv, tmp_path: Path
) -> None:
    env = open_rtbank_env
    env.run("import", str(DATA / "rt-utils/rt.dcm"), "--wait")
    before = snapshot(env)
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as z:
        z.write(CT, "ok/ct.dcm")
        z.writestr("../../evil.dcm", CT.read_bytes())
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.dcm", b"\0" * (300 * 1024 * 1024))
    for archive, words in ((slip, "zip slip"), (bomb, "zip bomb")):
        result = env.run("import", str(archive), "--wait", check=False)
        assert result.returncode == 2
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not (tmp_path.parent / "evil.dcm").exists()
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "notes.txt").write_text("not dicom")
    broken = pydicom.dcmread(CT)
    raw = dataset_bytes(broken)
    (mixed / "truncated.dcm").write_bytes(b"\0" * 128 + b"DICM" + raw[132 : len(raw) // 3])
    result = env.run("import", str(mixed), "--wait", check=False)
    assert result.returncode == 1 and "refused" in result.stderr
    assert "1 files were not DICOM" in result.stdout
    assert snapshot(env) == before
    refusals = env.query(
        "from rtbank.eventlog.models import Event\n"
        "out = Event.objects.filter(action__in=['import_refused', 'import']).count()"
    )
    assert refusals >= 3

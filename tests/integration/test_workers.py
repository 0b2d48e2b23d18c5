"""Several workers on one database never process the same row twice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset

from tests.integration.rtbank_env import RtbankEnv, wait_for


def tiny_ct(path: Path, n: int) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = f"1.2.826.0.1.3680043.10.779.{n}"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.PatientID, ds.PatientName, ds.Modality = f"P{n % 7}", f"Test^{n % 7}", "CT"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.779.0.{n % 7}"
    ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.10.779.1.{n % 7}"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = np.zeros((8, 8), dtype=np.int16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_two_workers_share_the_work_without_doing_any_row_twice(
    open_rtbank_env: RtbankEnv, tmp_path: Path
) -> None:
    env = open_rtbank_env
    src = tmp_path / "in"
    src.mkdir()
    for n in range(400):
        tiny_ct(src / f"{n}.dcm", n)
    env.run("import", str(src), "--no-wait")
    env.start_worker("worker-a")
    env.start_worker("worker-b")
    wait_for(lambda: env.stats()["instances"] == 400, 180, 0.5, "400 instances indexed")
    env.wait_idle()
    rows = env.query(
        "from rtbank.work.models import WorkItem\n"
        "out = list(WorkItem.objects.filter(kind='ingest').values_list('state', 'attempts', 'payload'))"
    )
    assert len(rows) == 400
    assert all(state == "done" and attempts == 1 for state, attempts, _ in rows), [
        (state, attempts, payload.get("last_error"))
        for state, attempts, payload in rows
        if state != "done" or attempts != 1
    ][:5] + [env.log("worker-a")[-1500:], env.log("worker-b")[-1500:]]
    assert all(
        payload["outcome"] == "new" for *_, payload in rows
    )  # a second run would have found a duplicate
    heartbeats = env.query(
        "from rtbank.work.models import WorkerHeartbeat\n"
        "out = list(WorkerHeartbeat.objects.values_list('processed', flat=True))"
    )
    assert len(heartbeats) == 2

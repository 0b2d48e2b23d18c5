"""Test support for the harvester: an answer key computed from the archive's files, and vendor quirks.

``DatasetIndex`` is an :class:`RtIndex` over DICOM files, so the expected objects of a treated plan are
``plan_bundle(plan, DatasetIndex(files))`` — computed from what the source really holds, independently of
anything the harvester learned. For unmodified synthetic patients it equals the manifest's
``harvest_expected`` (checked by the tests).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import generate_uid

from rtbank.dicom import sop
from rtbank.dicom.plan_bundle import IndexedObject, plan_bundle
from rtbank.dicom.references import references
from rtbank.dicom.rtobjects import StructureSetInfo

VOLUME = {"CT", "MR", "PT"}


class DatasetIndex:
    def __init__(self, paths: list[Path]) -> None:
        self.objects: dict[str, IndexedObject] = {}
        self.patient_of: dict[str, str] = {}
        self._series: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._frames: dict[str, set[str]] = defaultdict(set)
        self._fwd: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._rev: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._first: dict[str, str] = {}
        for path in paths:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            uid, kind = str(ds.SOPInstanceUID), sop.rt_kind(str(ds.SOPClassUID)).value
            frame = str(ds.get("FrameOfReferenceUID", "") or "")
            self.objects[uid] = IndexedObject(uid, kind, str(ds.SeriesInstanceUID), frame)
            self.patient_of[uid] = str(ds.PatientID)
            self._series[str(ds.SeriesInstanceUID)].append((int(ds.get("InstanceNumber", 0) or 0), uid))
            if kind == "image" and ds.Modality in VOLUME and frame:
                self._frames[frame].add(str(ds.SeriesInstanceUID))
            for ref in references(ds):
                self._fwd[(uid, ref.kind.value)].append(ref.target_uid)
                self._rev[(ref.target_uid, ref.kind.value)].append(uid)
            if kind == "structure_set":
                self._first[uid] = StructureSetInfo.from_dataset(ds).first_contour_image_uid or ""

    def get(self, uid: str) -> IndexedObject | None:
        return self.objects.get(uid)

    def targets(self, uid: str, kind: Any) -> list[str]:
        return list(self._fwd.get((uid, kind.value), []))

    def sources(self, target: str, kind: Any, kinds: frozenset[str]) -> list[str]:
        return sorted(u for u in self._rev.get((target, kind.value), []) if self.objects[u].kind in kinds)

    def series_instances(self, series: str) -> list[str]:
        return [u for _, u in sorted(self._series.get(series, []))]

    def image_series_in_frame(self, frame: str) -> list[str]:
        return sorted(self._frames.get(frame, ()))

    def first_contour_image(self, uid: str) -> str:
        return self._first.get(uid, "")

    def expected(self, plan_uid: str) -> set[str]:
        return plan_bundle(plan_uid, self).uids()


def treated_plans(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan for patient in manifest["patients"] for plan in patient["plans"] if plan["treated"]]


def add_quirks(archive: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Make the last patient's first treated plan an RT Ion plan with Ion records and per-beam doses
    (several doses per plan), and remove the structure set reference of another patient's treated plan.

    Returns what was changed (UIDs), for the tests to check.
    """
    files = {f["sop_instance_uid"]: archive / f["path"] for f in manifest["files"]}
    last = manifest["patients"][-1]
    ion = next(p for p in last["plans"] if p["treated"])
    _rewrite(files[ion["sop_instance_uid"]], SOPClassUID=sop.RT_ION_PLAN)
    for uid in ion["records"]:
        _rewrite(files[uid], SOPClassUID=sop.RT_ION_BEAMS_RECORD)
    beam_doses = []
    if ion["doses"]:
        source = pydicom.dcmread(files[ion["doses"][0]])
        for beam in (1, 2):
            ds = source.copy()
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(prefix="2.25.")
            ds.SeriesInstanceUID = generate_uid(prefix="2.25.")
            ds.DoseSummationType = "BEAM"
            path = files[ion["doses"][0]].with_name(f"beam{beam}.dcm")
            ds.save_as(path, enforce_file_format=True)
            beam_doses.append(str(ds.SOPInstanceUID))
            manifest["files"].append(
                {
                    "path": str(path.relative_to(archive)),
                    "sop_instance_uid": str(ds.SOPInstanceUID),
                    "modality": "RTDOSE",
                    "patient_id": last["patient_id"],
                    "series_instance_uid": str(ds.SeriesInstanceUID),
                    "study_instance_uid": str(ds.StudyInstanceUID),
                    "sop_class_uid": sop.RT_DOSE,
                }
            )
    no_ss = next(p for patient in manifest["patients"][:-1] for p in patient["plans"] if p["treated"])
    ds = pydicom.dcmread(files[no_ss["sop_instance_uid"]])
    del ds.ReferencedStructureSetSequence
    ds.save_as(files[no_ss["sop_instance_uid"]], enforce_file_format=True)
    changes = {
        "ion_plan": ion["sop_instance_uid"],
        "beam_doses": beam_doses,
        "plan_without_ss": no_ss["sop_instance_uid"],
    }
    (archive / "quirks.json").write_text(json.dumps(changes))
    return changes


def _rewrite(path: Path, **values: str) -> None:
    ds = pydicom.dcmread(path)
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    if "SOPClassUID" in values:
        ds.file_meta.MediaStorageSOPClassUID = values["SOPClassUID"]
    ds.save_as(path, enforce_file_format=True)

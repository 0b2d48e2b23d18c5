"""Inputs and helpers shared by the anonymisation tests (this module holds no tests).

The anonymised runs are computed once per test session (``functools.cache``) and shared by the
integrity, dciodvfy and DVH tests, which keeps the whole anonymisation suite within its time budget.
"""

from __future__ import annotations

import atexit
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from rtbank.dicom.anonymize import Option, Profile, Report, anonymize_files, is_well_known_uid
from rtbank.dicom.anonymize.values import vr_of
from rtbank.dicom.uids import uid_from

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
FULL = Profile(
    {
        Option.RETAIN_LONGITUDINAL_MODIFIED_DATES,
        Option.CLEAN_DESCRIPTORS,
        Option.RETAIN_PATIENT_CHARACTERISTICS,
        Option.RETAIN_DEVICE_IDENTITY,
    }
)
BASIC = Profile()

# One RT dataset per reference kind: RTSTRUCT→CT (nelms, rt-utils), RTPLAN→RTSTRUCT and RTDOSE→RTPLAN
# (RayStation photon, RayStation proton ion plan), RTRECORD→RTPLAN (synthetic records), REG→images (written
# below), files without a Part-10 header (Monaco), RT Image with private attributes (Eclipse).
INPUTS = (
    "nelms-dvh-benchmark",
    "pyplanscoring/raystation_brain_srs_imrt",
    "synthetic-rtrecord",
    "rt-utils/ct_1.dcm",
    "rt-utils/ct_2.dcm",
    "rt-utils/rt.dcm",
    "pyplanscoring/monaco_3dcrt_3plans",
    "aptg-dcpt-let/plan03_ramp_full",
    "slicerrt-eclipse-prostate",
)
REFERENCE_KEYWORDS = frozenset(
    {
        "ReferencedSOPInstanceUID",
        "FrameOfReferenceUID",
        "ReferencedFrameOfReferenceUID",
        "RelatedFrameOfReferenceUID",
        "SeriesInstanceUID",
        "StudyInstanceUID",
    }
)
_SCRATCH = Path(tempfile.mkdtemp(prefix="rtbank-anon-tests-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)


@dataclass(frozen=True)
class Run:
    out: Path
    report: Report


@cache
def input_files() -> tuple[Path, ...]:
    """The public inputs plus a spatial registration between the two CT series (REG→images)."""
    files: list[Path] = []
    for name in INPUTS:
        path = DATA / name
        files += sorted(p for p in path.rglob("*.dcm")) if path.is_dir() else [path]
    registration = _SCRATCH / "inputs" / "REG_nelms_to_rtutils.dcm"
    write_registration(
        [p for p in files if "nelms-dvh-benchmark/CT_3mm" in str(p)],
        [DATA / "rt-utils/ct_1.dcm", DATA / "rt-utils/ct_2.dcm"],
        registration,
    )
    return (*files, registration)


@cache
def anonymised(profile_name: str, copies: tuple[str, ...], key_name: str = "KEY", run: int = 0) -> Run:
    """Anonymise :func:`input_files` once per session per (profile, copies, key, run number)."""
    profile = {"FULL": FULL, "BASIC": BASIC}[profile_name]
    key = {"KEY": KEY, "OTHER_KEY": OTHER_KEY}[key_name]
    out = _SCRATCH / f"{profile_name}-{'-'.join(copies)}-{key_name}-{run}"
    report = anonymize_files(input_files(), out, list(copies), profile, key, prefix="AUD")
    return Run(out, report)


def outputs_by_source(run: Run, copy_id: str) -> dict[Path, Path]:
    index = int(copy_id) - 1 if len(run.report.copies) > 1 else 0
    return {r.source: r.outputs[index] for r in run.report.results if r.ok}


def write_registration(fixed: list[Path], moving: list[Path], path: Path) -> None:
    """A Spatial Registration object registering ``moving`` images onto ``fixed`` ones (identity matrix)."""
    fixed_ds = [pydicom.dcmread(p, stop_before_pixels=True, force=True) for p in fixed]
    moving_ds = [pydicom.dcmread(p, stop_before_pixels=True, force=True) for p in moving]
    first = fixed_ds[0]
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66.1"
    ds.SOPInstanceUID = uid_from("rtbank-test", "registration")
    ds.SpecificCharacterSet = "ISO_IR 100"
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID"):
        setattr(ds, keyword, first.get(keyword, ""))
    ds.StudyDate, ds.StudyTime, ds.ReferringPhysicianName = "20150301", "101010", "REFERRER^REG"
    ds.StudyID, ds.AccessionNumber = "REGSTUDY", "ACC-REG-1"
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "REG", uid_from("rtbank-test", "reg series"), 99
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = first.FrameOfReferenceUID, ""
    ds.Manufacturer, ds.InstanceNumber = "rtbank tests", 1
    ds.ContentDate, ds.ContentTime = "20150302", "111111"
    ds.ContentLabel, ds.ContentDescription, ds.ContentCreatorName = "REG", "CT to CT", "CREATOR^REG"
    ds.RegistrationSequence = Sequence([_registration_item(fixed_ds), _registration_item(moving_ds)])
    ds.ReferencedSeriesSequence = Sequence(_series_references([*fixed_ds, *moving_ds]))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _registration_item(images: list[Dataset]) -> Dataset:
    item = Dataset()
    item.FrameOfReferenceUID = images[0].FrameOfReferenceUID
    item.ReferencedImageSequence = Sequence([_reference(d.SOPClassUID, d.SOPInstanceUID) for d in images])
    matrix = Dataset()
    matrix.FrameOfReferenceTransformationMatrixType = "RIGID"
    matrix.FrameOfReferenceTransformationMatrix = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    registration = Dataset()
    registration.MatrixSequence = Sequence([matrix])
    item.MatrixRegistrationSequence = Sequence([registration])
    return item


def _series_references(images: list[Dataset]) -> list[Dataset]:
    series: dict[str, list[Dataset]] = {}
    for d in images:
        series.setdefault(str(d.SeriesInstanceUID), []).append(d)
    items = []
    for uid, members in series.items():
        item = Dataset()
        item.SeriesInstanceUID = uid
        item.ReferencedInstanceSequence = Sequence(
            [_reference(d.SOPClassUID, d.SOPInstanceUID) for d in members]
        )
        items.append(item)
    return items


def _reference(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


# -- reading what the engine produced ------------------------------------------------------------


@cache
def read(path: Path) -> Dataset:
    """Each file parsed once per session (the tests only read)."""
    return pydicom.dcmread(path, force=True)


def walk(ds: Dataset, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str, object]]:
    """(path, VR, element) at any depth, ``Keyword[index]`` for items; elements are left undecoded
    (raw) unless they are sequences, so walking a structure set does not parse a million contour points.
    """
    for tag in sorted(ds.keys()):
        elem = ds.get_item(tag)
        vr = vr_of(elem)
        name = keyword_for_tag(tag) or f"{int(tag):08X}"
        yield (*path, name), vr, elem
        if vr == "SQ":
            for i, item in enumerate(ds[tag].value or ()):
                yield from walk(item, (*path, f"{name}[{i}]"))


def uid_values(ds: Dataset) -> Iterator[tuple[tuple[str, ...], str]]:
    for path, vr, elem in walk(ds):
        if vr != "UI":
            continue
        value = elem.value
        text = (
            value.decode("ascii", "replace")
            if isinstance(value, bytes)
            else "\\".join(value if isinstance(value, (list, MultiValue)) else [str(value or "")])
        )
        for part in text.split("\\"):
            uid = part.rstrip("\x00 ").strip()
            if uid and not is_well_known_uid(uid):
                yield path, uid


def reference_edges(ds: Dataset) -> set[tuple[str, tuple[str, ...], str]]:
    """(source SOP Instance UID, path, target UID) for every non-standard UID the object carries."""
    source = str(ds.SOPInstanceUID)
    return {(source, path, uid) for path, uid in uid_values(ds) if path != ("SOPInstanceUID",)}


def all_uids(path: Path) -> set[str]:
    """Every non-standard UID of a file, file meta included (but not the writer's implementation class)."""
    ds = read(path)
    uids = {uid for _path, uid in uid_values(ds)}
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        uids |= {uid for p, uid in uid_values(meta) if p != ("ImplementationClassUID",)}
    return uids


def uid_like_tokens(data: bytes) -> str:
    """Every digits-and-dots run in a file's bytes, one per line (where a leaked UID would show)."""
    return "\n".join(m.decode("ascii") for m in re.findall(rb"[0-9]+(?:\.[0-9]+)+", data))


# -- dciodvfy ------------------------------------------------------------------------------------

DCIODVFY = "/usr/bin/dciodvfy"
# dciodvfy's table misspells VERIFIED as VERIFED for RT Treatment Records: a correct value is flagged.
KNOWN_DCIODVFY_DEFECTS = (
    re.compile(r"Unrecognized enumerated value <VERIFIED>.*Treatment Verification Status"),
)


@cache
def dciodvfy_errors(path: Path) -> tuple[str, ...]:
    """dciodvfy's error lines, values normalised (UIDs, dates and the like change by design).

    A crash is a failure; 32-bit dose grids crash this dciodvfy, so validate them on a 16-bit copy.
    """
    target = _as_16_bit(path)
    done = subprocess.run([DCIODVFY, str(target)], capture_output=True, text=True, timeout=60)
    if done.returncode < 0 or done.returncode > 1:
        raise AssertionError(f"dciodvfy crashed on {path} (exit {done.returncode}): {done.stderr[-500:]}")
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("Error")]
    lines = [line for line in lines if not any(p.search(line) for p in KNOWN_DCIODVFY_DEFECTS)]
    return tuple(re.sub(r"<[^<>]*[0-9][^<>]*>", "<value>", line) for line in lines)


def _as_16_bit(path: Path) -> Path:
    ds = pydicom.dcmread(path, force=True)
    if ds.get("BitsAllocated") != 32 or "PixelData" not in ds:
        return path
    pixels = ds.pixel_array.astype(np.int64)
    ds.DoseGridScaling = float(ds.get("DoseGridScaling", 1.0)) * max(1, int(pixels.max()) // 65535 + 1)
    scaled = (pixels // max(1, int(pixels.max()) // 65535 + 1)).astype(np.uint16)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = scaled.tobytes()
    target = _SCRATCH / "16bit" / f"{abs(hash(str(path)))}-{path.name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target)
    return target

"""Files, folders and zip archives into the spool: the same pipeline as DICOM C-STORE.

Used by ``rtbank import`` and by web upload. Every accepted object is written to the spool durably
(temp → fsync → rename → directory fsync) before it is counted as stored. Files without a Part-10 header
(real Monaco exports) are read with ``force=True`` and re-written as Part-10. Archives are checked before
anything is read: member names that escape (``../``, absolute paths), and sizes or compression ratios
that betray a zip bomb, refuse the whole archive.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import pydicom
from django.conf import settings
from pydicom.errors import InvalidDicomError
from pydicom.uid import ImplicitVRLittleEndian

from rtbank.dicom.validate import RejectedDicom, check_part10_bytes
from rtbank.fileio import free_bytes, fsync_path
from rtbank.ingest import spool

logger = logging.getLogger("rtbank.import")
MAX_OBJECT_BYTES = 2 * 1024**3  # one DICOM object; big doses are ~100 MB, whole-body CTs are series
MAX_ZIP_RATIO = 200  # uncompressed / compressed per member; DICOM compresses ≈ 2–10×
MAX_ZIP_TOTAL_BYTES = int(os.environ.get("RTBANK_IMPORT_MAX_ZIP_BYTES", str(64 * 1024**3)))


class ImportRefused(ValueError):
    """The input as a whole is refused (hostile archive, unreadable path); nothing was stored from it."""


@dataclass
class ImportReport:
    source_id: str
    stored: int = 0
    not_dicom: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (name as given, reason)
    results: list[tuple[str, str]] = field(default_factory=list)  # (name, "stored" | reason)

    @property
    def ok(self) -> bool:
        return not self.rejected


class SpoolWriter:
    """Writes accepted objects of one import run into the spool."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.dirs = spool.spool_dirs()
        self.source_id = spool.new_source_id("i")
        self.info = info
        self.seq = 0
        self._pending_dir_sync = False

    def add(self, data: bytes) -> str:
        if free_bytes(self.dirs.incoming) - len(data) < settings.SPOOL_RESERVE_MB * 1024 * 1024:
            raise OSError("free space on the spool is below the reserve")
        if self.seq == 0:
            spool.write_source(self.dirs, self.source_id, self.info)
        self.seq += 1
        name = spool.item_name(self.source_id, self.seq)
        fd, tmp = tempfile.mkstemp(suffix=".part", dir=self.dirs.incoming)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, self.dirs.ready / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._pending_dir_sync = True
        return name

    def sync(self) -> None:
        """Make every added item durable (one directory fsync for the batch)."""
        if self._pending_dir_sync:
            fsync_path(self.dirs.ready)
            self._pending_dir_sync = False


def import_paths(paths: list[Path], info: dict[str, Any], progress: Any = None) -> ImportReport:
    """Import files, folders and zip archives; returns what was stored and what was refused, per file."""
    writer = SpoolWriter({"via": "import", **info})
    report = ImportReport(writer.source_id)
    for path in paths:
        if not path.exists():
            raise ImportRefused(f"{path}: no such file or folder")
    for name, read in _candidates(paths):
        _import_one(writer, report, name, read)
        if progress:
            progress(report)
        if writer.seq % 200 == 0:
            writer.sync()
    writer.sync()
    return report


def import_stream(name: str, stream: BinaryIO, info: dict[str, Any]) -> ImportReport:
    """Import one uploaded file (a DICOM object or a zip archive) from an open binary stream."""
    writer = SpoolWriter({"via": "upload", **info})
    report = ImportReport(writer.source_id)
    if zipfile.is_zipfile(stream):
        stream.seek(0)
        for member, read in _zip_members(zipfile.ZipFile(stream), name):
            _import_one(writer, report, member, read)
    else:
        stream.seek(0)
        _import_one(writer, report, name, lambda: _read_capped(stream, MAX_OBJECT_BYTES))
    writer.sync()
    return report


def _import_one(writer: SpoolWriter, report: ImportReport, name: str, read: Any) -> None:
    try:
        data = as_part10(read())
    except NotDicom:
        report.not_dicom += 1
        report.results.append((name, "not DICOM (skipped)"))
        return
    except (RejectedDicom, ImportRefused) as exc:
        report.rejected.append((name, str(exc)))
        report.results.append((name, str(exc)))
        return
    writer.add(data)
    report.stored += 1
    report.results.append((name, "stored"))


class NotDicom(ValueError):
    pass


def as_part10(data: bytes) -> bytes:
    """``data`` as a checked Part-10 file; objects without a Part-10 header are re-written with one."""
    if len(data) >= 132 and data[128:132] == b"DICM":
        check_part10_bytes(data)
        return data
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        if "SOPInstanceUID" not in ds or "SOPClassUID" not in ds:
            raise NotDicom("no SOP Class / Instance UID")
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian if ds.is_implicit_VR else pydicom.uid.ExplicitVRLittleEndian
        )
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
    except NotDicom:
        raise
    except (
        InvalidDicomError,
        ValueError,
        TypeError,
        KeyError,
        EOFError,
        AttributeError,
        RecursionError,
    ) as exc:
        raise NotDicom(str(exc)) from None
    result = out.getvalue()
    check_part10_bytes(result)
    return result


def _candidates(paths: list[Path]) -> Iterator[tuple[str, Any]]:
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path, followlinks=False):
                dirs.sort()
                for file_name in sorted(files):
                    yield from _file_candidates(Path(root) / file_name)
        else:
            yield from _file_candidates(path)


def _file_candidates(path: Path) -> Iterator[tuple[str, Any]]:
    if path.is_symlink() or not path.is_file():
        return
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            yield from _zip_members(archive, str(path))
        return
    if path.stat().st_size > MAX_OBJECT_BYTES:
        yield str(path), _raise(ImportRefused(f"larger than {MAX_OBJECT_BYTES} bytes"))
        return
    yield str(path), path.read_bytes


def _zip_members(archive: zipfile.ZipFile, label: str) -> Iterator[tuple[str, Any]]:
    members = [m for m in archive.infolist() if not m.is_dir()]
    total = 0
    for member in members:
        pure = PurePosixPath(member.filename.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
            raise ImportRefused(f"{label}: member {member.filename!r} points outside the archive (zip slip)")
        if (
            member.file_size > MAX_OBJECT_BYTES
            or member.file_size > MAX_ZIP_RATIO * max(member.compress_size, 1) + 65536
        ):
            raise ImportRefused(
                f"{label}: member {member.filename!r} expands {member.file_size} bytes (zip bomb?)"
            )
        total += member.file_size
    if total > MAX_ZIP_TOTAL_BYTES:
        raise ImportRefused(f"{label}: expands to {total} bytes, over the limit of {MAX_ZIP_TOTAL_BYTES}")
    for member in members:
        yield f"{label}:{member.filename}", _member_reader(archive, member)


def _member_reader(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> Any:
    def read() -> bytes:
        with archive.open(member) as f:
            # The header's size can lie; never read more than it declared.
            return _read_capped(f, member.file_size, declared=True)

    return read


def _read_capped(stream: BinaryIO, limit: int, declared: bool = False) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        what = "more than the archive declared (zip bomb?)" if declared else f"larger than {limit} bytes"
        raise ImportRefused(f"expands to {what}")
    return data


def _raise(exc: Exception) -> Any:
    def fail() -> bytes:
        raise exc

    return fail

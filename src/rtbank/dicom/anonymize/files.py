"""Anonymised copies of DICOM files on disk: the layout, the key file and the pseudonym/UID CSVs.

``OUT/copy-<k>/<kind>-<hash>.dcm``
    one folder per copy; file names come from the object's kind and a hash of its *new* SOP Instance UID,
    never from DICOM values, so a later export of the same copy rewrites the same file.
``OUT/pseudonyms.csv``
    copy, original Patient ID, pseudonym (merged with an existing file).
``OUT/uid-map.csv``
    copy, original UID, new UID: lets the audit recognise returned data (merged likewise).
``OUT/anonymization.key``
    the generated key, mode 0600, when the caller did not bring one.

The CSVs and the key re-identify the copies: ship only the ``copy-<k>`` folders.
"""

from __future__ import annotations

import csv
import hashlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from rtbank.dicom.anonymize.engine import Anonymizer
from rtbank.dicom.anonymize.errors import AnonymizationRefused
from rtbank.dicom.anonymize.keyed import PseudonymSource, check_key
from rtbank.dicom.anonymize.profile import Profile
from rtbank.dicom.sop import rt_kind

KEY_FILE_NAME = "anonymization.key"
PSEUDONYMS_FILE_NAME = "pseudonyms.csv"
UID_MAP_FILE_NAME = "uid-map.csv"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "%")


class Status(StrEnum):
    WRITTEN = "written"
    SKIPPED = "skipped"  # found in a folder and not DICOM at all (a manifest, a README): not a failure
    REFUSED = "refused"  # the engine will not anonymise it (AnonymizationRefused)
    UNREADABLE = "unreadable"  # named but not DICOM, or a DICOM object that cannot be read or re-encoded
    CONFLICT = "conflict"  # another input with the same SOP Instance UID and different content


class NotDicom(InvalidDicomError):
    """A file that is no DICOM object at all (no preamble, no SOP Class/Instance UID)."""


@dataclass(frozen=True)
class FileResult:
    """What happened to one input file (outputs: one per copy, in copy order)."""

    source: Path
    status: Status
    outputs: tuple[Path, ...] = ()
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status is Status.WRITTEN

    @property
    def failed(self) -> bool:
        return self.status not in (Status.WRITTEN, Status.SKIPPED)


@dataclass
class CopyResult:
    """One copy: its folder and the maps the audit keeps to recognise returned data."""

    copy_id: str
    directory: Path
    uid_map: dict[str, str] = field(default_factory=dict)
    patient_map: dict[str, str] = field(default_factory=dict)
    date_shift_days: int = 0


@dataclass
class Report:
    results: list[FileResult]
    copies: list[CopyResult]
    pseudonyms_csv: Path
    uid_map_csv: Path

    @property
    def failures(self) -> list[FileResult]:
        return [r for r in self.results if r.failed]

    @property
    def ok(self) -> bool:
        return not self.failures


def anonymize_files(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    copies: int | Sequence[str],
    profile: Profile,
    key: bytes,
    *,
    prefix: str = "ANON",
    pseudonyms: Mapping[str, PseudonymSource] | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> Report:
    """Write anonymised copies of the DICOM files in ``paths`` (files or folders, read recursively).

    Parameters
    ----------
    copies
        The number of copies (ids ``"1"`` … ``"N"``), or the copy ids themselves, e.g. ``["3"]`` to export
        more objects into copy 3 of an earlier run with the same key.
    pseudonyms
        Per copy id, the Patient ID -> pseudonym mapping or callable; default ``<prefix>-<copy>-<n>``.
    on_result
        Called with each :class:`FileResult` as soon as it is known (progress output).
    """
    check_key(key)
    out = Path(out_dir)
    copy_ids = [str(k) for k in range(1, copies + 1)] if isinstance(copies, int) else [str(c) for c in copies]
    if not copy_ids or len(set(copy_ids)) != len(copy_ids):
        raise ValueError("give at least one copy, each copy id once")
    anonymizers = {c: Anonymizer(profile, key, c, (pseudonyms or {}).get(c), prefix=prefix) for c in copy_ids}
    written: dict[Path, tuple[Path, str]] = {}  # output -> (source, sha256 of what was written)
    results = []
    # Listed before writing, and never from inside the output folder (OUT may sit inside an input folder).
    sources = [
        (p, named) for p, named in _dicom_candidates(paths) if not p.resolve().is_relative_to(out.resolve())
    ]
    for source, named in sources:
        result = _anonymize_one(source, named, out, anonymizers, written)
        results.append(result)
        if on_result is not None:
            on_result(result)
    copy_results = [
        CopyResult(c, out / f"copy-{c}", a.uid_map, a.patient_map, a.date_shift_days)
        for c, a in anonymizers.items()
    ]
    out.mkdir(parents=True, exist_ok=True)
    pseudonyms_csv = out / PSEUDONYMS_FILE_NAME
    uid_map_csv = out / UID_MAP_FILE_NAME
    _merge_csv(
        pseudonyms_csv, ("copy", "original_patient_id", "pseudonym"), _rows(copy_results, "patient_map")
    )
    _merge_csv(uid_map_csv, ("copy", "original_uid", "new_uid"), _rows(copy_results, "uid_map"))
    return Report(results, copy_results, pseudonyms_csv, uid_map_csv)


def _anonymize_one(
    source: Path,
    named: bool,
    out: Path,
    anonymizers: Mapping[str, Anonymizer],
    written: dict[Path, tuple[Path, str]],
) -> FileResult:
    try:
        ds = read_dicom(source)
    except NotDicom as exc:
        return FileResult(source, Status.UNREADABLE if named else Status.SKIPPED, message=str(exc))
    except Exception as exc:  # bad input is reported, never a crash: pydicom raises many kinds
        return FileResult(source, Status.UNREADABLE, message=f"cannot read it: {type(exc).__name__}: {exc}")
    outputs = []
    try:
        for copy_id, anonymizer in anonymizers.items():
            anonymised = anonymizer.anonymize(ds)
            target = out / f"copy-{copy_id}" / output_name(anonymised)
            data = _encode(anonymised)
            digest = hashlib.sha256(data).hexdigest()
            earlier = written.get(target)
            if earlier is not None and earlier[1] != digest:
                return FileResult(
                    source,
                    Status.CONFLICT,
                    message=f"same SOP Instance UID as {earlier[0]} but different content; "
                    "kept the first, fix the duplicate UID at the source",
                )
            _write_atomically(target, data)
            written[target] = (source, digest)
            outputs.append(target)
    except AnonymizationRefused as exc:
        return FileResult(source, Status.REFUSED, message=str(exc))
    except (
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        OverflowError,
    ) as exc:  # values pydicom cannot encode
        return FileResult(
            source, Status.UNREADABLE, message=f"cannot re-encode it: {type(exc).__name__}: {exc}"
        )
    return FileResult(source, Status.WRITTEN, tuple(outputs))


def read_dicom(path: Path) -> Dataset:
    """Read with ``force=True`` (exports without a Part-10 header exist) but insist on a SOP instance."""
    ds = pydicom.dcmread(path, force=True)
    if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
        if ds.preamble is not None:
            raise InvalidDicomError("a DICOM file without SOP Class/Instance UID")
        raise NotDicom("not a DICOM object (no SOP Class/Instance UID)")
    return ds


def output_name(ds: Dataset) -> str:
    """``<kind>-<24 hex>.dcm`` from rtbank's object kind and a hash of the *new* SOP Instance UID."""
    digest = hashlib.sha256(str(ds.SOPInstanceUID).encode("ascii")).hexdigest()[:24]
    return f"{rt_kind(str(ds.SOPClassUID)).value.replace('_', '-')}-{digest}.dcm"


def _encode(ds: Dataset) -> bytes:
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _write_atomically(target: Path, data: bytes) -> None:
    """Write then rename, so an interrupted run never leaves half a file under the final name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{secrets.token_hex(8)}-{target.name}")  # created with the user's umask
    try:
        with tmp.open("xb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _dicom_candidates(paths: Iterable[str | Path]) -> Iterator[tuple[Path, bool]]:
    """(file, named by the caller): files given, and files under folders given (sorted, hidden skipped)."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield Path(root) / name, False
        else:
            yield path, True


# -- keys and CSVs ----------------------------------------------------------------------------------


def read_key(path: Path) -> bytes:
    """A key file: 64 hexadecimal characters (as written by :func:`write_new_key`) or raw random bytes."""
    data = path.read_bytes()
    text = data.strip()
    try:
        key = bytes.fromhex(text.decode("ascii")) if len(text) == 64 else data
    except (UnicodeDecodeError, ValueError):
        key = data
    return check_key(key)


def write_new_key(path: Path, key: bytes) -> None:
    """Write ``key`` as hex to a new file readable by its owner only (never overwrites a key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex() + "\n")


def read_pseudonyms(path: Path) -> dict[str, dict[str, str]]:
    """A pseudonyms CSV (copy, original_patient_id, pseudonym) as copy -> {original -> pseudonym}."""
    table: dict[str, dict[str, str]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"copy", "original_patient_id", "pseudonym"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            table.setdefault(_unneutralise(row["copy"]), {})[_unneutralise(row["original_patient_id"])] = (
                _unneutralise(row["pseudonym"])
            )
    return table


def neutralise_cell(value: str) -> str:
    """Prefix a quote to cells a spreadsheet would run as a formula (CSV injection)."""
    return "'" + value if value.lstrip(" ").startswith(_FORMULA_START) or value.startswith("'") else value


def _unneutralise(value: str) -> str:
    return value[1:] if value.startswith("'") else value


def _rows(copies: list[CopyResult], attribute: str) -> Iterator[tuple[str, str, str]]:
    for result in copies:
        mapping: dict[str, str] = getattr(result, attribute)
        for original, new in mapping.items():
            yield result.copy_id, original, new


def _merge_csv(path: Path, header: tuple[str, str, str], rows: Iterable[tuple[str, str, str]]) -> None:
    merged: dict[tuple[str, str], str] = {}
    if path.exists():
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                merged[(_unneutralise(row[header[0]]), _unneutralise(row[header[1]]))] = _unneutralise(
                    row[header[2]]
                )
    for copy_id, original, new in rows:
        merged[(copy_id, original)] = new
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".csv")
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for (copy_id, original), new in sorted(
            merged.items(), key=lambda kv: (_copy_order(kv[0][0]), kv[0][1])
        ):
            writer.writerow([neutralise_cell(copy_id), neutralise_cell(original), neutralise_cell(new)])
    os.replace(tmp, path)


def _copy_order(copy_id: str) -> tuple[int, str]:
    return (int(copy_id), "") if copy_id.isdigit() else (1 << 30, copy_id)

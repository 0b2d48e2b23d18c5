"""Write anonymised copies of RT DICOM files (PS3.15 Basic Profile, keyed UIDs), no server needed.

Each copy gets its own patient pseudonyms, UIDs and date shift; references between the objects of a copy
(structure set → images, plan → structure set, dose and records → plan, registration → images) still
resolve. Copy k goes to OUT/copy-k/; OUT also receives pseudonyms.csv, uid-map.csv and, when no
--key-file is given, the generated key: keep those three, ship only the copy folders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rtbank.dicom.anonymize.files import (
    KEY_FILE_NAME,
    FileResult,
    Status,
    anonymize_files,
    read_key,
    read_pseudonyms,
    write_new_key,
)
from rtbank.dicom.anonymize.keyed import new_key
from rtbank.dicom.anonymize.profile import Option, Profile, SafePrivateTag, load_safe_private
from rtbank.dicom.anonymize.tables import action_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="DICOM files or folders")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument("--copies", type=int, default=1, metavar="N", help="number of copies (default 1)")
    parser.add_argument(
        "--first-copy", type=int, default=1, metavar="K", help="number of the first copy (default 1)"
    )
    parser.add_argument(
        "--option",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME",
        help="PS3.15 options (paths first, or repeat --option): " + ", ".join(o.cli_name for o in Option),
    )
    parser.add_argument(
        "--key-file",
        type=Path,
        metavar="F",
        help=f"the audit key (default: DIR/{KEY_FILE_NAME}, made if absent)",
    )
    parser.add_argument("--prefix", default="ANON", metavar="P", help="pseudonym prefix: P-<copy>-<n>")
    parser.add_argument(
        "--pseudonyms",
        type=Path,
        metavar="CSV",
        help="given pseudonyms (columns copy,original_patient_id,pseudonym)",
    )
    parser.add_argument(
        "--safe-private",
        action="append",
        default=[],
        metavar="CREATOR,GGGG,XX",
        help="a safe private attribute for --option retain-safe-private (repeatable)",
    )
    parser.add_argument(
        "--safe-private-file", type=Path, metavar="JSON", help="a safe private whitelist file"
    )


def run(args: argparse.Namespace) -> int:
    try:
        profile = _profile(args)
        if args.copies < 1 or args.first_copy < 1:
            raise ValueError("--copies and --first-copy must be at least 1")
        key, key_note = _key(args)
        pseudonyms = read_pseudonyms(args.pseudonyms) if args.pseudonyms else None
    except (OSError, ValueError) as exc:
        print(f"rtbank anonymize: {exc}", file=sys.stderr)
        return 2
    copy_ids = [str(k) for k in range(args.first_copy, args.first_copy + args.copies)]
    report = anonymize_files(
        args.paths,
        args.out,
        copy_ids,
        profile,
        key,
        prefix=args.prefix,
        pseudonyms=pseudonyms,
        on_result=_show,
    )
    written = sum(1 for r in report.results if r.ok)
    considered = sum(1 for r in report.results if r.status is not Status.SKIPPED)
    options = ", ".join(sorted(o.cli_name for o in profile.options)) or "none"
    print(
        f"{written} of {considered} DICOM file(s) anonymised into {len(copy_ids)} cop"
        f"{'y' if len(copy_ids) == 1 else 'ies'} under {args.out} "
        f"(PS3.15-{action_table().edition} Basic Profile, options: {options})"
    )
    print(f"pseudonyms: {report.pseudonyms_csv}")
    print(f"UID map: {report.uid_map_csv}")
    print(key_note)
    if report.failures:
        print(f"rtbank anonymize: {len(report.failures)} file(s) not anonymised, see above", file=sys.stderr)
        return 1
    return 0


def _profile(args: argparse.Namespace) -> Profile:
    options = {Option.parse(name) for name in args.option}
    safe = {SafePrivateTag.parse(text) for text in args.safe_private}
    if args.safe_private_file:
        safe |= load_safe_private(args.safe_private_file)
    return Profile(options, safe)


def _key(args: argparse.Namespace) -> tuple[bytes, str]:
    if args.key_file:
        return read_key(args.key_file), f"key: {args.key_file}"
    path = args.out / KEY_FILE_NAME
    if path.exists():
        return read_key(path), f"key: reused {path}, so these copies match earlier exports into {args.out}"
    key = new_key()
    write_new_key(path, key)
    return key, (
        f"key: generated {path} (mode 0600); keep it secret and pass it with --key-file to export more "
        "objects into the same copies consistently"
    )


def _show(result: FileResult) -> None:
    if result.ok:
        names = ", ".join(f"{p.parent.name}/{p.name}" for p in result.outputs)
        print(f"ok          {result.source} -> {names}")
    elif not result.failed:
        print(f"{result.status.value:<11} {result.source}: {result.message}")
    else:
        print(f"{result.status.value:<11} {result.source}: {result.message}", file=sys.stderr)

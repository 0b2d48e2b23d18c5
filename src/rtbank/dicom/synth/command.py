"""Write a realistic synthetic multi-centre DICOM-RT archive (images, structures, plans, doses, records).

Deterministic: the same --seed gives byte-identical files. A manifest.json at the top of the output folder
describes every file, plan, expected harvest, decoy and anomaly.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from rtbank.dicom.synth.archive import ArchiveError, check_arguments, generate_archive


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--patients", type=int, required=True, metavar="N", help="number of patients")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="output folder (empty or an earlier archive)"
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument(
        "--institutions", type=int, default=3, metavar="K", help="number of institutions (default 3)"
    )
    parser.add_argument(
        "--full-size", action="store_true", help="512 x 512 CT with realistic slice counts (benchmarks)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, metavar="W", help="parallel processes (default: CPU count)"
    )

    parser.error = functools.partial(_refuse, parser.prog)  # type: ignore[method-assign]


def _refuse(prog: str, message: str) -> NoReturn:
    """argparse's error, as one line (argparse would print the whole usage first)."""
    print(f"{prog}: {message} (see {prog} --help)", file=sys.stderr)
    raise SystemExit(2)


def run(args: argparse.Namespace) -> int:
    try:
        check_arguments(args.patients, args.seed, args.institutions)
        if args.workers is not None and args.workers < 1:
            raise ArchiveError(f"--workers must be at least 1, not {args.workers}")
        started = time.perf_counter()
        manifest = _generate(args)
    except (ArchiveError, OSError) as error:
        print(f"rtbank synth: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    c = manifest["counts"]
    modalities = ", ".join(f"{m} {n}" for m, n in c["by_modality"].items())
    print(
        f"{_count(c['patients'], 'patient')}, {_count(c['studies'], 'study', 'studies')}, "
        f"{_count(c['series'], 'series', 'series')}, {_count(c['instances'], 'file')} "
        f"({modalities}) in {elapsed:.1f} s -> {args.out}"
    )
    print(f"manifest: {args.out / 'manifest.json'}")
    return 0


def _count(number: int, one: str, many: str | None = None) -> str:
    return f"{number} {one if number == 1 else many or one + 's'}"


def _generate(args: argparse.Namespace) -> dict[str, Any]:
    options = dict(
        patients=args.patients,
        seed=args.seed,
        institutions=args.institutions,
        full_size=args.full_size,
        workers=args.workers,
    )
    if not sys.stderr.isatty():
        return generate_archive(args.out, **options)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "writing patients", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
    ) as bar:
        task = bar.add_task("synth", total=args.patients)
        return generate_archive(
            args.out, progress=lambda done, _total: bar.update(task, completed=done), **options
        )

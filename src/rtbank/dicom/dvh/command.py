"""DVH metrics per ROI (Gy, cc, %) from an RTSTRUCT and its RTDOSE, no server needed.

Examples::

    rtbank dvh RS.dcm RD.dcm
    rtbank dvh RS.dcm RD.dcm --roi 'PTV*' Rectum --metrics 'D95%,D2%,V60Gy[%],D0.03cc' --csv > dvh.csv
    rtbank dvh RS.dcm RD_beam1.dcm RD_beam2.dcm --plan RP.dcm --json
    rtbank dvh RS.dcm RD.dcm --plan RP.dcm --metrics 'EQD2:Dmean,EQD2:D2%' --alpha-beta 'PTV*=10,*=3'

Quote patterns and metric lists: the shell would expand ``*`` and ``[…]``.

Exit status: 0 done, 1 the files cannot be used (unreadable, wrong modality, frames of reference that
differ, a dose grid that is not axial, …), 2 bad arguments (unknown metric, no such ROI).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset

from rtbank.dicom.contours import Roi, StructureSet
from rtbank.dicom.dosegrid import DoseGrid, combine_plan_doses, fraction_dose_looks_total, planned_fractions
from rtbank.dicom.dvh.calculate import check_frame_of_reference, dvh_for_roi, report
from rtbank.dicom.dvh.metrics import DEFAULT_METRIC_NAMES, MetricSpec, Quantity, parse_metrics, roi_pattern

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class UsageError(Exception):
    """A bad argument: exit status 2."""


class InputError(Exception):
    """Files that cannot be used: exit status 1."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``rtbank dvh``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("rtstruct", metavar="RTSTRUCT", help="the structure set (DICOM file)")
    parser.add_argument(
        "rtdose",
        metavar="RTDOSE",
        nargs="+",
        help="the dose; several BEAM doses of one plan are summed, a PLAN dose is used as is",
    )
    parser.add_argument(
        "--roi",
        metavar="NAME",
        nargs="+",
        action="extend",
        default=None,
        help="ROI names, any case, or patterns with * and ? (default: every ROI with contours)",
    )
    parser.add_argument(
        "--metrics",
        metavar="LIST",
        help="comma-separated metrics, e.g. D95%%,V20Gy[%%],V20Gy[cc],D0.03cc,EQD2:Dmean "
        f"(default: {','.join(DEFAULT_METRIC_NAMES).replace('%', '%%')})",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="a JSON list, one object per ROI")
    output.add_argument("--csv", action="store_true", help="CSV, one row per ROI")
    parser.add_argument(
        "--plan",
        metavar="RTPLAN",
        help="the plan: its number of fractions scales FRACTION doses and feeds EQD2/BED",
    )
    parser.add_argument("--fractions", type=int, metavar="N", help="number of fractions (overrides --plan)")
    parser.add_argument(
        "--alpha-beta",
        metavar="ROI=GY,…",
        help="α/β in Gy per ROI name or pattern for EQD2:/BED: metrics, e.g. 'PTV*=10,*=3'",
    )
    parser.add_argument(
        "--curve",
        action="store_true",
        help="with --json: add each ROI's cumulative DVH (dose step in Gy, volumes in cc)",
    )


def run(args: argparse.Namespace) -> int:
    """Compute and print the metrics; returns the exit status."""
    try:
        rows = _compute(args)
    except UsageError as exc:
        print(f"rtbank dvh: error: {exc}", file=sys.stderr)
        return 2
    except InputError as exc:
        print(f"rtbank dvh: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, KeyError) as exc:
        print(f"rtbank dvh: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - bad input must end with one readable line, not a traceback
        print(f"rtbank dvh: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif args.csv:
        sys.stdout.write(to_csv(rows))
    else:
        _print_table(rows)
    return 0


# --------------------------------------------------------------------- the work
def _compute(args: argparse.Namespace) -> list[dict[str, Any]]:
    specs = _metrics(args.metrics)
    alpha_beta = _alpha_beta(args.alpha_beta)
    structure_set = StructureSet.from_dataset(_read(args.rtstruct, "RTSTRUCT"))
    grids = [DoseGrid.from_dataset(_read(path, "RTDOSE")) for path in args.rtdose]
    plan = _read(args.plan, "RTPLAN", "RTIONPLAN") if args.plan else None
    fractions = args.fractions
    if fractions is None and plan is not None:
        fractions = planned_fractions(plan, grids[0].referenced_fraction_group)
    if fractions is not None and fractions < 1:
        raise UsageError("--fractions must be at least 1")
    if fractions is None and any(s.quantity is not Quantity.PHYSICAL for s in specs):
        raise UsageError(
            "EQD2:/BED: metrics need the number of fractions: give --fractions N or --plan RTPLAN"
        )
    dose_flags = _dose_flags(grids, plan, fractions)
    grid = combine_plan_doses(grids, fractions)
    check_frame_of_reference(structure_set, grid)
    rows = []
    for roi in _select(structure_set, args.roi):
        result = dvh_for_roi(structure_set, roi, grid)
        row = report(result, grid, specs, fractions=fractions, alpha_beta=alpha_beta)
        row["flags"] = [*row["flags"], *dose_flags]
        if args.curve:
            row["curve"] = result.histogram.curve().to_dict()
        rows.append(row)
    return rows


def _read(path: str, *modalities: str) -> Dataset:
    kind = modalities[0]
    if not Path(path).is_file():
        raise InputError(f"cannot read {kind} {path}: no such file")
    try:
        ds = pydicom.dcmread(path, force=True)
        modality = str(ds.get("Modality", "") or "")
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on garbage
        raise InputError(f"cannot read {kind} {path}: {_one_line(exc)}") from exc
    if modality not in modalities:
        raise InputError(f"{path} is not an {kind} (Modality {modality or 'missing'}): cannot read {kind}")
    return ds


def _metrics(text: str | None) -> list[MetricSpec]:
    try:
        specs = parse_metrics(text if text is not None else ",".join(DEFAULT_METRIC_NAMES))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if not specs:
        raise UsageError("--metrics is empty")
    return specs


def _alpha_beta(text: str | None) -> dict[str, float]:
    values: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not name.strip() or not number > 0:
            raise UsageError(
                f"--alpha-beta item {item.strip()!r}: write ROI=GY with α/β > 0, e.g. 'Rectum=3'"
            )
        values[name.strip()] = number
    return values


def _select(structure_set: StructureSet, names: Sequence[str] | None) -> list[Roi]:
    if not names:
        return [r for r in structure_set.rois if r.planes]
    chosen: dict[int, Roi] = {}
    for name in names:
        matches = [r for r in structure_set.rois if r.name.casefold() == name.casefold()]
        matches = matches or [r for r in structure_set.rois if roi_pattern(name).fullmatch(r.name)]
        if not matches:
            available = ", ".join(r.name for r in structure_set.rois)
            raise UsageError(f"no ROI matches {name!r} in the RTSTRUCT (ROIs: {available})")
        chosen.update((r.number, r) for r in matches)
    return [r for r in structure_set.rois if r.number in chosen]


def _dose_flags(grids: Sequence[DoseGrid], plan: Dataset | None, fractions: int | None) -> list[str]:
    """A per-fraction dose whose values look like a whole treatment (a known export quirk)."""
    if plan is None or not fractions or fractions == 1:
        return []
    return ["per_fraction_dose_suspect"] if any(fraction_dose_looks_total(g, plan) for g in grids) else []


# --------------------------------------------------------------------- output
def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """CSV text, one row per ROI; cells that a spreadsheet would run as a formula are neutralised."""
    metric_names = list(dict.fromkeys(name for row in rows for name in row["metrics"]))
    header = ["roi", "number", "type", "volume_cc", "covered_volume_cc", *metric_names, "flags"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        metrics = row["metrics"]
        assert isinstance(metrics, dict)
        values = [
            row["roi"],
            row["number"],
            row["type"],
            row["volume_cc"],
            row["covered_volume_cc"],
            *(metrics.get(name) for name in metric_names),
            ";".join(row["flags"]),
        ]
        writer.writerow([safe_cell(v) for v in values])
    return buffer.getvalue()


def safe_cell(value: object) -> str:
    """A CSV cell that spreadsheets show as text: ``=``, ``+``, ``-``, ``@`` (tab, CR) at the start get a
    leading apostrophe, except in plain numbers."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.match(text):
        return "'" + text
    return text


def _print_table(rows: Sequence[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    metric_names = list(dict.fromkeys(name for row in rows for name in row["metrics"]))
    table = Table(title="DVH metrics", title_justify="left")
    headers = [
        "Volume [cc]",
        "Covered [cc]",
        *(n if n.startswith("V") or ":V" in n else f"{n} [Gy]" for n in metric_names),
    ]
    table.add_column("ROI", no_wrap=True)
    for header in headers:
        table.add_column(escape(header), justify="right", no_wrap=True, min_width=len(header))
    table.add_column("Flags")
    for row in rows:
        metrics = row["metrics"]
        assert isinstance(metrics, dict)
        table.add_row(
            escape(str(row["roi"])),
            _format(row["volume_cc"], "cc"),
            _format(row["covered_volume_cc"], "cc"),
            *(_format(metrics.get(n), _unit(n)) for n in metric_names),
            escape(", ".join(row["flags"])),
        )
    width = None if sys.stdout.isatty() else 60 + 14 * (len(metric_names) + 3)
    console = Console(width=width, highlight=False)
    console.print(table)
    if rows:
        console.print(escape("Dose: " + "; ".join(rows[0]["dose_steps"])), soft_wrap=True)


def _unit(name: str) -> str:
    return "%" if name.endswith("[%]") else "cc" if name.endswith("[cc]") else "Gy"


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    number = float(value)
    if unit == "cc":
        return f"{number:.3f}" if abs(number) < 100 else f"{number:.1f}"
    return f"{number:.2f}" if unit == "Gy" else f"{number:.1f}"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__

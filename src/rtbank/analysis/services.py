"""The analysis area's verbs for people (web and CLI): protocol, metric lists, TG-263 list.

Mapping rules are in :mod:`rtbank.analysis.mapping`; DVH work in :mod:`rtbank.analysis.calculation`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable

from django.db import transaction

from rtbank.analysis import calculation, qa
from rtbank.analysis.models import DoseConstraint, ProjectAnalysis, RequiredRoi, Tg263Name
from rtbank.analysis.overview import project_plans
from rtbank.analysis.protocol import ConstraintSpec, check_constraint, parse_constraint
from rtbank.dicom.dvh import DEFAULT_METRIC_NAMES, parse_metric
from rtbank.dicom.roi_patterns import check_standard_name
from rtbank.projects.models import Project

MAX_PROJECT_METRICS = 60


def project_metrics(project: Project) -> list[str]:
    settings_row = ProjectAnalysis.objects.filter(project=project).first()
    return list(settings_row.metrics) if settings_row else list(DEFAULT_METRIC_NAMES)


def set_project_metrics(project: Project, names: Iterable[str]) -> list[str]:
    """Store the project's metric list (canonical names) and queue DVHs that lack one of them.

    Raises ValueError naming the metric that cannot be read.
    """
    specs = [parse_metric(n) for n in names if n.strip()]
    if any(spec.quantity.value != "physical" for spec in specs):
        raise ValueError("EQD2: and BED: metrics need an α/β per ROI, which projects cannot set yet")
    canonical = list(dict.fromkeys(spec.name for spec in specs))
    if not canonical:
        raise ValueError("give at least one metric, e.g. D95%, V20Gy[%], D0.03cc")
    if len(canonical) > MAX_PROJECT_METRICS:
        raise ValueError(f"at most {MAX_PROJECT_METRICS} metrics")
    ProjectAnalysis.objects.update_or_create(project=project, defaults={"metrics": canonical})
    calculation.enqueue_plans(project_plans(project), "project metric list changed")
    return canonical


def add_required_roi(project: Project, standard_name: str) -> RequiredRoi:
    row, _ = RequiredRoi.objects.get_or_create(
        project=project, standard_name=check_standard_name(standard_name)
    )
    qa.evaluate_project(project)
    return row


def remove_required_roi(project: Project, pk: int) -> None:
    RequiredRoi.objects.filter(project=project, pk=pk).delete()
    qa.evaluate_project(project)


def add_constraint(project: Project, spec: ConstraintSpec | str, *, actor: str) -> DoseConstraint:
    """Store a dose constraint (text form or parsed), queue DVHs lacking its metric, grade the plans."""
    parsed = parse_constraint(spec) if isinstance(spec, str) else check_constraint(spec)
    check_standard_name(parsed.standard_name)
    with transaction.atomic():
        row = DoseConstraint.objects.create(project=project, created_by=actor, **parsed.as_fields())
    calculation.enqueue_plans(project_plans(project), "protocol constraint added")
    qa.evaluate_project(project)
    return row


def remove_constraint(project: Project, pk: int) -> None:
    DoseConstraint.objects.filter(project=project, pk=pk).delete()
    qa.evaluate_project(project)


# ------------------------------------------------------------------------------------------ TG-263
_HEADER_KEYS = {
    "name": ("tg263primaryname", "primaryname", "tg263name"),
    "reverse_name": ("tg263reverseordername", "reverseordername"),
    "target_type": ("targettype",),
    "major_category": ("majorcategory",),
    "minor_category": ("minorcategory",),
    "anatomic_group": ("anatomicgroup",),
    "description": ("description",),
    "fma_id": ("fmaid",),
}


class Tg263Error(ValueError):
    pass


def import_tg263(data: bytes, source_name: str) -> int:
    """Replace the TG-263 list with the names in ``data``: the official spreadsheet saved as CSV (comma,
    semicolon or tab separated; columns found by their headers, e.g. "TG263-Primary Name"). Returns the
    number of names. The file is not kept; its name and SHA-256 are recorded with each name.
    """
    digest = hashlib.sha256(data).hexdigest()
    text = data.decode("utf-8-sig", errors="replace")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    header_index, columns = _find_header(rows)
    source = f"{source_name[:120]} sha256:{digest}"
    names: dict[str, Tg263Name] = {}
    for row in rows[header_index + 1 :]:
        values = {key: (row[i].strip() if i < len(row) else "") for key, i in columns.items()}
        name = values.get("name", "")
        if not name or len(name) > 64 or " " in name:
            continue
        names[name] = Tg263Name(source=source, **{k: v[: _limit(k)] for k, v in values.items()})
    if not names:
        raise Tg263Error("no TG-263 names found: the file needs a column headed 'TG263-Primary Name'")
    with transaction.atomic():
        Tg263Name.objects.all().delete()
        Tg263Name.objects.bulk_create(names.values(), batch_size=500)
    return len(names)


def _limit(field_name: str) -> int:
    return Tg263Name._meta.get_field(field_name).max_length or 64


def _find_header(rows: list[list[str]]) -> tuple[int, dict[str, int]]:
    for index, row in enumerate(rows[:20]):
        keys = [re.sub(r"[^a-z0-9]", "", cell.lower()) for cell in row]
        columns = {}
        for field_name, accepted in _HEADER_KEYS.items():
            found = next((i for i, k in enumerate(keys) if k in accepted), None)
            if found is not None:
                columns[field_name] = found
        if "name" in columns:
            return index, columns
    raise Tg263Error("no header row with a 'TG263-Primary Name' column in the first 20 rows")


def qa_after_mapping(project: Project) -> None:
    """The mapping decides which ROI a constraint applies to: grade the plans again (no notification)."""
    qa.evaluate_project(project)

"""ROI name mapping per project: the rules, their stored verdicts, CSV import/export.

Matching and precedence live in :mod:`rtbank.dicom.roi_patterns`. Here the verdict for every distinct
(institution, original ROI name) of the catalog is kept in :class:`RoiNameMapping`, so pages, CSV and
SQL views read one table: it is rebuilt for the whole project when a rule changes (at once, in the same
transaction) and for new names when data arrives (the analysis stage). The institution of a ROI is the
institution its structure set came from. DICOM files are never touched; original names are kept.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce

from rtbank.analysis.models import NO_INSTITUTION, MappingStatus, RoiMappingRule, RoiNameMapping
from rtbank.catalog.models import Instance, Roi, RTPlan
from rtbank.dicom.roi_patterns import MatchStatus, Resolution, RoiPattern, RuleSet, check_standard_name
from rtbank.institutions.models import Institution
from rtbank.projects.models import Project

RULES_CSV_HEADER = ["pattern", "standard_name", "institution"]
Pair = tuple[int, str]  # (institution key, original ROI name)


class RuleError(ValueError):
    """A rule that cannot be stored, with the reason for the person who wrote it."""


def ruleset(project: Project) -> RuleSet:
    return RuleSet([r.as_rule() for r in RoiMappingRule.objects.filter(project=project)])


def add_rule(
    project: Project,
    pattern: str,
    standard_name: str,
    *,
    institution: Institution | None = None,
    actor: str,
    refresh: bool = True,
) -> RoiMappingRule:
    """Store a rule and apply the project's rules to all data at once."""
    try:
        RoiPattern.compile(pattern)
        standard = check_standard_name(standard_name)
    except ValueError as exc:
        raise RuleError(str(exc)) from exc
    if len(pattern) > 128 or len(standard) > 64:
        raise RuleError("pattern at most 128 and standard name at most 64 characters")
    try:
        with transaction.atomic():
            rule = RoiMappingRule.objects.create(
                project=project,
                institution=institution,
                pattern=pattern.strip(),
                standard_name=standard,
                created_by=actor,
            )
            if refresh:
                refresh_project(project)
    except IntegrityError as exc:
        scope = institution.code if institution else "all institutions"
        raise RuleError(
            f"a rule with the pattern {pattern!r} for {scope} exists already; delete it first"
        ) from exc
    return rule


def delete_rule(project: Project, rule_id: int) -> bool:
    with transaction.atomic():
        deleted, _ = RoiMappingRule.objects.filter(project=project, pk=rule_id).delete()
        if deleted:
            refresh_project(project)
    return bool(deleted)


# ------------------------------------------------------------------------------------------- verdicts
def institution_key_expression() -> Coalesce:
    return Coalesce(F("structure_set__instance__institution_id"), Value(NO_INSTITUTION))


def name_pairs(rois: Iterable[Roi] | None = None, names: Iterable[str] | None = None) -> set[Pair]:
    """Distinct (institution key, name) of the catalog's ROIs (optionally of some names only)."""
    qs = Roi.objects.all()
    if names is not None:
        qs = qs.filter(name__in=list(names))
    rows = qs.annotate(ikey=institution_key_expression()).values_list("ikey", "name").distinct()
    return {(int(k), n) for k, n in rows}


def _rows(project: Project, rules: RuleSet, pairs: Iterable[Pair]) -> list[RoiNameMapping]:
    rows = []
    for (name, ikey), verdict in rules.resolve_all((name, ikey) for ikey, name in pairs).items():
        if verdict.status is MatchStatus.UNMATCHED:
            continue
        rows.append(
            RoiNameMapping(
                project=project,
                institution_key=ikey if isinstance(ikey, int) else NO_INSTITUTION,
                roi_name=name,
                status=MappingStatus(verdict.status.value),
                standard_name=verdict.standard_name or "",
                rule_id=verdict.winners[0].key if verdict.standard_name else None,
                candidates=verdict.candidates if verdict.status is MatchStatus.CONFLICT else [],
            )
        )
    return rows


def refresh_project(project: Project) -> int:
    """Rebuild the project's verdicts over every ROI name of the catalog; returns the rows stored."""
    rules = ruleset(project)
    with transaction.atomic():
        RoiNameMapping.objects.filter(project=project).delete()
        rows = _rows(project, rules, name_pairs()) if rules.rules else []
        RoiNameMapping.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def refresh_names(names: Iterable[str]) -> int:
    """Verdicts for ``names`` (e.g. the ROIs that just arrived) in every project that has rules."""
    wanted = set(names)
    if not wanted:
        return 0
    pairs = name_pairs(names=wanted)
    stored = 0
    for project in Project.objects.filter(roi_mapping_rules__isnull=False).distinct():
        rules = ruleset(project)
        RoiNameMapping.objects.filter(project=project, roi_name__in=wanted).delete()
        rows = _rows(project, rules, pairs)
        RoiNameMapping.objects.bulk_create(rows, batch_size=500)
        stored += len(rows)
    return stored


@dataclass
class MappingIndex:
    """A project's verdicts in memory: ``(institution key, name) → (status, standard name, candidates)``."""

    verdicts: dict[Pair, tuple[str, str, list[str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, project: Project, names: Iterable[str] | None = None) -> MappingIndex:
        """The project's verdicts (only for ``names`` when given: a page about one plan loads no more)."""
        rows = RoiNameMapping.objects.filter(project=project)
        if names is not None:
            rows = rows.filter(roi_name__in=set(names))
        values = rows.values_list("institution_key", "roi_name", "status", "standard_name", "candidates")
        return cls({(k, n): (s, std, c) for k, n, s, std, c in values})

    @classmethod
    def for_plans(cls, project: Project, plans: Iterable[Instance]) -> MappingIndex:
        """The verdicts for the ROI names of ``plans``' structure sets."""
        ss_uids = RTPlan.objects.filter(instance__in=list(plans)).values("structure_set_uid")
        names = Roi.objects.filter(structure_set__instance__sop_instance_uid__in=ss_uids).values_list(
            "name", flat=True
        )
        return cls.of(project, names)

    def standard(self, ikey: int, name: str) -> str:
        verdict = self.verdicts.get((ikey, name))
        return verdict[1] if verdict and verdict[0] == MappingStatus.MATCHED else ""

    def status(self, ikey: int, name: str) -> str:
        verdict = self.verdicts.get((ikey, name))
        return verdict[0] if verdict else "unmatched"

    def candidates(self, ikey: int, name: str) -> list[str]:
        verdict = self.verdicts.get((ikey, name))
        return list(verdict[2]) if verdict else []


def explain(project: Project, name: str, institution_key: int) -> Resolution:
    """The rules' reasoning for one name (for the rule page's "test a name")."""
    return ruleset(project).resolve(name, institution_key or None)


# ----------------------------------------------------------------------------------------- CSV
def rules_csv_rows(project: Project) -> list[list[str]]:
    rules = RoiMappingRule.objects.filter(project=project).select_related("institution")
    return [[r.pattern, r.standard_name, r.institution.code if r.institution else ""] for r in rules]


@dataclass
class ImportReport:
    added: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


def import_rules_csv(project: Project, text: str, *, actor: str, replace: bool = False) -> ImportReport:
    """Read ``pattern,standard_name[,institution]`` rows (header optional); all or nothing.

    With ``replace`` the project's rules are replaced by the file's; otherwise the file's rules are
    added and rules already present (same pattern and scope, same standard name) are left alone.
    """
    report = ImportReport()
    institutions = {i.code.casefold(): i for i in Institution.objects.all()}
    parsed: list[tuple[str, str, Institution | None]] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or (number == 1 and [c.casefold() for c in cells[:2]] == RULES_CSV_HEADER[:2]):
            continue
        _parse_row(number, cells, institutions, parsed, report)
    if report.errors:
        return report
    with transaction.atomic():
        if replace:
            RoiMappingRule.objects.filter(project=project).delete()
        existing = {
            (r.institution_id, r.folded_pattern): r.standard_name
            for r in RoiMappingRule.objects.filter(project=project)
        }
        for pattern, standard, institution in parsed:
            key = (institution.pk if institution else None, RoiPattern.compile(pattern).text)
            if existing.get(key) == standard:
                report.unchanged += 1
                continue
            if key in existing:
                report.errors.append(f"pattern {pattern!r}: a rule giving {existing[key]!r} exists already")
                continue
            try:
                add_rule(project, pattern, standard, institution=institution, actor=actor, refresh=False)
            except RuleError as exc:
                report.errors.append(f"pattern {pattern!r}: {exc}")
                continue
            existing[key] = standard
            report.added += 1
        if report.errors:
            transaction.set_rollback(True)
            report.added = 0
            return report
        refresh_project(project)
    return report


def _parse_row(
    number: int,
    cells: list[str],
    institutions: dict[str, Institution],
    parsed: list[tuple[str, str, Institution | None]],
    report: ImportReport,
) -> None:
    if len(cells) < 2 or not cells[0] or not cells[1]:
        report.errors.append(f"line {number}: need pattern,standard_name[,institution]")
        return
    code = cells[2] if len(cells) > 2 else ""
    institution = institutions.get(code.casefold()) if code else None
    if code and institution is None:
        report.errors.append(f"line {number}: unknown institution {code!r}")
        return
    try:
        RoiPattern.compile(cells[0])
        parsed.append((cells[0], check_standard_name(cells[1]), institution))
    except ValueError as exc:
        report.errors.append(f"line {number}: {exc}")

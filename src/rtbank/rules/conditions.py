"""Rule conditions: parsed from JSON into typed objects that test one stored object (its :class:`Facts`).

A rule's conditions are one group; groups nest::

    {"type": "all", "conditions": [
        {"type": "roi", "pattern": "TRIAL_*", "contours": "empty"},
        {"type": "attribute", "path": "BeamSequence[*].TreatmentMachineName", "op": "equals", "value": "TB1"},
        {"type": "any", "conditions": [{"type": "calling_ae", "values": ["ECLIPSE"]},
                                        {"type": "called_ae", "values": ["TRIAL_X"]}]}]}

Leaf types: ``roi`` (name pattern; ``contours`` empty / contoured / either), ``attribute`` (a keyword or tag
path into sequences; ``op`` equals / pattern / regex / present), ``modality``, ``sop_class``,
``calling_ae``, ``institution`` (sending institution code), ``called_ae``, ``study_date`` (``from``/``to``,
inclusive ISO dates). Every leaf but ``attribute`` also has an SQL form (:meth:`Condition.to_q`), used to
narrow the objects before the exact test, so a dry run over a large archive reads few files.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, OuterRef, Q

from rtbank.rules import patterns
from rtbank.rules.paths import AttributePath

MAX_REGEX = 200
MAX_VALUES = 50


class RuleError(ValueError):
    """A condition or action that cannot be used; the message names it and says what is accepted."""


@dataclass
class Facts:
    """What a condition may ask about one stored object."""

    instance_id: int
    patient_id: int
    kind: str
    modality: str
    sop_class_uid: str
    calling_ae: str
    called_ae: str
    institution: str  # code of the sending institution, "" when unknown
    study_date: dt.date | None
    rois: list[tuple[str, int]] = field(default_factory=list)  # (name, contour count) of a structure set
    attribute: Callable[[AttributePath], tuple[bool, list[str]]] = lambda path: (False, [])


class Condition:
    def matches(self, facts: Facts) -> bool:
        raise NotImplementedError

    def to_q(self) -> Q | None:
        """An SQL filter on ``Instance`` every matching object passes (``None``: no SQL form)."""
        return None

    def attribute_paths(self) -> list[AttributePath]:
        return []

    def describe(self) -> str:
        raise NotImplementedError


@dataclass
class Group(Condition):
    mode: str  # "all" | "any"
    children: list[Condition]

    def matches(self, facts: Facts) -> bool:
        # Cheap tests first: attribute tests may read the file.
        ordered = sorted(self.children, key=lambda c: bool(c.attribute_paths()))
        test = all if self.mode == "all" else any
        return test(child.matches(facts) for child in ordered)

    def to_q(self) -> Q | None:
        parts = [child.to_q() for child in self.children]
        if self.mode == "all":
            known = [q for q in parts if q is not None]
            return _combine(known, and_=True) if known else None
        if not parts or any(q is None for q in parts):
            return None
        return _combine([q for q in parts if q is not None], and_=False)

    def attribute_paths(self) -> list[AttributePath]:
        return [p for child in self.children for p in child.attribute_paths()]

    def describe(self) -> str:
        joiner = " and " if self.mode == "all" else " or "
        inner = joiner.join(child.describe() for child in self.children)
        return f"({inner})" if len(self.children) > 1 else inner


@dataclass
class RoiCondition(Condition):
    pattern: str
    contours: str  # empty | contoured | either

    def matches(self, facts: Facts) -> bool:
        for name, count in facts.rois:
            if patterns.matches(self.pattern, name) and self._count_ok(count):
                return True
        return False

    def _count_ok(self, count: int) -> bool:
        return self.contours == "either" or (count == 0) == (self.contours == "empty")

    def to_q(self) -> Q:
        from rtbank.catalog.models import Roi

        rois = Roi.objects.filter(
            structure_set__instance=OuterRef("pk"), name__iregex=patterns.pattern_regex(self.pattern)
        )
        if self.contours == "empty":
            rois = rois.filter(contour_count=0)
        elif self.contours == "contoured":
            rois = rois.filter(contour_count__gt=0)
        return Q(Exists(rois))

    def describe(self) -> str:
        state = {"empty": "empty ", "contoured": "contoured ", "either": ""}[self.contours]
        return f"an {state}ROI named {self.pattern!r}"


@dataclass
class AttributeCondition(Condition):
    path: AttributePath
    op: str  # equals | pattern | regex | present
    value: str = ""

    def __post_init__(self) -> None:
        self._regex = re.compile(self.value) if self.op == "regex" else None

    def matches(self, facts: Facts) -> bool:
        present, values = facts.attribute(self.path)
        if self.op == "present":
            return present
        return any(self._value_matches(v) for v in values)

    def _value_matches(self, value: str) -> bool:
        value = value[:1024]
        if self.op == "equals":
            return _equal(value, self.value)
        if self.op == "pattern":
            return patterns.matches(self.value, value)
        assert self._regex is not None
        return self._regex.search(value) is not None

    def attribute_paths(self) -> list[AttributePath]:
        return [self.path]

    def describe(self) -> str:
        if self.op == "present":
            return f"{self.path} present"
        return f"{self.path} {self.op} {self.value!r}"


@dataclass
class ValuesCondition(Condition):
    kind: str  # modality | sop_class | calling_ae | called_ae | institution
    values: list[str]

    FIELDS = {
        "modality": ("modality", "series__modality__in"),
        "sop_class": ("sop_class_uid", "sop_class_uid__in"),
        "calling_ae": ("calling_ae", "calling_ae__in"),
        "called_ae": ("called_ae", "called_ae__in"),
        "institution": ("institution", "institution__code__in"),
    }

    def matches(self, facts: Facts) -> bool:
        return getattr(facts, self.FIELDS[self.kind][0]) in self.values

    def to_q(self) -> Q:
        return Q(**{self.FIELDS[self.kind][1]: self.values})

    def describe(self) -> str:
        label = self.kind.replace("_", " ")
        return (
            f"{label} {self.values[0]}" if len(self.values) == 1 else f"{label} in {', '.join(self.values)}"
        )


@dataclass
class StudyDateCondition(Condition):
    start: dt.date | None
    end: dt.date | None

    def matches(self, facts: Facts) -> bool:
        if facts.study_date is None:
            return False
        after_start = self.start is None or facts.study_date >= self.start
        return after_start and (self.end is None or facts.study_date <= self.end)

    def to_q(self) -> Q:
        q = Q(series__study__date__isnull=False)
        if self.start:
            q &= Q(series__study__date__gte=self.start)
        if self.end:
            q &= Q(series__study__date__lte=self.end)
        return q

    def describe(self) -> str:
        return f"study date {self.start or '…'} to {self.end or '…'}"


# --- parsing -------------------------------------------------------------------------------------------
LEAF_TYPES = (
    "roi",
    "attribute",
    "modality",
    "sop_class",
    "calling_ae",
    "called_ae",
    "institution",
    "study_date",
)
ATTRIBUTE_OPS = ("equals", "pattern", "regex", "present")
CONTOURS = ("empty", "contoured", "either")


def parse(spec: Any, depth: int = 0) -> Condition:
    """A condition tree from its JSON form, or :class:`RuleError` naming what is wrong."""
    if not isinstance(spec, dict):
        raise RuleError("a condition is an object with a 'type'")
    kind = spec.get("type")
    if kind in ("all", "any"):
        if depth > 4:
            raise RuleError("condition groups nest at most 4 deep")
        children = spec.get("conditions")
        if not isinstance(children, list) or not children:
            raise RuleError(f"an '{kind}' group needs at least one condition")
        return Group(kind, [parse(child, depth + 1) for child in children])
    if kind == "roi":
        return _roi(spec)
    if kind == "attribute":
        return _attribute(spec)
    if kind in ValuesCondition.FIELDS:
        return ValuesCondition(kind, _values(spec, kind))
    if kind == "study_date":
        start, end = _date(spec.get("from"), "from"), _date(spec.get("to"), "to")
        if start is None and end is None:
            raise RuleError("a study date condition needs 'from', 'to' or both")
        if start and end and start > end:
            raise RuleError("the study date range ends before it starts")
        return StudyDateCondition(start, end)
    raise RuleError(f"unknown condition type {kind!r}; use all, any or one of {', '.join(LEAF_TYPES)}")


def _roi(spec: dict) -> RoiCondition:
    pattern = str(spec.get("pattern", "")).strip()
    if not pattern:
        raise RuleError("an ROI condition needs a name pattern (e.g. TRIAL_*)")
    contours = spec.get("contours", "empty")
    if contours not in CONTOURS:
        raise RuleError(f"ROI contours must be one of {', '.join(CONTOURS)}")
    try:
        patterns.pattern_regex(pattern)
    except ValueError as exc:
        raise RuleError(str(exc)) from None
    return RoiCondition(pattern, contours)


def _attribute(spec: dict) -> AttributeCondition:
    try:
        path = AttributePath.parse(str(spec.get("path", "")))
    except ValueError as exc:
        raise RuleError(str(exc)) from None
    op = spec.get("op", "equals")
    if op not in ATTRIBUTE_OPS:
        raise RuleError(f"attribute test must be one of {', '.join(ATTRIBUTE_OPS)}")
    value = str(spec.get("value", ""))
    if op != "present" and not value:
        raise RuleError(f"'{op}' needs a value to compare {path} with")
    if op == "regex":
        if len(value) > MAX_REGEX:
            raise RuleError(f"a regular expression has at most {MAX_REGEX} characters")
        try:
            re.compile(value)
        except re.error as exc:
            raise RuleError(f"not a regular expression: {exc}") from None
    if op == "pattern" and len(value) > patterns.MAX_PATTERN:
        raise RuleError(f"a pattern has at most {patterns.MAX_PATTERN} characters")
    return AttributeCondition(path, op, value)


def _values(spec: dict, kind: str) -> list[str]:
    raw = spec.get("values")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise RuleError(f"a {kind} condition needs 'values' (a list)")
    values = [str(v).strip() for v in raw if str(v).strip()]
    if not values:
        raise RuleError(f"a {kind} condition needs at least one value")
    if len(values) > MAX_VALUES:
        raise RuleError(f"a {kind} condition has at most {MAX_VALUES} values")
    if kind == "modality":
        values = [v.upper() for v in values]
    return values


def _date(value: Any, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise RuleError(f"study date '{name}' must be YYYY-MM-DD, got {value!r}") from None


def _equal(value: str, wanted: str) -> bool:
    value, wanted = value.strip(" \x00"), wanted.strip()
    if value == wanted:
        return True
    try:  # numbers as numbers: DS "2.0" equals "2"
        return float(value) == float(wanted)
    except ValueError:
        return False


def _combine(parts: list[Q], *, and_: bool) -> Q:
    result = parts[0]
    for q in parts[1:]:
        result = (result & q) if and_ else (result | q)
    return result

"""Protocol dose constraints: their one-line text form, and grading a value (pure functions).

Text form (what the protocol page, the CSV import and the docs use)::

    SpinalCord D0.03cc < 50 Gy minor 52
    PTV_High D95% >= 95 %Rx minor 93
    Lung_Total V20Gy[%] <= 35 %
    Heart Dmean < 26 Gy

``ROI METRIC OPERATOR LIMIT UNIT [minor MINOR_LIMIT]``: the ROI is a standard name; the metric any
canonical DVH metric (:func:`rtbank.dicom.dvh.parse_metric`); the operator ``<``, ``<=``, ``>``, ``>=``
(or ``≤``, ``≥``); the unit ``Gy`` or ``%Rx`` (per cent of the plan's prescription; ``%`` means the same
for dose metrics) for D metrics, and the metric's own ``%`` or ``cc`` for V metrics.

Grading: **pass** when the value satisfies the limit; **minor** when it misses the limit but not the
minor limit (which lies beyond the limit: above it for upper limits, below it for lower ones);
**major** otherwise. Without a minor limit every miss is major.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from rtbank.dicom.dvh import parse_metric

OPERATORS = {"<": "<", "<=": "<=", "≤": "<=", "=<": "<=", ">": ">", ">=": ">=", "≥": ">=", "=>": ">="}
SYMBOL = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}
_TEXT = re.compile(
    r"^\s*(?P<roi>\S+)\s+(?P<metric>\S+)\s*(?P<op><=|>=|=<|=>|<|>|≤|≥)\s*(?P<limit>[-+]?\d+(?:\.\d*)?|\.\d+)"
    r"\s*(?P<unit>%\s*Rx|%|Gy|cc)?(?:\s*[,;]?\s*minor\s*(?P<minor>[-+]?\d+(?:\.\d*)?|\.\d+)\s*(?:%\s*Rx|%|Gy|cc)?)?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ConstraintSpec:
    standard_name: str
    metric: str
    operator: str
    limit: float
    unit: str
    minor_limit: float | None = None

    def as_fields(self) -> dict[str, Any]:
        return {
            "standard_name": self.standard_name,
            "metric": self.metric,
            "operator": self.operator,
            "limit": self.limit,
            "unit": self.unit,
            "minor_limit": self.minor_limit,
        }


def parse_constraint(text: str) -> ConstraintSpec:
    """Read the text form.

    Raises
    ------
    ValueError
        Naming what to write instead.
    """
    match = _TEXT.match(text or "")
    if not match:
        raise ValueError(
            f"cannot read constraint {text!r}: write ROI METRIC OPERATOR LIMIT UNIT [minor LIMIT], "
            "e.g. 'SpinalCord D0.03cc < 50 Gy minor 52' or 'PTV_High D95% >= 95 %Rx minor 93'"
        )
    spec = parse_metric(match["metric"])
    unit = _unit(spec.unit, (match["unit"] or "").replace(" ", ""), text)
    return check_constraint(
        ConstraintSpec(
            match["roi"],
            spec.name,
            OPERATORS[match["op"]],
            float(match["limit"]),
            unit,
            float(match["minor"]) if match["minor"] else None,
        )
    )


def _unit(metric_unit: str, written: str, text: str) -> str:
    written = written.lower()
    if metric_unit == "Gy":
        if written in {"", "gy"}:
            return "Gy"
        if written in {"%", "%rx"}:
            return "%Rx"
    elif written in {"", metric_unit}:
        return metric_unit
    raise ValueError(f"constraint {text!r}: a {metric_unit} metric cannot be limited in {written!r}")


def check_constraint(spec: ConstraintSpec) -> ConstraintSpec:
    """Refuse a minor limit on the wrong side of the limit (ValueError)."""
    if spec.operator not in SYMBOL:
        raise ValueError(f"unknown operator {spec.operator!r}; use <, <=, > or >=")
    if spec.minor_limit is not None:
        upper = spec.operator in {"<", "<="}
        if (upper and spec.minor_limit < spec.limit) or (not upper and spec.minor_limit > spec.limit):
            side = "above" if upper else "below"
            raise ValueError(f"the minor limit {spec.minor_limit:g} must lie {side} the limit {spec.limit:g}")
    return spec


def constraint_text(c: Any) -> str:
    """The text form of anything with the :class:`ConstraintSpec` fields (a model row too)."""
    unit = {"%Rx": " %Rx", "%": " %", "cc": " cc", "Gy": " Gy"}[c.unit]
    minor = f" minor {c.minor_limit:g}" if c.minor_limit is not None else ""
    return f"{c.standard_name} {c.metric} {SYMBOL[c.operator]} {c.limit:g}{unit}{minor}"


def satisfies(value: float, operator: str, limit: float) -> bool:
    return {"<": value < limit, "<=": value <= limit, ">": value > limit, ">=": value >= limit}[operator]


def grade(value: float, operator: str, limit: float, minor_limit: float | None) -> str:
    """``pass``, ``minor`` or ``major`` (see the module docstring)."""
    if math.isnan(value):
        raise ValueError("cannot grade an undefined value")
    if satisfies(value, operator, limit):
        return "pass"
    if minor_limit is None:
        return "major"
    upper = operator in {"<", "<="}
    return "minor" if (value <= minor_limit if upper else value >= minor_limit) else "major"


def constraint_value(metric_value: float, unit: str, prescription_gy: float | None) -> float | None:
    """The metric value in the constraint's unit (``%Rx`` needs the prescription; None without one)."""
    if unit == "%Rx":
        return 100.0 * metric_value / prescription_gy if prescription_gy else None
    return metric_value

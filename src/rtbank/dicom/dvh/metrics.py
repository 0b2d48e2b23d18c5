"""DVH metric names, their parser, and their evaluation (physical dose, EQD2 or BED).

Notation (exactly as it appears in CSV headers and JSON keys)
-------------------------------------------------------------
=================  ======================================================  ======
name               meaning                                                 unit
=================  ======================================================  ======
``Dmin``           lowest sampled dose                                     Gy
``Dmean``          volume-weighted mean dose                               Gy
``Dmax``           highest sampled dose                                    Gy
``D95%``           minimum dose to the hottest 95 % of the volume          Gy
``D0.03cc``        minimum dose to the hottest 0.03 cm³                    Gy
``V20Gy[%]``       share of the volume receiving at least 20 Gy            %
``V20Gy[cc]``      volume receiving at least 20 Gy                         cm³
=================  ======================================================  ======

Any of them may carry a prefix ``EQD2:`` or ``BED:`` (e.g. ``EQD2:D2%``, ``BED:V60Gy[%]``): the dose
of every sample is first converted with the linear-quadratic model, using the ROI's α/β and the
number of fractions, and the metric is computed from the converted samples. Percentages are of the
volume covered by the dose grid.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from rtbank.dicom.dvh.histogram import DoseVolumeHistogram


class Quantity(StrEnum):
    """What the dose axis of a metric means."""

    PHYSICAL = "physical"
    EQD2 = "EQD2"
    BED = "BED"


@dataclass(frozen=True)
class MetricSpec:
    """One parsed metric.

    Attributes
    ----------
    kind : str
        ``Dmin``, ``Dmean``, ``Dmax``, ``D%`` (dose at a volume share), ``Dcc`` (dose at an absolute
        volume), ``V%`` or ``Vcc`` (volume at a dose).
    value : float or None
        The x of Dx% / Dxcc (% or cm³) or of VxGy (Gy).
    quantity : Quantity
        Physical dose, EQD2 or BED.
    """

    kind: str
    value: float | None = None
    quantity: Quantity = Quantity.PHYSICAL

    @property
    def name(self) -> str:
        """Canonical name, e.g. ``D95%``, ``V20Gy[cc]``, ``EQD2:Dmean``."""
        x = _number(self.value) if self.value is not None else ""
        body = {"D%": f"D{x}%", "Dcc": f"D{x}cc", "V%": f"V{x}Gy[%]", "Vcc": f"V{x}Gy[cc]"}.get(
            self.kind, self.kind
        )
        return body if self.quantity is Quantity.PHYSICAL else f"{self.quantity.value}:{body}"

    @property
    def unit(self) -> str:
        """``Gy``, ``%`` or ``cc``."""
        return {"V%": "%", "Vcc": "cc"}.get(self.kind, "Gy")

    def __str__(self) -> str:
        return self.name


DEFAULT_METRIC_NAMES = ("Dmin", "Dmean", "Dmax", "D99%", "D95%", "D50%", "D5%", "D1%", "D0.03cc")

_NUMBER = r"\d+(?:\.\d*)?|\.\d+"
_PATTERN = re.compile(
    rf"^(?:(?P<q>EQD2|BED)\s*:\s*)?(?:D(?P<stat>min|mean|max)|D\s*(?P<dnum>{_NUMBER})\s*(?P<dunit>%|cc)"
    rf"|V\s*(?P<vnum>{_NUMBER})\s*Gy\s*\[\s*(?P<vunit>%|cc)\s*\])$",
    re.IGNORECASE,
)
_HELP = (
    "use Dmin, Dmean, Dmax, Dx% (e.g. D95%), Dxcc (e.g. D0.03cc), VxGy[%] or VxGy[cc] "
    "(e.g. V20Gy[%]), optionally prefixed EQD2: or BED:"
)


def parse_metric(text: str) -> MetricSpec:
    """Parse a metric name such as ``D95%``, ``D0.03cc``, ``V20Gy[%]`` or ``EQD2:Dmean``.

    Raises
    ------
    ValueError
        For anything else, naming the accepted forms.
    """
    match = _PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"unknown DVH metric {text!r}: {_HELP}")
    quantity = Quantity(match["q"].upper()) if match["q"] else Quantity.PHYSICAL
    if match["stat"]:
        return MetricSpec("D" + match["stat"].lower(), None, quantity)
    if match["dunit"]:
        value, kind = float(match["dnum"]), "D%" if match["dunit"].lower() == "%" else "Dcc"
        if kind == "D%" and value > 100:
            raise ValueError(f"DVH metric {text!r}: a volume share must be between 0 and 100 %")
        if kind == "Dcc" and value <= 0:
            raise ValueError(f"DVH metric {text!r}: the volume must be more than 0 cc")
        return MetricSpec(kind, value, quantity)
    return MetricSpec("V%" if match["vunit"] == "%" else "Vcc", float(match["vnum"]), quantity)


def parse_metrics(texts: str | Sequence[str]) -> list[MetricSpec]:
    """Parse a comma-separated list (or a sequence) of metric names, dropping repeats."""
    items = texts.split(",") if isinstance(texts, str) else list(texts)
    specs = [parse_metric(t) for t in items if t.strip()]
    return list({s.name: s for s in specs}.values())


DEFAULT_METRICS: tuple[MetricSpec, ...] = tuple(parse_metric(n) for n in DEFAULT_METRIC_NAMES)


def evaluate(spec: MetricSpec, hist: DoseVolumeHistogram) -> float:
    """Value of one metric on a histogram whose dose axis already is ``spec.quantity``; NaN if undefined."""
    if hist.is_empty:
        return math.nan
    if spec.kind == "Dmin":
        return hist.min_gy
    if spec.kind == "Dmean":
        return hist.mean_gy
    if spec.kind == "Dmax":
        return hist.max_gy
    assert spec.value is not None
    if spec.kind == "D%":
        return hist.dose_at_volume_pct(spec.value)
    if spec.kind == "Dcc":
        return hist.dose_at_volume_cc(spec.value)
    if spec.kind == "V%":
        return hist.volume_pct_at_dose(spec.value)
    return hist.volume_cc_at_dose(spec.value)


def bed_gy(dose_gy: np.ndarray, fractions: int, alpha_beta_gy: float) -> np.ndarray:
    """Biologically effective dose: ``D (1 + d / (α/β))`` with ``d = D / n`` (Gy)."""
    dose = np.asarray(dose_gy, dtype=float)
    return dose * (1 + dose / fractions / alpha_beta_gy)


def eqd2_gy(dose_gy: np.ndarray, fractions: int, alpha_beta_gy: float) -> np.ndarray:
    """Equivalent dose in 2 Gy fractions: ``BED / (1 + 2 / (α/β))`` (Gy)."""
    return bed_gy(dose_gy, fractions, alpha_beta_gy) / (1 + 2 / alpha_beta_gy)


def convert(
    hist: DoseVolumeHistogram, quantity: Quantity, fractions: int | None, alpha_beta_gy: float | None
) -> DoseVolumeHistogram | None:
    """The histogram on the dose axis of ``quantity``; None when fractions or α/β are missing."""
    if quantity is Quantity.PHYSICAL:
        return hist
    if not fractions or alpha_beta_gy is None or alpha_beta_gy <= 0:
        return None
    fn = bed_gy if quantity is Quantity.BED else eqd2_gy
    return hist.transformed(lambda d: fn(d, fractions, alpha_beta_gy))


def alpha_beta_for(roi_name: str, alpha_beta: Mapping[str, float]) -> float | None:
    """α/β (Gy) for a ROI from ``{pattern: value}``: exact name first (any case), then ``*``/``?`` patterns
    in the order given; ``*`` alone is a default."""
    folded = roi_name.casefold()
    for pattern, value in alpha_beta.items():
        if pattern.casefold() == folded:
            return value
    for pattern, value in alpha_beta.items():
        if roi_pattern(pattern).fullmatch(roi_name):
            return value
    return None


def roi_pattern(pattern: str) -> re.Pattern[str]:
    """A ROI name pattern with ``*`` and ``?`` wildcards, everything else literal, any case."""
    parts = [(".*" if ch == "*" else "." if ch == "?" else re.escape(ch)) for ch in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _number(value: float) -> str:
    return f"{value:.10g}"

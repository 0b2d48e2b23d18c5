"""Dose-volume histograms built from dose samples, and their compact stored form.

The histogram keeps every sample, so metrics are computed from the samples themselves, not read off a
binned curve.

The dose model
--------------
A sample stands for a small cell across which the trilinear dose varies; it is counted as a uniform
spread of doses ``dose ± spread`` (see :mod:`rtbank.dicom.dvh.sampling`), or as a single dose when the
spread is negligible. The cumulative DVH ``V(d)`` — the volume receiving at least ``d`` — is the exact
sum of those ramps and steps, piecewise linear; it is tabulated exactly at 65,537 evenly spaced doses
across the samples' range and read between them by linear interpolation (the range / 65,536 is about
1 mGy for a 70 Gy plan). ``D(v)`` is its inverse, the highest dose that at least ``v`` receives.
Dmin and Dmax are the lowest and highest dose at a sample or at a contour vertex on the faces of its
slab, and every D lies between them: D99% of a ROI with volume is never 0 Gy unless the dose there is
0 Gy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from rtbank.dicom.dvh.version import ENGINE_VERSION

CURVE_MAX_POINTS = 400
_NICE_STEPS_GY = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
_POINT_SPREAD_GY = 1e-4  # below this a sample is a single dose (keeps the ramp slopes bounded)
_LEVELS = 1 << 16  # dose levels of the cumulative table: D(v) resolves 1/65,536 of the dose range


@dataclass(frozen=True, eq=False)
class DoseVolumeHistogram:
    """The dose distribution of one ROI (covered part only).

    Attributes
    ----------
    dose_gy : numpy.ndarray
        Dose of each sample (Gy).
    volume_cc : numpy.ndarray
        Volume each sample stands for (cm³).
    spread_gy : numpy.ndarray
        Half-width of each sample's uniform dose spread (Gy).
    boundary_range_gy : tuple of float or None
        Lowest and highest dose on the ROI's boundary (contour vertices), which widen Dmin and Dmax
        beyond the samples.
    mean_dose_gy : float or None
        Mean dose when it is not the weighted mean of ``dose_gy`` (after a nonlinear dose mapping).
    """

    dose_gy: np.ndarray
    volume_cc: np.ndarray
    spread_gy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    boundary_range_gy: tuple[float, float] | None = None
    mean_dose_gy: float | None = None

    def __post_init__(self) -> None:
        if len(self.spread_gy) != len(self.dose_gy):
            object.__setattr__(self, "spread_gy", np.zeros(len(self.dose_gy)))

    @classmethod
    def from_samples(
        cls,
        dose_gy: np.ndarray,
        volume_mm3: np.ndarray,
        spread_gy: np.ndarray | None = None,
        boundary_range_gy: tuple[float, float] | None = None,
    ) -> DoseVolumeHistogram:
        """Build from sample doses (Gy), sample volumes (mm³) and dose spreads (Gy, default 0)."""
        d = np.asarray(dose_gy, dtype=float)
        w = np.asarray(volume_mm3, dtype=float) / 1000.0
        h = np.zeros(len(d)) if spread_gy is None else np.asarray(spread_gy, dtype=float)
        keep = w > 0
        return cls(d[keep], w[keep], h[keep], boundary_range_gy)

    # ---------------------------------------------------------------- summary values
    @cached_property
    def total_cc(self) -> float:
        return float(self.volume_cc.sum())

    @property
    def is_empty(self) -> bool:
        return len(self.dose_gy) == 0

    @property
    def min_gy(self) -> float:
        """Lowest dose: of the samples and the boundary vertices (Gy)."""
        if self.is_empty:
            return math.nan
        low = float(self.dose_gy.min())
        return min(low, self.boundary_range_gy[0]) if self.boundary_range_gy else low

    @property
    def max_gy(self) -> float:
        """Highest dose: of the samples and the boundary vertices (Gy)."""
        if self.is_empty:
            return math.nan
        high = float(self.dose_gy.max())
        return max(high, self.boundary_range_gy[1]) if self.boundary_range_gy else high

    @property
    def mean_gy(self) -> float:
        if self.mean_dose_gy is not None:
            return self.mean_dose_gy
        total = self.total_cc
        return float(np.dot(self.dose_gy, self.volume_cc) / total) if total > 0 else math.nan

    # ---------------------------------------------------------------- V(d) and D(v)
    @cached_property
    def _table(self) -> tuple[float, float, np.ndarray]:
        """``V(>= b)`` at ``2**16 + 1`` evenly spaced doses over the samples' range: (start, step, V).

        Exact at those doses, without sorting: each ramp is ``a [(hi − b)₊ − (lo − b)₊]`` with
        ``a = w / (hi − lo)``, and ``Σ c (t − b_k)₊`` over the samples is two weighted bincounts and a
        cumulative sum from the top; a single dose adds its volume to every ``b_k <= dose``.
        """
        spread = np.where(self.spread_gy < _POINT_SPREAD_GY, 0.0, self.spread_gy)
        low, high = self.dose_gy - spread, self.dose_gy + spread
        start, stop = float(low.min()), float(high.max())
        step = max(stop - start, 1e-9) / _LEVELS
        k = np.arange(_LEVELS + 1)
        points = spread == 0
        volume = _from_top(self._cell(self.dose_gy[points], start, step), self.volume_cc[points])
        slope = self.volume_cc[~points] / (2 * spread[~points])
        for ends, sign in ((high[~points], 1.0), (low[~points], -1.0)):
            cells = self._cell(ends, start, step)
            volume += _from_top(cells, sign * slope * (ends - start)) - k * step * _from_top(
                cells, sign * slope
            )
        volume = np.minimum.accumulate(np.clip(volume, 0.0, self.total_cc))
        return start, step, volume

    @staticmethod
    def _cell(values: np.ndarray, start: float, step: float) -> np.ndarray:
        return np.clip(np.floor((values - start) / step), 0, _LEVELS).astype(np.intp)

    def volume_cc_at_dose(self, dose_gy: float) -> float:
        """Volume receiving at least ``dose_gy`` (cm³)."""
        if self.is_empty:
            return math.nan
        if dose_gy > self.max_gy:
            return 0.0
        if dose_gy <= self.min_gy:
            return self.total_cc
        start, step, volume = self._table
        return float(np.interp(dose_gy, start + step * np.arange(len(volume)), volume))

    def volume_pct_at_dose(self, dose_gy: float) -> float:
        """Share of the volume receiving at least ``dose_gy`` (%)."""
        total = self.total_cc
        return 100 * self.volume_cc_at_dose(dose_gy) / total if total > 0 else math.nan

    def dose_at_volume_cc(self, volume_cc: float) -> float:
        """Minimum dose to the hottest ``volume_cc``: the highest d with V(>= d) >= volume (Gy).

        NaN when the ROI is smaller than ``volume_cc``.
        """
        total = self.total_cc
        if self.is_empty or volume_cc < 0 or volume_cc > total * (1 + 1e-9):
            return math.nan
        start, step, volume = self._table
        target = min(volume_cc, total) * (1 - 1e-12)
        k = int(np.searchsorted(-volume, -target, side="right")) - 1  # the last dose with V >= target
        dose = start + step * max(k, 0)
        if 0 <= k < len(volume) - 1 and volume[k] > volume[k + 1]:
            dose += step * min(max((volume[k] - target) / (volume[k] - volume[k + 1]), 0.0), 1.0)
        return float(min(max(dose, self.min_gy), self.max_gy))

    def dose_at_volume_pct(self, percent: float) -> float:
        """Minimum dose to the hottest ``percent`` % of the volume (Gy)."""
        if self.is_empty or not 0 <= percent <= 100:
            return math.nan
        return self.dose_at_volume_cc(percent / 100 * self.total_cc)

    def transformed(self, dose_map: Callable[[np.ndarray], np.ndarray]) -> DoseVolumeHistogram:
        """The same volumes with each dose mapped by an increasing function (EQD2, BED).

        Each spread is mapped by its ends; the mean uses Simpson's rule over each spread, exact for the
        quadratic linear-quadratic model.
        """
        h = self.spread_gy
        low, mid, high = (
            np.asarray(dose_map(x), dtype=float) for x in (self.dose_gy - h, self.dose_gy, self.dose_gy + h)
        )
        total = self.total_cc
        mean = float(np.dot((low + 4 * mid + high) / 6, self.volume_cc) / total) if total > 0 else None
        bounds = self.boundary_range_gy
        mapped = tuple(float(v) for v in dose_map(np.array(bounds))) if bounds else None
        return DoseVolumeHistogram(
            mid,
            self.volume_cc.copy(),
            (high - low) / 2,
            mapped,  # type: ignore[arg-type]
            mean,
        )

    # ---------------------------------------------------------------- curves
    def curve(self, max_points: int = CURVE_MAX_POINTS) -> DvhCurve:
        """The cumulative DVH on a uniform dose axis with at most ``max_points`` points."""
        top = max(self.max_gy, 0.0) if not self.is_empty else 0.0
        step = next((s for s in _NICE_STEPS_GY if top / s < max_points - 1), _NICE_STEPS_GY[-1])
        n = int(math.floor(top / step + 1e-9)) + 2 if top > 0 else 1
        doses = np.arange(n) * step
        volumes = np.array([self.volume_cc_at_dose(float(d)) for d in doses]) if not self.is_empty else [0.0]
        return DvhCurve(step, tuple(float(round(v, 6)) for v in volumes), ENGINE_VERSION)


@dataclass(frozen=True)
class DvhCurve:
    """A cumulative DVH compact enough for a database row.

    Attributes
    ----------
    dose_step_gy : float
        Dose axis spacing (Gy); point *k* is at ``k × dose_step_gy``, starting at 0 Gy.
    cumulative_cc : tuple of float
        Volume receiving at least each dose (cm³); the first value is the covered volume.
    engine_version : str
        :data:`rtbank.dicom.dvh.ENGINE_VERSION` that made it; recompute when it changes.
    """

    dose_step_gy: float
    cumulative_cc: tuple[float, ...]
    engine_version: str

    @property
    def dose_gy(self) -> np.ndarray:
        return np.arange(len(self.cumulative_cc)) * self.dose_step_gy

    def differential_cc(self) -> np.ndarray:
        """Volume per dose bin [d_k, d_k+1) (cm³)."""
        cum = np.asarray(self.cumulative_cc)
        return cum - np.concatenate([cum[1:], [0.0]])

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine_version": self.engine_version,
            "dose_step_gy": self.dose_step_gy,
            "cumulative_cc": list(self.cumulative_cc),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DvhCurve:
        return cls(
            float(data["dose_step_gy"]),
            tuple(float(v) for v in data["cumulative_cc"]),
            str(data["engine_version"]),
        )


def _from_top(cells: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """For each level k, the sum of ``weights`` whose cell is k or above."""
    totals = np.bincount(cells, weights=weights, minlength=_LEVELS + 1).astype(float)
    return np.cumsum(totals[::-1])[::-1]

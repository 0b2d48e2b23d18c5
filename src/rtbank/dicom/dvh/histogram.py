"""Dose-volume histograms built from dose samples, and their compact stored form.

The histogram keeps every distinct sampled dose with the volume that received it, so metrics are
computed from the samples themselves, not read off a binned curve.

Reading D and V
---------------
The samples, sorted from hottest to coldest, are laid end to end along the volume axis; each sample's
dose is placed at the middle of its own volume, and the curve is linear between those points (flat at
Dmax before the first midpoint and at Dmin after the last). ``D(v)`` is read from that curve and
``V(d)`` is its inverse, so Dx and Vx agree with each other and never fall outside [Dmin, Dmax]:
D99% of a ROI with volume is never 0 Gy unless the dose there is 0 Gy.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rtbank.dicom.dvh.version import ENGINE_VERSION

CURVE_MAX_POINTS = 400
_NICE_STEPS_GY = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class DoseVolumeHistogram:
    """The dose distribution of one ROI (covered part only).

    Attributes
    ----------
    dose_gy : numpy.ndarray
        Distinct sampled doses, decreasing (Gy).
    volume_cc : numpy.ndarray
        Volume that received each dose (cm³).
    boundary_range_gy : tuple of float or None
        Lowest and highest dose on the ROI's boundary (contour vertices), which widen Dmin and Dmax
        beyond the samples and anchor the curve's ends.
    """

    dose_gy: np.ndarray
    volume_cc: np.ndarray
    boundary_range_gy: tuple[float, float] | None = None

    @classmethod
    def from_samples(cls, dose_gy: np.ndarray, volume_mm3: np.ndarray,
                     boundary_range_gy: tuple[float, float] | None = None) -> DoseVolumeHistogram:
        """Build from sample doses (Gy) and sample volumes (mm³); samples of equal dose are merged."""
        order = np.argsort(-np.asarray(dose_gy, dtype=float), kind="stable")
        d = np.asarray(dose_gy, dtype=float)[order]
        w = np.asarray(volume_mm3, dtype=float)[order] / 1000.0
        keep = w > 0
        d, w = d[keep], w[keep]
        if len(d) == 0:
            return cls(np.zeros(0), np.zeros(0))
        # equal doses (to 1 µGy: arithmetic noise) are one level, so ties interpolate as one step
        key = np.round(d, 6)
        index = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        volume = np.add.reduceat(w, index)
        dose = np.add.reduceat(d * w, index) / volume
        return cls(dose, volume, boundary_range_gy)

    # ---------------------------------------------------------------- summary values
    @property
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
        low = float(self.dose_gy[-1])
        return min(low, self.boundary_range_gy[0]) if self.boundary_range_gy else low

    @property
    def max_gy(self) -> float:
        """Highest dose: of the samples and the boundary vertices (Gy)."""
        if self.is_empty:
            return math.nan
        high = float(self.dose_gy[0])
        return max(high, self.boundary_range_gy[1]) if self.boundary_range_gy else high

    @property
    def mean_gy(self) -> float:
        total = self.total_cc
        return float(np.dot(self.dose_gy, self.volume_cc) / total) if total > 0 else math.nan

    # ---------------------------------------------------------------- D and V
    def _curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The D(v) polyline: (volume from the hot end in cc, dose in Gy), v increasing, dose decreasing."""
        mid = np.cumsum(self.volume_cc) - self.volume_cc / 2
        v = np.concatenate([[0.0], mid, [self.total_cc]])
        d = np.concatenate([[self.max_gy], self.dose_gy, [self.min_gy]])
        return v, d

    def dose_at_volume_cc(self, volume_cc: float) -> float:
        """Minimum dose to the hottest ``volume_cc`` (Gy); NaN if the ROI is smaller than that."""
        if self.is_empty or volume_cc > self.total_cc * (1 + 1e-9) or volume_cc < 0:
            return math.nan
        return float(np.interp(volume_cc, *self._curve()))

    def dose_at_volume_pct(self, percent: float) -> float:
        """Minimum dose to the hottest ``percent`` % of the volume (Gy)."""
        if self.is_empty or not 0 <= percent <= 100:
            return math.nan
        return float(np.interp(percent / 100 * self.total_cc, *self._curve()))

    def volume_cc_at_dose(self, dose_gy: float) -> float:
        """Volume receiving at least ``dose_gy`` (cm³)."""
        if self.is_empty:
            return math.nan
        if dose_gy > self.max_gy:
            return 0.0
        if dose_gy <= self.min_gy:
            return self.total_cc
        v, d = self._curve()
        # d is non-increasing; interp needs increasing abscissae: read the polyline from the cold end
        return float(np.interp(dose_gy, d[::-1], v[::-1]))

    def volume_pct_at_dose(self, dose_gy: float) -> float:
        """Share of the volume receiving at least ``dose_gy`` (%)."""
        total = self.total_cc
        return 100 * self.volume_cc_at_dose(dose_gy) / total if total > 0 else math.nan

    def transformed(self, dose_map: Callable[[np.ndarray], np.ndarray]) -> DoseVolumeHistogram:
        """The same volumes with each dose mapped by an increasing function (EQD2, BED)."""
        bounds = self.boundary_range_gy
        mapped = (tuple(float(v) for v in dose_map(np.array(bounds))) if bounds else None)
        return DoseVolumeHistogram(np.asarray(dose_map(self.dose_gy), dtype=float), self.volume_cc.copy(),
                                   mapped)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- curves
    def curve(self, max_points: int = CURVE_MAX_POINTS) -> DvhCurve:
        """The cumulative DVH on a uniform dose axis with at most ``max_points`` points."""
        top = max(self.max_gy, 0.0) if not self.is_empty else 0.0
        step = next((s for s in _NICE_STEPS_GY if top / s < max_points - 1), _NICE_STEPS_GY[-1])
        n = int(math.floor(top / step + 1e-9)) + 2 if top > 0 else 1
        doses = np.arange(n) * step
        # exact step function V(>= d) of the samples, not the interpolated curve: a stored curve is data
        asc = self.dose_gy[::-1]
        below = np.concatenate([[0.0], np.cumsum(self.volume_cc[::-1])])  # volume under each level
        volumes = np.maximum(self.total_cc - below[np.searchsorted(asc, doses, side="left")], 0.0)
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

    def to_dict(self) -> dict[str, object]:
        return {"engine_version": self.engine_version, "dose_step_gy": self.dose_step_gy,
                "cumulative_cc": list(self.cumulative_cc)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> DvhCurve:
        values = data["cumulative_cc"]
        assert isinstance(values, list)
        return cls(float(data["dose_step_gy"]), tuple(float(v) for v in values),  # type: ignore[arg-type]
                   str(data["engine_version"]))

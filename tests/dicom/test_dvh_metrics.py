"""DVH metric names, the histogram's D and V, EQD2/BED and the stored curve."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rtbank.dicom.dvh import (
    DEFAULT_METRIC_NAMES,
    ENGINE_VERSION,
    DoseVolumeHistogram,
    DvhCurve,
    Quantity,
    bed_gy,
    eqd2_gy,
    parse_metric,
    parse_metrics,
)
from rtbank.dicom.dvh.metrics import alpha_beta_for, convert, evaluate


@pytest.mark.parametrize(
    ("text", "name", "kind", "value", "unit"),
    [
        ("Dmin", "Dmin", "Dmin", None, "Gy"),
        ("dmean", "Dmean", "Dmean", None, "Gy"),
        ("Dmax", "Dmax", "Dmax", None, "Gy"),
        ("D95%", "D95%", "D%", 95.0, "Gy"),
        ("D95.0%", "D95%", "D%", 95.0, "Gy"),
        ("D0.03cc", "D0.03cc", "Dcc", 0.03, "Gy"),
        ("D2 CC", "D2cc", "Dcc", 2.0, "Gy"),
        ("V20Gy[%]", "V20Gy[%]", "V%", 20.0, "%"),
        ("v20gy[cc]", "V20Gy[cc]", "Vcc", 20.0, "cc"),
        ("V 7.5 Gy [ % ]", "V7.5Gy[%]", "V%", 7.5, "%"),
        ("EQD2:D2%", "EQD2:D2%", "D%", 2.0, "Gy"),
        ("bed: V60Gy[%]", "BED:V60Gy[%]", "V%", 60.0, "%"),
    ],
)
def test_it_parses_metric_names_into_canonical_ones(
    text: str, name: str, kind: str, value: float | None, unit: str
) -> None:
    spec = parse_metric(text)
    assert (spec.name, spec.kind, spec.value, spec.unit) == (name, kind, value, unit)


@pytest.mark.parametrize(
    "text", ["D95", "V20Gy", "V20[%]", "D101%", "D0cc", "Dmedian", "EQD3:Dmean", "", "=1+1"]
)
def test_it_rejects_bad_metric_names_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"DVH metric"):
        parse_metric(text)


def test_the_default_metric_set_is_the_agreed_one() -> None:
    assert DEFAULT_METRIC_NAMES == ("Dmin", "Dmean", "Dmax", "D99%", "D95%", "D50%", "D5%", "D1%", "D0.03cc")
    assert [s.name for s in parse_metrics("D95%, d95%,V20Gy[cc]")] == ["D95%", "V20Gy[cc]"]


def uniform(low: float, high: float, volume_cc: float, n: int = 1000) -> DoseVolumeHistogram:
    """n samples evenly spread over [low, high], each standing for its own dose interval."""
    width = (high - low) / n
    doses = low + (np.arange(n) + 0.5) * width
    return DoseVolumeHistogram.from_samples(doses, np.full(n, volume_cc * 1000 / n), np.full(n, width / 2))


def test_dose_and_volume_are_exact_inverses_on_a_uniform_distribution() -> None:
    hist = uniform(10.0, 30.0, 50.0)
    assert hist.total_cc == pytest.approx(50.0)
    assert hist.mean_gy == pytest.approx(20.0)
    assert hist.dose_at_volume_pct(95) == pytest.approx(11.0, abs=1e-6)
    assert hist.dose_at_volume_pct(50) == pytest.approx(20.0, abs=1e-6)
    assert hist.dose_at_volume_cc(0.03) == pytest.approx(30 - 20 * 0.03 / 50, abs=1e-6)
    assert hist.volume_pct_at_dose(25.0) == pytest.approx(25.0, abs=1e-6)
    assert hist.volume_cc_at_dose(25.0) == pytest.approx(12.5, abs=1e-6)
    assert hist.volume_cc_at_dose(35.0) == 0.0 and hist.volume_cc_at_dose(5.0) == pytest.approx(50.0)


def test_dx_never_falls_to_zero_while_the_roi_has_volume() -> None:
    # one cold sample holding 3 % of the volume, the rest at 60 Gy: D99% is the cold dose, not 0 Gy
    # (D is read from a table of 65,537 dose levels: exact to range / 65,536 = 0.3 mGy here)
    hist = DoseVolumeHistogram.from_samples(np.array([42.0, 60.0]), np.array([30.0, 970.0]))
    assert hist.dose_at_volume_pct(99) == pytest.approx(42.0, abs=3e-4)
    assert hist.dose_at_volume_pct(95) == pytest.approx(60.0, abs=3e-4)
    assert hist.dose_at_volume_pct(100) == pytest.approx(42.0, abs=3e-4)
    assert hist.min_gy == 42.0 and hist.max_gy == 60.0


def test_dose_at_more_volume_than_the_roi_has_is_undefined() -> None:
    hist = uniform(10.0, 30.0, 0.02)
    assert math.isnan(hist.dose_at_volume_cc(0.03))
    assert math.isnan(evaluate(parse_metric("D0.03cc"), hist))
    assert not math.isnan(evaluate(parse_metric("D0.01cc"), hist))


def test_boundary_doses_widen_dmin_and_dmax() -> None:
    hist = DoseVolumeHistogram.from_samples(
        np.array([10.0, 20.0]), np.array([500.0, 500.0]), boundary_range_gy=(8.0, 21.0)
    )
    assert (hist.min_gy, hist.max_gy) == (8.0, 21.0)
    assert 10.0 <= hist.dose_at_volume_pct(99) <= 20.0


def test_an_empty_histogram_has_no_values() -> None:
    hist = DoseVolumeHistogram(np.zeros(0), np.zeros(0))
    assert math.isnan(hist.mean_gy) and math.isnan(hist.dose_at_volume_pct(50))
    assert all(math.isnan(evaluate(parse_metric(n), hist)) for n in DEFAULT_METRIC_NAMES)


def test_lq_conversions_match_hand_calculations() -> None:
    assert bed_gy(np.array([60.0]), 30, 3.0)[0] == pytest.approx(100.0)
    assert eqd2_gy(np.array([60.0]), 30, 3.0)[0] == pytest.approx(60.0)
    assert bed_gy(np.array([50.0]), 5, 10.0)[0] == pytest.approx(100.0)
    assert eqd2_gy(np.array([50.0]), 5, 10.0)[0] == pytest.approx(100 / 1.2)


def test_eqd2_metrics_are_computed_from_converted_samples() -> None:
    hist = uniform(40.0, 60.0, 10.0)
    eqd2 = convert(hist, Quantity.EQD2, 5, 3.0)
    assert eqd2 is not None
    # mean of D + D²/(n·α/β) over a uniform [40, 60] Gy, divided by 1 + 2/3
    mean_bed = 50 + (50**2 + 20**2 / 12) / 15
    assert eqd2.mean_gy == pytest.approx(mean_bed / (5 / 3), rel=1e-6)
    assert evaluate(parse_metric("EQD2:D50%"), eqd2) == pytest.approx(
        eqd2_gy(np.array([50.0]), 5, 3.0)[0], rel=1e-6
    )
    assert convert(hist, Quantity.EQD2, None, 3.0) is None
    assert convert(hist, Quantity.BED, 5, None) is None


def test_alpha_beta_is_found_by_exact_name_then_by_pattern() -> None:
    table = {"PTV*": 10.0, "rectum": 3.0, "*": 2.0}
    assert alpha_beta_for("Rectum", table) == 3.0
    assert alpha_beta_for("PTV_70", table) == 10.0
    assert alpha_beta_for("Bladder", table) == 2.0
    assert alpha_beta_for("[weird] name", {"[weird]*": 4.0}) == 4.0
    assert alpha_beta_for("Heart", {"PTV*": 10.0}) is None


def test_the_stored_curve_is_compact_versioned_and_consistent() -> None:
    hist = uniform(0.0, 70.0, 200.0, n=5000)
    curve = hist.curve()
    assert curve.engine_version == ENGINE_VERSION
    assert len(curve.cumulative_cc) <= 400
    assert curve.cumulative_cc[0] == pytest.approx(200.0)
    assert np.all(np.diff(curve.cumulative_cc) <= 1e-9)
    k = int(round(35.0 / curve.dose_step_gy))
    assert curve.cumulative_cc[k] == pytest.approx(hist.volume_cc_at_dose(35.0), abs=1e-6)
    assert curve.differential_cc().sum() == pytest.approx(200.0)
    assert DvhCurve.from_dict(curve.to_dict()) == curve

"""The DVH engine against analytic phantoms: closed-form truth, never the contours.

Solids (Nelms et al. 2015 sizes): a sphere (R 12 mm), cylinders (R 12 mm, 24 mm long) along z and along
y, cones (R 12 mm, 24 mm high) along z and along y, in linear dose gradients of 1 Gy/mm along y
(anterior-posterior) and along z (superior-inferior), 16 Gy at the centre (4–28 Gy across a solid).
Each test builds an RTSTRUCT and an RTDOSE dataset with pydicom (the dose written to bytes and read back)
and runs the engine on them.

**Clinical metrics** (the ones the accuracy targets count): Dmean, D99%, D95%, D50%, D5%, D1%, D0.03cc.
Dmin and Dmax are single boundary points that depend on where contour planes fall (a stack of slabs
cannot reach a cone's rim between two planes); they are checked separately, more loosely.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache

import numpy as np
import pydicom
import pytest

from rtbank.dicom.contours import StructureSet
from rtbank.dicom.dosegrid import DoseGrid
from rtbank.dicom.dvh import dvh_for_roi, parse_metrics
from rtbank.dicom.dvh.phantoms import LinearDose, Solid, linear_dose_dataset, structure_set_dataset

FOR_UID = "1.2.826.0.1.3680043.8.498.1"
CENTRE = (4.0, -6.0, 6.0)
SOLIDS = (
    Solid("sphere", 12, centre_mm=CENTRE, name="Sphere"),
    Solid("cylinder", 12, 24, "z", CENTRE, name="Cylinder_z"),
    Solid("cylinder", 12, 24, "y", CENTRE, name="Cylinder_y"),
    Solid("cone", 12, 24, "z", CENTRE, name="Cone_z"),
    Solid("cone", 12, 24, "y", CENTRE, name="Cone_y"),
)
GRADIENTS = {"AP": LinearDose("y", -1.0, 16.0, CENTRE), "SI": LinearDose("z", 1.0, 16.0, CENTRE)}
CLINICAL = ("Dmean", "D99%", "D95%", "D50%", "D5%", "D1%", "D0.03cc")
SPECS = parse_metrics(("Dmin", "Dmax", *CLINICAL))


@dataclass(frozen=True)
class Row:
    solid: str
    gradient: str
    contour_mm: float
    dose_mm: float
    volume_error_pct: float
    errors_pct: dict[str, float]

    def describe(self, name: str) -> str:
        return (
            f"{self.solid} {self.gradient} contours {self.contour_mm} mm dose {self.dose_mm} mm: "
            f"{name} {self.errors_pct[name]:+.2f} %"
        )


def _roundtrip(ds: pydicom.Dataset) -> pydicom.Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


@cache
def _structure_set(contour_mm: float) -> StructureSet:
    # not round-tripped through a file: pydicom's writer would turn 250,000 contour numbers into DS objects
    return StructureSet.from_dataset(structure_set_dataset(list(SOLIDS), contour_mm, FOR_UID))


@cache
def _truth(solid: Solid, gradient: str) -> tuple[float, dict[str, float]]:
    reference = solid.reference(GRADIENTS[gradient])
    return reference.volume_cc, {spec.name: reference.metric(spec.name) for spec in SPECS}


def _run(contour_mm: float, dose_mm: float, shift: float) -> list[Row]:
    """All solids and gradients at one resolution; ``shift`` moves the dose grid by that share of a voxel."""
    structure_set = _structure_set(contour_mm)
    rows = []
    n = int(round(84 / dose_mm)) + 1
    lower = tuple(c - 42 + shift * dose_mm for c in CENTRE)
    for gradient, dose in GRADIENTS.items():
        grid = DoseGrid.from_dataset(
            _roundtrip(linear_dose_dataset(dose, lower, (n, n, n), dose_mm, FOR_UID))
        )
        for solid, roi in zip(SOLIDS, structure_set.rois, strict=True):
            result = dvh_for_roi(structure_set, roi, grid)
            values, _ = result.metrics(SPECS)
            true_volume, truth = _truth(solid, gradient)
            errors = {name: 100 * (values[name] - truth[name]) / truth[name] for name in values}
            volume_error = 100 * (result.volume_cc - true_volume) / true_volume
            rows.append(Row(solid.label, gradient, contour_mm, dose_mm, volume_error, errors))
    return rows


@pytest.fixture(scope="module")
def fine_rows() -> list[Row]:
    """Contours every 0.5 mm, dose grids of 1, 2 and 3 mm."""
    return [row for dose_mm in (1.0, 2.0, 3.0) for row in _run(0.5, dose_mm, shift=0.0)]


@pytest.fixture(scope="module")
def coarse_rows() -> list[Row]:
    """Contours and dose grid both 1, 2 or 3 mm; dose grid aligned with the solids and shifted off them."""
    return [row for mm in (1.0, 2.0, 3.0) for shift in (0.0, 0.37) for row in _run(mm, mm, shift)]


def test_it_meets_every_clinical_metric_within_3_percent_on_fine_contours(fine_rows: list[Row]) -> None:
    misses = [row.describe(n) for row in fine_rows for n in CLINICAL if abs(row.errors_pct[n]) > 3.0]
    assert len(fine_rows) == 30
    assert not misses, misses


def test_it_gets_the_volume_within_1_percent_on_fine_contours(fine_rows: list[Row]) -> None:
    misses = [
        f"{r.solid} {r.gradient} {r.dose_mm} mm: {r.volume_error_pct:+.2f} %"
        for r in fine_rows
        if abs(r.volume_error_pct) > 1.0
    ]
    assert not misses, misses


def test_it_keeps_95_percent_of_clinical_metrics_within_3_percent_on_1_to_3_mm_contours(
    coarse_rows: list[Row],
) -> None:
    values = [(row, n) for row in coarse_rows for n in CLINICAL]
    misses = [row.describe(n) for row, n in values if abs(row.errors_pct[n]) > 3.0]
    assert len(values) == 420
    assert len(misses) <= 0.05 * len(values), misses


def test_its_mean_dose_is_within_1_percent_everywhere(fine_rows: list[Row], coarse_rows: list[Row]) -> None:
    misses = [row.describe("Dmean") for row in fine_rows + coarse_rows if abs(row.errors_pct["Dmean"]) > 1.0]
    assert not misses, misses


def test_its_min_and_max_stay_within_one_contour_spacing_of_the_truth(
    fine_rows: list[Row], coarse_rows: list[Row]
) -> None:
    # 1 Gy/mm: a boundary point the slab stack misses by up to one spacing shifts Dmin/Dmax by as many Gy
    misses = []
    for row in fine_rows + coarse_rows:
        for name, truth in (("Dmin", 4.0), ("Dmax", 28.0)):
            if abs(row.errors_pct[name] / 100 * truth) > row.contour_mm + 1e-6:
                misses.append(row.describe(name))
    assert not misses, misses


@pytest.mark.parametrize("solid", SOLIDS, ids=lambda s: s.label)
@pytest.mark.parametrize("gradient", sorted(GRADIENTS))
def test_its_reference_values_agree_with_monte_carlo(solid: Solid, gradient: str) -> None:
    """The closed forms themselves, checked against random points inside the exact solid."""
    rng = np.random.default_rng(20260501)
    dose = GRADIENTS[gradient]
    points = rng.uniform(-12.5, 12.5, size=(600_000, 3)) + np.array(CENTRE)
    inside = solid.contains(points)
    doses = np.sort(dose.dose_at(points[inside]))[::-1]
    reference = solid.reference(dose)
    assert inside.mean() * 25**3 / 1000 == pytest.approx(reference.volume_cc, rel=0.01)
    assert doses.mean() == pytest.approx(reference.dmean, rel=0.005)
    for percent in (95, 50, 5):
        empirical = doses[int(percent / 100 * len(doses))]
        assert empirical == pytest.approx(reference.dose_at_volume_pct(percent), rel=0.01), percent

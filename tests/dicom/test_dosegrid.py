"""Dose grids: orientation, frame positions, interpolation, coverage, summation and fraction scaling."""

from __future__ import annotations

import glob
import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from scipy.interpolate import RegularGridInterpolator

from rtbank.dicom.dosegrid import DoseGrid, combine_plan_doses, planned_fractions, sum_doses, to_total_dose
from rtbank.dicom.dvh.phantoms import dose_dataset

DATA = Path(__file__).resolve().parents[1] / "data"
FOR_UID = "1.2.826.0.1.3680043.8.498.2"
X = -30.0 + 2.5 * np.arange(21)
Y = -20.0 + 2.5 * np.arange(15)
Z = 12.5 + 3.0 * np.arange(9)  # never 0: an absolute offset vector must not start with 0


def _field() -> np.ndarray:
    """A smooth, nowhere symmetric dose (Gy) on Z × Y × X."""
    zz, yy, xx = np.meshgrid(Z, Y, X, indexing="ij")
    return 30 + 0.4 * xx - 0.25 * yy + 0.15 * zz + 2 * np.sin(xx / 7) * np.cos(yy / 9) + 0.01 * xx * zz


def _grid(position: str = "HFS", absolute: bool = False, **kwargs: object) -> DoseGrid:
    ds = dose_dataset(_field(), X, Y, Z, FOR_UID, position=position, absolute_offsets=absolute, **kwargs)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return DoseGrid.from_dataset(pydicom.dcmread(io.BytesIO(buffer.getvalue())))


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    rng = np.random.default_rng(11)
    return rng.uniform([X[0], Y[0], Z[0]], [X[-1], Y[-1], Z[-1]], size=(2000, 3))


def test_it_interpolates_trilinearly_in_patient_coordinates(points: np.ndarray) -> None:
    expected = RegularGridInterpolator((Z, Y, X), _field())(points[:, ::-1])
    assert np.allclose(_grid().dose_at(points), expected, atol=1e-4)


@pytest.mark.parametrize("position", ["HFP", "FFS", "FFP", "HFDL", "HFDR"])
def test_it_gives_the_same_dose_at_the_same_point_in_every_patient_position(
    position: str, points: np.ndarray
) -> None:
    reference = _grid("HFS")
    grid = _grid(position)
    assert np.allclose(grid.x_mm, X) and np.allclose(grid.y_mm, Y) and np.allclose(grid.z_mm, Z)
    assert np.allclose(grid.dose_at(points), reference.dose_at(points), atol=1e-5)


def test_the_positions_really_store_the_pixels_differently() -> None:
    """Guard for the test above: the files differ, only the dose in the patient does not."""
    hfs = dose_dataset(_field(), X, Y, Z, FOR_UID, position="HFS")
    ffp = dose_dataset(_field(), X, Y, Z, FOR_UID, position="FFP")
    assert hfs.PixelData != ffp.PixelData
    assert list(hfs.ImageOrientationPatient) != list(ffp.ImageOrientationPatient)


@pytest.mark.parametrize("position", ["HFS", "FFS"])
def test_relative_and_absolute_frame_offsets_give_the_same_dose(position: str, points: np.ndarray) -> None:
    relative, absolute = _grid(position, absolute=False), _grid(position, absolute=True)
    assert np.allclose(relative.z_mm, absolute.z_mm)
    assert np.allclose(relative.dose_at(points), absolute.dose_at(points))


def test_it_reads_negative_relative_offsets_as_frames_towards_the_feet() -> None:
    """GammaPlan writes '-0', '-1', … with a head-first orientation."""
    grid = DoseGrid.from_dataset(pydicom.dcmread(DATA / "pyplanscoring/gammaplan_srs/RTDOSE0000000000.dcm"))
    assert grid.z_mm[0] == pytest.approx(1.8 - 11) and grid.z_mm[-1] == pytest.approx(1.8)
    assert np.all(np.diff(grid.z_mm) > 0)


@pytest.mark.parametrize(
    "orientation", [[0.985, 0.174, 0, -0.174, 0.985, 0], [1, 0, 0, 0, 0, -1], [0, 1, 0, 0, 0, -1]]
)
def test_it_rejects_a_grid_that_is_not_axial(orientation: list[float]) -> None:
    ds = dose_dataset(_field(), X, Y, Z, FOR_UID)
    ds.ImageOrientationPatient = orientation
    with pytest.raises(ValueError, match="not axial"):
        DoseGrid.from_dataset(ds)


def test_it_rejects_an_offset_vector_that_is_neither_relative_nor_absolute() -> None:
    ds = dose_dataset(_field(), X, Y, Z, FOR_UID)
    ds.GridFrameOffsetVector = [v + 5 for v in Z]
    with pytest.raises(ValueError, match="Grid Frame Offset Vector starts at"):
        DoseGrid.from_dataset(ds)


def test_it_rejects_relative_dose_units_unless_asked_for_display() -> None:
    ds = dose_dataset(_field(), X, Y, Z, FOR_UID)
    ds.DoseUnits = "RELATIVE"
    with pytest.raises(ValueError, match="only GY doses"):
        DoseGrid.from_dataset(ds)
    assert DoseGrid.from_dataset(ds, allow_relative=True).units == "RELATIVE"
    assert _grid().units == "GY" and _grid().summation_type == "PLAN"


def test_it_defines_the_dose_to_the_outer_half_voxel_and_nowhere_beyond() -> None:
    grid = _grid()
    edge = grid.dose_at(np.array([X[0], Y[3], Z[4]]))[0]
    rim = grid.dose_at(np.array([X[0] - 1.2, Y[3], Z[4]]))[0]
    assert rim == pytest.approx(edge)
    outside = grid.dose_at(np.array([[X[0] - 1.3, Y[3], Z[4]], [X[3], Y[3], Z[-1] + 1.6]]))
    assert np.isnan(outside).all()
    assert list(grid.covers(np.array([[X[0] - 1.2, 0, 20], [X[0] - 1.3, 0, 20]]))) == [True, False]


def test_it_sums_beam_doses_into_the_plan_dose_of_a_raystation_export() -> None:
    folder = DATA / "aptg-dcpt-let/plan03_ramp_full"
    grids = [DoseGrid.from_dataset(pydicom.dcmread(p)) for p in sorted(glob.glob(str(folder / "RD*.dcm")))]
    plan = next(g for g in grids if g.summation_type == "PLAN")
    beams = [g for g in grids if g.summation_type == "BEAM"]
    total = sum_doses(beams)
    assert total.summation_type == "PLAN" and total.referenced_beam_numbers == (1, 2)
    assert "summed 2 BEAM doses (beams 1, 2)" in total.history[-1]
    # the TPS rounds each file to 16 bits: the sum agrees with the plan dose to a few 1e-4 of its maximum
    assert np.abs(total.dose_gy - plan.dose_gy).max() < 2e-3 * plan.max_gy


def test_it_resamples_a_dose_on_other_nodes_before_summing() -> None:
    a = _grid()
    shifted = dose_dataset(_field(), X + 1.0, Y, Z, FOR_UID)
    b = DoseGrid.from_dataset(shifted)
    total = sum_doses([a, b])
    inner = np.array([[0.3, 1.1, 20.0], [-10.0, 5.0, 30.0]])
    assert np.allclose(total.dose_at(inner), a.dose_at(inner) + b.dose_at(inner), atol=1e-4)
    assert any("resampled" in step for step in total.history)


def test_it_refuses_to_sum_doses_from_different_frames_of_reference() -> None:
    other = DoseGrid.from_dataset(dose_dataset(_field(), X, Y, Z, "1.2.3.4"))
    with pytest.raises(ValueError, match="frame of reference"):
        sum_doses([_grid(), other])


def test_it_scales_a_fraction_dose_by_the_planned_fractions_and_says_so() -> None:
    fraction = _grid(summation_type="FRACTION")
    total = to_total_dose(fraction, 25)
    assert total.summation_type == "PLAN"
    assert np.allclose(total.dose_gy, 25 * fraction.dose_gy, rtol=1e-6)
    assert total.history[-1] == "scaled × 25: FRACTION dose × 25 planned fractions"
    assert to_total_dose(fraction, None) is fraction


def test_a_plan_dose_is_never_scaled_by_fractions() -> None:
    plan = _grid()
    assert to_total_dose(plan, 30) is plan


def test_it_prefers_the_plan_dose_over_beam_doses_and_records_it() -> None:
    plan, beam = _grid(), _grid(summation_type="BEAM")
    combined = combine_plan_doses([beam, plan])
    assert combined.sop_instance_uid == plan.sop_instance_uid
    assert "left out" in combined.history[-1]


def test_it_reads_the_planned_fractions_of_the_referenced_fraction_group() -> None:
    plan = pydicom.dcmread(next((DATA / "pyplanscoring/pinnacle_dicom_plan1").glob("RTPLAN*.dcm")))
    assert planned_fractions(plan) == 10
    assert planned_fractions(plan, fraction_group=1) == 10

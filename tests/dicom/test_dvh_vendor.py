"""The engine on real vendor exports: it runs without errors and its values are plausible.

None of these RTDOSE files carries a DVH Sequence and no RTSTRUCT states ROI volumes, so the checks are
internal consistency (unions against their parts, a plan dose against its beam doses, targets against
their margins) and known geometry, not a vendor's numbers.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from rtbank.dicom.contours import StructureSet
from rtbank.dicom.dosegrid import (
    DoseGrid,
    combine_plan_doses,
    fraction_dose_looks_total,
    planned_fractions,
    sum_doses,
)
from rtbank.dicom.dvh import DEFAULT_METRICS, RoiDvh, dvh_for_roi, dvhs_for_structure_set

DATA = Path(__file__).resolve().parents[1] / "data"
RAYSTATION = DATA / "pyplanscoring/raystation_brain_srs_imrt"
PROTON = DATA / "aptg-dcpt-let/plan03_ramp_full"


def _one(folder: Path, pattern: str) -> Path:
    return next(folder.glob(pattern))


def _by_name(results: list[RoiDvh]) -> dict[str, dict[str, float | None]]:
    return {r.roi.name: r.metrics(DEFAULT_METRICS)[0] | {"volume": r.volume_cc} for r in results}


@pytest.fixture(scope="module")
def raystation() -> dict[str, dict[str, float | None]]:
    structure_set = StructureSet.from_dataset(pydicom.dcmread(_one(RAYSTATION, "RS*.dcm")))
    grid = DoseGrid.from_dataset(pydicom.dcmread(_one(RAYSTATION, "RD*.dcm")))
    results = dvhs_for_structure_set(structure_set, grid)
    assert len(results) == 24  # every ROI with contours; the 4 isocentre POINTs have none
    assert all(not r.flags for r in results), [(r.roi.name, r.flags) for r in results if r.flags]
    return _by_name(results)


def test_raystation_unions_have_the_volume_of_their_parts(raystation: dict) -> None:
    ptvs = sum(raystation[f"PTV_{k}"]["volume"] for k in range(1, 6))
    gtvs = sum(raystation[f"GTV_{k}"]["volume"] for k in range(1, 6))
    assert raystation["PTV_ALL"]["volume"] == pytest.approx(ptvs, rel=0.005)
    assert raystation["GTV_ALL"]["volume"] == pytest.approx(gtvs, rel=0.005)


def test_raystation_targets_get_more_dose_than_their_margins(raystation: dict) -> None:
    for k in range(1, 6):
        gtv, ptv = raystation[f"GTV_{k}"], raystation[f"PTV_{k}"]
        assert gtv["Dmean"] >= ptv["D95%"], k
        assert ptv["Dmean"] > raystation[f"PTV{k}_WALL"]["D50%"], k  # the ring 'wall' around it


def test_raystation_metrics_are_ordered(raystation: dict) -> None:
    body_max = raystation["BODY"]["Dmax"]
    for name, m in raystation.items():
        assert m["Dmin"] <= m["D99%"] <= m["D95%"] <= m["D50%"] <= m["D5%"] <= m["D1%"] <= m["Dmax"], name
        assert m["Dmin"] <= m["Dmean"] <= m["Dmax"], name
        if m["D0.03cc"] is not None:
            assert m["D0.03cc"] <= m["Dmax"], name
        assert m["Dmax"] <= body_max + 0.5, name


def test_a_proton_plan_dose_and_the_sum_of_its_beam_doses_give_the_same_dvh() -> None:
    structure_set = StructureSet.from_dataset(pydicom.dcmread(_one(PROTON, "RS*.dcm")))
    grids = [DoseGrid.from_dataset(pydicom.dcmread(p)) for p in sorted(PROTON.glob("RD*.dcm"))]
    plan = next(g for g in grids if g.summation_type == "PLAN")
    beams = sum_doses([g for g in grids if g.summation_type == "BEAM"])
    rois = [r for r in structure_set.rois if r.name != "External"]  # 8.6 litres: slow, adds nothing here
    from_plan = _by_name(dvhs_for_structure_set(structure_set, plan, [r for r in rois if r.planes]))
    from_beams = _by_name(dvhs_for_structure_set(structure_set, beams, [r for r in rois if r.planes]))
    for name, m in from_plan.items():
        for metric, value in m.items():
            assert from_beams[name][metric] == pytest.approx(value, abs=0.005), (name, metric)
    cube = from_plan["Cube101010"]
    # 10 × 10 cm drawn on 21 planes 5 mm apart: 10 cm plus two 2.5 mm end caps
    assert cube["volume"] == pytest.approx(10 * 10 * 10.5)
    assert cube["D50%"] == pytest.approx(2.05, abs=0.05) and plan.dose_type == "EFFECTIVE"


def test_a_gammaplan_dose_reads_with_its_negative_offsets_and_covers_part_of_the_skull() -> None:
    folder = DATA / "pyplanscoring/gammaplan_srs"
    structure_set = StructureSet.from_dataset(pydicom.dcmread(folder / "RTSS.dcm"))
    grid = DoseGrid.from_dataset(pydicom.dcmread(folder / "RTDOSE0000000000.dcm"))
    (skull,) = dvhs_for_structure_set(structure_set, grid)
    assert "partially_in_dose_grid" in skull.flags
    box_cc = 14 * 14 * 13 / 1000  # 13 × 13 × 12 nodes 1 mm apart, each a 1 mm voxel
    assert 0 < skull.covered_volume_cc <= box_cc < skull.volume_cc
    values, _ = skull.metrics(DEFAULT_METRICS)
    assert 0 < values["Dmin"] < values["Dmean"] < values["Dmax"] <= grid.max_gy + 1e-6


def test_a_gammaplan_dose_on_the_raystation_structures_of_the_same_patient() -> None:
    structure_set = StructureSet.from_dataset(pydicom.dcmread(_one(RAYSTATION, "RS*.dcm")))
    grid = DoseGrid.from_dataset(pydicom.dcmread(DATA / "pyplanscoring/gammaplan_srs/RTDOSE0000000000.dcm"))
    results = {name: dvh_for_roi(structure_set, name, grid) for name in ("PTV_1", "PTV_3", "GTV_ALL")}
    assert "not_in_dose_grid" in results["PTV_1"].flags
    assert "partially_in_dose_grid" in results["GTV_ALL"].flags
    assert not results["PTV_3"].flags  # the GammaPlan target lies inside its small grid
    assert results["PTV_3"].metrics(DEFAULT_METRICS)[0]["D95%"] > 1.0


def test_a_pinnacle_fraction_dose_on_the_tomotherapy_structures_of_the_same_patient() -> None:
    """Same Frame of Reference. The Pinnacle dose is labelled FRACTION, but holds up to 61 Gy while the
    plan's 10 fractions deliver 1.1 Gy per fraction at the beams' dose points: suspect."""
    structure_set = StructureSet.from_dataset(
        pydicom.dcmread(_one(DATA / "pyplanscoring/tomotherapy_plan", "RS*"))
    )
    folder = DATA / "pyplanscoring/pinnacle_dicom_plan1"
    dose = DoseGrid.from_dataset(pydicom.dcmread(_one(folder, "RTDOSE*")))
    plan = pydicom.dcmread(_one(folder, "RTPLAN*"))
    assert dose.summation_type == "FRACTION" and fraction_dose_looks_total(dose, plan)
    total = combine_plan_doses([dose], planned_fractions(plan))
    assert total.max_gy == pytest.approx(10 * dose.max_gy, rel=1e-6)
    results = {r.roi.name: r for r in dvhs_for_structure_set(structure_set, dose)}
    assert len(results) == 15
    assert all("per_fraction_dose" in r.flags for r in results.values())
    assert "partially_in_dose_grid" in results["SPINAL CORD2"].flags
    ptv = results["PTV_TOTAL"].metrics(DEFAULT_METRICS)[0]
    assert ptv["D95%"] < ptv["D50%"] < ptv["D0.03cc"] <= ptv["Dmax"]


def test_the_raystation_plan_states_its_fractions() -> None:
    assert planned_fractions(pydicom.dcmread(_one(RAYSTATION, "RP*.dcm"))) == 5

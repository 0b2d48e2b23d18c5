"""DVH metrics of anonymised structure sets and doses equal the originals' (rtbank.dicom.dvh engine)."""

from __future__ import annotations

import pydicom

from rtbank.dicom.contours import StructureSet
from rtbank.dicom.dosegrid import DoseGrid
from rtbank.dicom.dvh import dvhs_for_structure_set, report
from tests.dicom.test_anonymize_support import DATA, anonymised, outputs_by_source

NELMS = DATA / "nelms-dvh-benchmark"
COMPARED = (
    "number",
    "type",
    "volume_cc",
    "covered_volume_cc",
    "metrics",
    "flags",
    "dose_summation",
    "dose_type",
)


def _metrics(structures_path, dose_path) -> list[dict[str, object]]:
    grid = DoseGrid.from_dataset(pydicom.dcmread(dose_path, force=True))
    structure_set = StructureSet.from_dataset(pydicom.dcmread(structures_path, force=True))
    results = [report(r, grid) for r in dvhs_for_structure_set(structure_set, grid)]
    return [{key: result[key] for key in COMPARED} for result in results]


def test_dvh_metrics_of_an_anonymised_copy_equal_the_originals():
    run = anonymised("FULL", ("1", "2"))
    dose = NELMS / "DOSE_GRIDS/Linear_AntPost_3mm_Aligned.dcm"
    for copy_id in ("1", "2"):
        outputs = outputs_by_source(run, copy_id)
        for structures in sorted((NELMS / "STRUCTURES").glob("*.dcm")):
            original = _metrics(structures, dose)
            assert original and all(m["metrics"]["Dmean"] for m in original)
            assert _metrics(outputs[structures], outputs[dose]) == original, structures.name

"""Dose-volume histograms from RT Structure Sets and RT Doses, validated against analytic phantoms.

One geometric model serves volume and dose: planar contours with holes (even-odd), slabs with
half-slice end caps, exact row coverage on a lattice aligned with the dose grid, trilinear dose at
the sample points. Metrics come from the samples. See ``docs/dvh.md`` for the conventions and the
measured accuracy.

Typical use::

    ss = StructureSet.from_dataset(pydicom.dcmread(rs_path))
    grid = DoseGrid.from_dataset(pydicom.dcmread(rd_path))
    for result in dvhs_for_structure_set(ss, grid):
        values, flags = result.metrics(parse_metrics("D95%,V20Gy[%],D0.03cc"))
"""

from rtbank.dicom.dvh.calculate import (
    RoiDvh,
    check_frame_of_reference,
    dvh_for_roi,
    dvhs_for_structure_set,
    report,
)
from rtbank.dicom.dvh.histogram import DoseVolumeHistogram, DvhCurve
from rtbank.dicom.dvh.metrics import (
    DEFAULT_METRIC_NAMES,
    DEFAULT_METRICS,
    MetricSpec,
    Quantity,
    bed_gy,
    eqd2_gy,
    parse_metric,
    parse_metrics,
)
from rtbank.dicom.dvh.sampling import DoseSamples, Resolution, choose_resolution, sample_slabs
from rtbank.dicom.dvh.version import ENGINE_VERSION

__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_METRIC_NAMES",
    "ENGINE_VERSION",
    "DoseSamples",
    "DoseVolumeHistogram",
    "DvhCurve",
    "MetricSpec",
    "Quantity",
    "Resolution",
    "RoiDvh",
    "bed_gy",
    "check_frame_of_reference",
    "choose_resolution",
    "dvh_for_roi",
    "dvhs_for_structure_set",
    "eqd2_gy",
    "parse_metric",
    "parse_metrics",
    "report",
    "sample_slabs",
]

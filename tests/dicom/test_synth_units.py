"""The generator's building blocks on their own: institutions, shapes, the dose model, number formatting."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rtbank.dicom.synth import CATALOGUE, institutions
from rtbank.dicom.synth.common import ds_text, item, put
from rtbank.dicom.synth.doses import DoseGrid, plan_dose_gy
from rtbank.dicom.synth.naming import roi_name, safe_path_part, standard_roi_name
from rtbank.dicom.synth.scenario import QUIRKS, forced_quirks
from rtbank.dicom.synth.shapes import Ellipsoid, Tube


def test_institutions_beyond_the_catalogue_are_numbered_copies_with_their_own_codes() -> None:
    clinics = institutions(len(CATALOGUE) + 2)
    codes = [c.code for c in clinics]
    assert codes[:3] == ["AAR", "ODE", "RH"] and codes[-2:] == ["S07", "S08"]
    assert len(set(codes)) == len(codes)
    assert clinics[-1].patient_id(12, 2019) == "S08-000012"
    with pytest.raises(ValueError, match="between 1 and 99"):
        institutions(0)


def test_patient_id_formats_differ_per_institution() -> None:
    ids = {c.code: c.patient_id(42, 2021) for c in institutions(3)}
    assert ids == {"AAR": "AAR0000042", "ODE": "ODE-21-00042", "RH": "RH21000042"}


def test_roi_names_carry_dose_and_fractions_in_the_house_style() -> None:
    always_house = random.Random(0)
    always_house.random = lambda: 0.0  # type: ignore[method-assign]
    assert roi_name("danish", "CTV", always_house, gy=66, fx=33) == "CTV 66/33"
    assert roi_name("free_text", "CTV", always_house, gy=68, fx=34) == "CTV-T (68Gy)"
    assert roi_name("tg263", "PTV", always_house, gy=70, fx=35) == "PTV_70"
    assert roi_name("danish", "SpinalCord", always_house) == "Medulla"
    assert roi_name("free_text", "Parotid_L", always_house) == "L Parotid"
    assert standard_roi_name("PTV", 70) == "PTV_7000" and standard_roi_name("SpinalCord") == "SpinalCord"


def test_path_parts_are_sanitised() -> None:
    assert safe_path_part("../../etc/passwd") == "etc_passwd"
    assert safe_path_part("ODE-21-00042") == "ODE-21-00042"
    assert safe_path_part("..") == "_"


def test_the_first_three_patients_share_every_quirk_and_a_lone_patient_has_them_all() -> None:
    assert forced_quirks(0, 1) == frozenset(QUIRKS)
    shared = forced_quirks(0, 20) | forced_quirks(1, 20) | forced_quirks(2, 20)
    assert shared == frozenset(QUIRKS)
    assert not forced_quirks(0, 20) & forced_quirks(1, 20)
    assert forced_quirks(3, 20) == frozenset()


def test_sections_of_an_ellipsoid_agree_with_its_membership() -> None:
    shape = Ellipsoid(10, -5, 100, 30, 20, 15)
    section = shape.section(110)
    assert section is not None
    edge = section.polygon(16)
    inside = edge * 0.98 + np.array([section.cx, section.cy]) * 0.02
    outside = edge * 1.02 - np.array([section.cx, section.cy]) * 0.02
    z = np.full(16, 110.0)
    assert shape.contains(inside[:, 0], inside[:, 1], z).all()
    assert not shape.contains(outside[:, 0], outside[:, 1], z).any()
    assert shape.section(116) is None


def test_a_clipped_tube_keeps_its_shape_between_the_cuts() -> None:
    tube = Tube((-100.0, 0.0, 100.0), (0.0, 10.0, 0.0), (0.0, 0.0, 0.0), (5.0, 10.0, 5.0), (5.0, 10.0, 5.0))
    part = tube.clipped(-50, 20)
    assert part.z_range == (-50, 20)
    for z in (-50, -10, 0, 20):
        assert part.section(z) == pytest.approx(tube.section(z))
    assert part.section(30) is None


def test_the_dose_model_covers_the_ptv_and_falls_off_outside_it() -> None:
    ptv = Ellipsoid(0, 0, 0, 20, 20, 20)
    body = Tube((-100.0, 100.0), (0.0, 0.0), (0.0, 0.0), (80.0, 80.0), (80.0, 80.0))
    grid = DoseGrid.covering((-100, 100), (-100, 100), (-40, 40), 2.0)
    dose = plan_dose_gy([(ptv, 60.0)], body, grid)

    def at(x: float, y: float, z: float) -> float:
        k, j, i = (int(np.argmin(abs(axis - v))) for axis, v in ((grid.zs, z), (grid.ys, y), (grid.xs, x)))
        return float(dose[k, j, i])

    assert at(0, 0, 0) == pytest.approx(61.2, rel=0.01)  # 102 % in the middle
    assert 0.95 * 60 <= at(20, 0, 0) <= 0.99 * 60  # at least 95 % on the surface
    assert at(50, 0, 0) < 0.25 * 60  # 3 cm out
    assert at(90, 90, 0) == 0.0  # outside the body


def test_decimal_strings_fit_ds_and_drop_trailing_zeros() -> None:
    assert ds_text(2.50) == "2.5" and ds_text(-0.001) == "0" and ds_text(100.0) == "100"
    assert ds_text(-1234.56789, 4) == "-1234.5679"
    assert all(len(ds_text(v, 6)) <= 16 for v in (-99999.123456, 0.000001, 123456789.5))


def test_put_stores_text_encoded_and_reads_back_as_pydicom_values() -> None:
    ds = put(item(), PatientName="SYNTH-JENSEN^MARIE", InstanceNumber=7, PixelSpacing=["0.5", "0.5"],
             ROIName="Sædblærer", Rows=128, SOPInstanceUID="2.25.1")  # fmt: skip
    assert str(ds.PatientName) == "SYNTH-JENSEN^MARIE" and ds.InstanceNumber == 7
    assert [float(v) for v in ds.PixelSpacing] == [0.5, 0.5] and ds.Rows == 128
    assert ds.ROIName == "Sædblærer" and ds.SOPInstanceUID == "2.25.1"

"""Pixel data reach the viewer whatever the transfer syntax, and travel to the browser without loss."""

from __future__ import annotations

import copy

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import JPEG2000Lossless, RLELossless

from rtbank.dicom.imaging import ImageVolume, decode_plane, encode_plane, modality_pixels
from tests.viewer.phantoms import ct_series


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_a_compressed_series_gives_the_same_volume(syntax: str) -> None:
    plain = ct_series("HFS", size=32)
    compressed = [copy.deepcopy(ds) for ds in plain]
    for ds in compressed:
        ds.compress(syntax)
        assert ds.file_meta.TransferSyntaxUID == syntax
    assert np.array_equal(
        ImageVolume.from_datasets(compressed).voxels, ImageVolume.from_datasets(plain).voxels
    )


@pytest.mark.parametrize(
    "name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"]
)
def test_compressed_files_from_other_writers_decode(name: str) -> None:
    reference = modality_pixels(pydicom.dcmread(get_testdata_file("MR_small.dcm")))
    assert np.array_equal(modality_pixels(pydicom.dcmread(get_testdata_file(name))), reference)


def test_jpeg_extended_12_bit_decodes() -> None:
    ds = pydicom.dcmread(get_testdata_file("JPGExtended.dcm"))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.51"
    values = modality_pixels(ds)
    assert values.shape == (ds.Rows, ds.Columns)
    assert 0 < values.max() < 4096 and values.std() > 0


def test_rescale_is_applied_and_fractional_slopes_give_floats() -> None:
    ds = ct_series("HFS", size=16)[0]
    assert modality_pixels(ds).dtype == np.int16 and modality_pixels(ds).min() == 0
    ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-3"
    values = modality_pixels(ds)
    assert values.dtype == np.float32 and values.min() == pytest.approx(1024 * 0.5 - 3)


def test_integer_planes_travel_exactly_and_float_planes_within_half_a_step() -> None:
    hu = np.array([[-1024, 0], [40, 3071]], dtype=np.int16)
    encoded = encode_plane(hu)
    assert encoded.scale == 1.0 and np.array_equal(decode_plane(encoded), hu)
    dose = np.array([[np.nan, 0.0], [12.345, 70.0]], dtype=np.float32)
    encoded = encode_plane(dose)
    back = decode_plane(encoded)
    assert np.isnan(back[0, 0])
    assert np.allclose(back[1:], dose[1:], atol=encoded.scale / 2 + 1e-6)
    assert np.allclose(back[0, 1], 0.0, atol=encoded.scale / 2 + 1e-6)
    empty = encode_plane(np.full((2, 2), np.nan, dtype=np.float32))
    assert np.isnan(decode_plane(empty)).all()

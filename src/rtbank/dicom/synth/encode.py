"""A lean Part-10 writer for the generator's own datasets (Explicit VR Little Endian, defined lengths).

The generator stores nearly every element already encoded (:func:`rtbank.dicom.synth.common.put`), so
writing is concatenation; pydicom's general writer spent most of the archive's run time re-examining each
element. Anything not already encoded goes through pydicom's own element writer, and a test holds the output
byte-identical to ``pydicom.dcmwrite(..., enforce_file_format=True)``.
"""

from __future__ import annotations

import struct
from pathlib import Path

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info

PREAMBLE = b"\x00" * 128 + b"DICM"
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_ITEM = b"\xfe\xff\x00\xe0"


def write_part10(path: Path, ds: Dataset) -> None:
    """Write ``ds`` (with ``file_meta``) to ``path`` as a Part-10 file."""
    meta = DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    path.write_bytes(PREAMBLE + meta.getvalue() + encode_dataset(ds))


def encode_dataset(ds: Dataset, parent_encodings: str | list[str] = default_encoding) -> bytes:
    """The Explicit VR Little Endian encoding of ``ds`` (no file meta), elements in tag order."""
    charset = ds.get_item(0x00080005)
    encodings = convert_encodings(ds.SpecificCharacterSet) if charset is not None else parent_encodings
    parts: list[bytes] = []
    for tag in sorted(ds.keys()):
        if tag.element == 0 and tag.group > 6:
            continue  # group lengths are retired
        elem = ds.get_item(tag)
        if isinstance(elem, RawDataElement):
            parts.append(_header(tag, elem.VR or "UN", len(elem.value or b"")) + (elem.value or b""))
        elif elem.VR == "SQ":
            body = b"".join(_item(item, encodings) for item in elem.value)
            parts.append(_header(tag, "SQ", len(body)) + body)
        else:
            fp = DicomBytesIO()
            fp.is_little_endian, fp.is_implicit_VR = True, False
            write_data_element(fp, elem, encodings)
            parts.append(fp.getvalue())
    return b"".join(parts)


def _item(item: Dataset, encodings: str | list[str]) -> bytes:
    body = encode_dataset(item, encodings)
    return _ITEM + struct.pack("<L", len(body)) + body


def _header(tag: int, vr: str, length: int) -> bytes:
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)

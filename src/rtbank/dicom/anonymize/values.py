"""Value-level operations: dummy values (action D), shifted dates (option C), cleaned text (C and kept text).

Cleaning text cannot know every way a person can be named, so it removes what the object itself tells:
the patient's names and identifiers, every person name in it and every UID (replaced by its mapped
value). A retained descriptor such as an ROI name stays readable unless it repeats one of those.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, timedelta

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC", "PN"})
TEMPORAL_VRS = frozenset({"DA", "DT", "TM"})
_NUMERIC_DUMMY = {
    "DS": "0",
    "IS": "0",
    "FL": 0.0,
    "FD": 0.0,
    "SL": 0,
    "SS": 0,
    "UL": 0,
    "US": 0,
    "SV": 0,
    "UV": 0,
}
_STRING_DUMMY = {
    "AE": "ANONYMOUS",
    "AS": "000D",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "UR": "urn:x-rtbank:anonymized",
}
DUMMY_TEXT = "ANONYMIZED"
REMOVED_MARK = "***"
# Identifiers embedded in text: UIDs with at least 5 components (IPv4 addresses have 4, decimals 2).
_UID_IN_TEXT = re.compile(r"(?<![0-9.])[0-9]+(?:\.[0-9]+){4,}(?![0-9.])")
# Where identity values come from (beyond every PN value anywhere in the object).
_IDENTITY_KEYWORDS = (
    "PatientID",
    "OtherPatientIDs",
    "AccessionNumber",
    "PatientBirthDate",
    "IssuerOfPatientID",
    "MedicalRecordLocator",
    "PatientAddress",
    "AdmissionID",
)
_MIN_TOKEN = 3


def vr_of(elem: DataElement | RawDataElement) -> str:
    """The VR of an element without decoding it (implicit VR and UN elements: from the dictionary)."""
    vr = elem.VR
    if vr and vr != "UN":
        return str(vr)
    try:
        return str(dictionary_VR(elem.tag))
    except KeyError:
        return "UN"


def dummy_value(vr: str) -> object:
    """A non-empty value valid for ``vr`` that carries no information (Table E.1-1 action ``D``)."""
    if vr in _NUMERIC_DUMMY:
        return _NUMERIC_DUMMY[vr]
    if vr in _STRING_DUMMY:
        return _STRING_DUMMY[vr]
    if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        return b"\x00\x00\x00\x00"
    return DUMMY_TEXT


def shift_date(value: str, days: int) -> str | None:
    """Shift a DA value (``YYYYMMDD``; ``YYYY`` and ``YYYYMM`` keep their precision); ``None`` if invalid."""
    text = value.strip()
    if not text.isdigit() or len(text) not in (4, 6, 8):
        return None
    padded = text + "0101"[len(text) - 4 :] if len(text) < 8 else text
    try:
        moved = date(int(padded[:4]), int(padded[4:6]), int(padded[6:8])) + timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    return f"{moved:%Y%m%d}"[: len(text)]


def shift_datetime(value: str, days: int) -> str | None:
    """Shift the date part of a DT value, keeping time, fraction and UTC offset as written."""
    text = value.strip()
    digits = len(text) - len(text.lstrip("0123456789"))
    date_len = min(digits, 8)
    if date_len < 4:
        return None
    date_part = shift_date(text[:date_len], days)
    return None if date_part is None else date_part + text[date_len:]


def map_values(value: object, fn: Callable[[str], str | None]) -> object | None:
    """Apply ``fn`` to each value of a (possibly multi-valued) string element; ``None`` if any fails."""
    if isinstance(value, (list, MultiValue)):
        out = [fn(str(v)) for v in value]
        return None if any(v is None for v in out) else out
    if value is None or value == "":
        return value
    return fn(str(value))


class TextCleaner:
    """Removes identity values found in an object from free text, and maps UIDs written in text."""

    def __init__(self, tokens: Iterable[str], map_uid: Callable[[str], str]) -> None:
        words = sorted({t for t in tokens if len(t) >= _MIN_TOKEN}, key=len, reverse=True)
        self._pattern = (
            re.compile(
                r"(?<![A-Za-z0-9])(?:" + "|".join(re.escape(w) for w in words) + r")(?![A-Za-z0-9])",
                re.IGNORECASE,
            )
            if words
            else None
        )
        self._map_uid = map_uid

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(REMOVED_MARK, text)
        return _UID_IN_TEXT.sub(lambda m: self._map_uid(m.group(0)), text)


def identity_tokens(ds: Dataset) -> set[str]:
    """Names and identifiers of people in ``ds`` (any depth), as whole values and name components."""
    tokens: set[str] = set()

    def add(value: object) -> None:
        values = value if isinstance(value, (list, MultiValue)) else [value]
        for item in values:
            text = str(item).strip()
            if not text:
                continue
            tokens.add(text)
            tokens.update(part.strip() for part in re.split(r"[\^=\s,]+", text) if part.strip())

    def walk(dataset: Dataset) -> None:
        for tag in dataset.keys():
            vr = vr_of(dataset.get_item(tag))
            if vr == "SQ":
                for item in dataset[tag].value or ():
                    walk(item)
            elif vr == "PN" or (not tag.is_private and keyword_for_tag(tag) in _IDENTITY_KEYWORDS):
                add(dataset[tag].value)

    walk(ds)
    birth = str(ds.get("PatientBirthDate", "") or "")
    if len(birth) == 8 and birth.isdigit():
        tokens.update({f"{birth[:4]}-{birth[4:6]}-{birth[6:]}", f"{birth[6:]}.{birth[4:6]}.{birth[:4]}"})
    return tokens

"""Everything an anonymised copy derives from its secret: UIDs, pseudonyms, the date shift.

Each value is HMAC-SHA256 over (purpose, copy identifier, original value) with the audit's secret key.
The same original in the same copy always gets the same value — across separate runs, so a later export
of one copy keeps its references — while other copies get unrelated values, and nobody without the key
can recompute the map from the originals (unlike an unkeyed hash such as CTP's ``@hashuid``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping

from pydicom.uid import UID_dictionary

from rtbank.dicom.sop import PRIVATE_STORAGE_CLASSES

MIN_KEY_BYTES = 16
# SOP classes, transfer syntaxes, coding schemes, well-known frames of reference and the like: they name a
# kind of thing, not a patient's thing, and a reader needs them as they are.
WELL_KNOWN_UIDS = frozenset(UID_dictionary) | frozenset(PRIVATE_STORAGE_CLASSES)
_PSEUDONYM = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,64}$")

PseudonymSource = Callable[[str], str] | Mapping[str, str]


def new_key() -> bytes:
    """A fresh 256-bit audit key."""
    return secrets.token_bytes(32)


def _digest(key: bytes, purpose: str, copy_id: str, value: str) -> bytes:
    message = "\x1f".join((purpose, copy_id, value)).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).digest()


def check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the anonymisation key must be at least {MIN_KEY_BYTES} random bytes")
    return key


def is_well_known_uid(uid: str) -> bool:
    return uid in WELL_KNOWN_UIDS


class UidMap:
    """Original UID -> ``2.25.<int>`` UID of one copy; records every mapping it applied.

    The integer is the first 128 bits of the HMAC with the UUID version (8, "custom") and variant bits
    set, so the result is a valid PS3.5 §B.2 UUID-derived UID of at most 44 characters.
    """

    def __init__(self, key: bytes, copy_id: str) -> None:
        self._key = check_key(key)
        self._copy_id = copy_id
        self.applied: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        original = uid.rstrip("\x00 ").strip()
        if not original or is_well_known_uid(original):
            return original
        new = self.applied.get(original)
        if new is None:
            raw = bytearray(_digest(self._key, "uid", self._copy_id, original)[:16])
            raw[6] = (raw[6] & 0x0F) | 0x80  # version 8
            raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
            new = f"2.25.{int.from_bytes(raw, 'big')}"
            self.applied[original] = new
        return new


def date_shift_days(key: bytes, copy_id: str) -> int:
    """Days every date of one copy moves by: between 1 and 3650 days back, fixed per (key, copy)."""
    value = int.from_bytes(_digest(check_key(key), "date-shift", copy_id, "")[:8], "big")
    return -(1 + value % 3650)


def keyed_token(key: bytes, copy_id: str, purpose: str, value: str, length: int) -> str:
    """An uppercase hexadecimal token standing for ``value`` in one copy (used to clean AE titles)."""
    return _digest(key, purpose, copy_id, value).hex().upper()[:length]


class KeyedPseudonyms:
    """Default patient pseudonyms ``<prefix>-<copy>-<n>``, ``n`` a 10-digit number keyed like the UIDs.

    Deterministic, so a later export of the same copy gives a patient the same pseudonym without a stored
    table; different per copy; not recomputable without the key. Two patients of one copy getting the
    same number (about 1 in 20 million for 1,000 patients) is detected by :class:`Anonymizer`.
    """

    def __init__(self, key: bytes, copy_id: str, prefix: str = "ANON") -> None:
        self._key = check_key(key)
        self._copy_id = copy_id
        self.prefix = prefix
        check_pseudonym(f"{prefix}-{copy_id}-0000000000")

    def __call__(self, patient_id: str) -> str:
        number = int.from_bytes(_digest(self._key, "patient", self._copy_id, patient_id)[:8], "big")
        return f"{self.prefix}-{self._copy_id}-{number % 10**10:010d}"


def check_pseudonym(pseudonym: str) -> str:
    """A pseudonym must be a valid Patient ID (LO): 1-64 printable characters, no backslash."""
    if not isinstance(pseudonym, str) or not _PSEUDONYM.match(pseudonym) or pseudonym != pseudonym.strip():
        raise ValueError(f"pseudonym {pseudonym!r} is not 1-64 printable characters without a backslash")
    return pseudonym

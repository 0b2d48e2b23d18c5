"""The confidentiality profile a study chooses: PS3.15 Basic Profile plus options, and how they are coded.

The option names are the PS3.15 Annex E option columns of Table E.1-1; the codes are PS3.16 CID 7050
"De-identification Method" (coding scheme ``DCM``), written into every output's
DeidentificationMethodCodeSequence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Option(StrEnum):
    """The PS3.15 Annex E options rtbank implements (names as in Table E.1-1's option columns).

    Not offered: *Retain UIDs* (every copy must have its own UIDs), *Clean Structured Content* and
    *Clean Graphics* (structured content and graphics are removed instead), *Clean Pixel Data* and
    *Clean Recognizable Visual Features* (objects with burned-in annotation are refused instead).
    """

    RETAIN_SAFE_PRIVATE = "retain_safe_private"
    RETAIN_DEVICE_IDENTITY = "retain_device_identity"
    RETAIN_INSTITUTION_IDENTITY = "retain_institution_identity"
    RETAIN_PATIENT_CHARACTERISTICS = "retain_patient_characteristics"
    RETAIN_LONGITUDINAL_FULL_DATES = "retain_longitudinal_full_dates"
    RETAIN_LONGITUDINAL_MODIFIED_DATES = "retain_longitudinal_modified_dates"
    CLEAN_DESCRIPTORS = "clean_descriptors"

    @classmethod
    def parse(cls, text: str) -> Option:
        """Accept ``retain-safe-private``, ``retain_safe_private`` or ``RETAIN_SAFE_PRIVATE``."""
        name = text.strip().lower().replace("-", "_")
        for option in cls:
            if option.value == name:
                return option
        known = ", ".join(o.cli_name for o in cls)
        raise ValueError(f"unknown option {text!r}; known options: {known}")

    @property
    def cli_name(self) -> str:
        return self.value.replace("_", "-")


# PS3.16 CID 7050 De-identification Method: code value, code meaning.
BASIC_PROFILE_CODE = ("113100", "Basic Application Confidentiality Profile")
OPTION_CODES: dict[Option, tuple[str, str]] = {
    Option.CLEAN_DESCRIPTORS: ("113105", "Clean Descriptors Option"),
    Option.RETAIN_LONGITUDINAL_FULL_DATES: (
        "113106",
        "Retain Longitudinal Temporal Information Full Dates Option",
    ),
    Option.RETAIN_LONGITUDINAL_MODIFIED_DATES: (
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    Option.RETAIN_PATIENT_CHARACTERISTICS: ("113108", "Retain Patient Characteristics Option"),
    Option.RETAIN_DEVICE_IDENTITY: ("113109", "Retain Device Identity Option"),
    Option.RETAIN_SAFE_PRIVATE: ("113111", "Retain Safe Private Option"),
    Option.RETAIN_INSTITUTION_IDENTITY: ("113112", "Retain Institution Identity Option"),
}

_CREATOR = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,64}$")  # LO without backslash or control characters


@dataclass(frozen=True, order=True)
class SafePrivateTag:
    """One private attribute a study declares safe: private creator, (odd) group, element offset 0x00-0xFF.

    The element offset is the low byte of the element number, so the attribute is found whatever block
    (``gggg,10xx`` … ``gggg,FFxx``) the writer reserved for the creator. Private sequences cannot be
    whitelisted: their items are free for any content, UIDs and names included.
    """

    creator: str
    group: int
    offset: int

    def __post_init__(self) -> None:
        if not _CREATOR.match(self.creator.strip()):
            raise ValueError(f"private creator {self.creator!r} must be 1-64 printable characters")
        if not (0x0009 <= self.group <= 0xFFFF and self.group % 2 == 1):
            raise ValueError(f"group {self.group:04X} is not a private (odd) group")
        if not 0 <= self.offset <= 0xFF:
            raise ValueError(f"element offset {self.offset:#x} must be 0x00-0xFF")

    @classmethod
    def parse(cls, text: str) -> SafePrivateTag:
        """``CREATOR,GGGG,XX`` with GGGG and XX hexadecimal, e.g. ``ACME RT 1.0,3253,10``."""
        parts = [p.strip() for p in text.rsplit(",", 2)]
        if len(parts) != 3:
            raise ValueError(f"safe private tag {text!r} is not CREATOR,GGGG,XX")
        try:
            return cls(parts[0], int(parts[1], 16), int(parts[2], 16))
        except ValueError as exc:
            raise ValueError(f"safe private tag {text!r}: {exc}") from None


def load_safe_private(path: Path) -> frozenset[SafePrivateTag]:
    """A whitelist file: JSON list of ``{"creator": …, "group": "GGGG", "offset": "XX"}`` objects."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return frozenset(
            SafePrivateTag(e["creator"], int(e["group"], 16), int(e["offset"], 16)) for e in entries
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a safe-private whitelist ({exc})") from None


@dataclass(frozen=True)
class Profile:
    """Basic Application Level Confidentiality Profile with the options a study chose.

    Parameters
    ----------
    options
        The chosen :class:`Option` values (``str`` accepted).
    safe_private
        The whitelist used by :attr:`Option.RETAIN_SAFE_PRIVATE`; required with that option.
    """

    options: frozenset[Option] = frozenset()
    safe_private: frozenset[SafePrivateTag] = field(default=frozenset())

    def __init__(self, options: Iterable[Option | str] = (), safe_private: Iterable[SafePrivateTag] = ()):
        chosen = frozenset(o if isinstance(o, Option) else Option.parse(o) for o in options)
        object.__setattr__(self, "options", chosen)
        object.__setattr__(self, "safe_private", frozenset(safe_private))
        self._check()

    def _check(self) -> None:
        dates = {Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}
        if dates <= self.options:
            raise ValueError("choose either full dates or modified dates, not both")
        if Option.RETAIN_SAFE_PRIVATE in self.options and not self.safe_private:
            raise ValueError("the retain-safe-private option needs a whitelist of safe private tags")
        if self.safe_private and Option.RETAIN_SAFE_PRIVATE not in self.options:
            raise ValueError("a safe private whitelist was given without the retain-safe-private option")

    def __contains__(self, option: object) -> bool:
        return option in self.options

    def method_codes(self) -> list[tuple[str, str]]:
        """CID 7050 (code value, code meaning) for the profile and each chosen option, in code order."""
        return [BASIC_PROFILE_CODE] + sorted(OPTION_CODES[o] for o in self.options)

    def describe(self) -> list[str]:
        """Values for DeidentificationMethod (LO, at most 64 characters each)."""
        from rtbank.dicom.anonymize.tables import action_table

        return [f"rtbank PS3.15-{action_table().edition} Basic Profile"] + [
            meaning.removesuffix(" Option")[:64] for _code, meaning in self.method_codes()[1:]
        ]

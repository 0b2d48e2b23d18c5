"""Checking that an upload declared de-identified carries no identifiers any more (no Django here).

A centre without a DICOM connection often de-identifies before uploading. rtbank cannot prove a value is
not identifying, but it can refuse what PS3.15's Basic Application Confidentiality Profile would not have
left: for every element of Table E.1-1 (:mod:`rtbank.dicom.anonymize.tables`) whose action, under the
options the file itself declares in DeidentificationMethodCodeSequence (PS3.16 CID 7050), removes or empties
it, a remaining value is reported when the element is

* a person name (VR PN) or a date (DA, DT) — at any depth, including inside sequences;
* one of the identity attributes below (IDs, addresses, institution, accession number);
* a sequence the profile removes (e.g. Other Patient IDs Sequence) that still has items.

Two conventions of de-identification tools are accepted: PatientID holds the pseudonym (it must be there to
file the data), and PatientName is empty, equals that pseudonym, or is a dummy such as ``ANONYMIZED``.
Where the profile allows a dummy (actions with ``D``) a recognisable dummy value passes. Private elements are
not examined (their content is unknown); rtbank never shows them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from rtbank.dicom.anonymize.profile import OPTION_CODES, Option
from rtbank.dicom.anonymize.tables import ResolvedActions, action_table

CHECKED_VRS = frozenset({"PN", "DA", "DT"})
# Identity attributes that are neither names nor dates (PatientID is the pseudonym, see above).
IDENTITY_KEYWORDS = frozenset(
    {
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "OtherPatientNames",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "MedicalRecordLocator",
        "AccessionNumber",
        "InstitutionName",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "IssuerOfPatientID",
        "PatientBirthName",
        "PatientMotherBirthName",
        "MilitaryRank",
        "BranchOfService",
        "AdmissionID",
        "PatientInsurancePlanCodeSequence",
        "ReferencedPatientSequence",
        "PersonIdentificationCodeSequence",
        "PatientComments",
        "AdditionalPatientHistory",
        "StationName",
        "DeviceSerialNumber",
    }
)
DUMMY_VALUES = frozenset(
    {
        "",
        "ANONYMIZED",
        "ANONYMISED",
        "ANONYMOUS",
        "ANON",
        "REMOVED",
        "DEIDENTIFIED",
        "DE-IDENTIFIED",
        "NONE",
        "UNKNOWN",
        "XXX",
        "XXXX",
        "XXXXX",
        "***",
        "DUMMY",
        "19000101",
        "19000101000000",
    }
)
_ACTIONS_THAT_CLEAR = frozenset({"X", "Z", "X/Z", "D", "X/D", "Z/D", "X/Z/D"})
_CODE_TO_OPTION = {code: option for option, (code, _meaning) in OPTION_CODES.items()}


@dataclass(frozen=True)
class Offence:
    """An element that still holds a value the Basic Profile would have removed."""

    tag: int
    name: str
    path: str  # keywords from the top level, e.g. "ReferencedPatientSequence > PatientName"
    action: str

    @property
    def label(self) -> str:
        return f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X}) {self.path}"


def declared_options(ds: Dataset) -> frozenset[Option]:
    """The PS3.15 options the file says were applied (DeidentificationMethodCodeSequence, CID 7050)."""
    found = set()
    for item in ds.get("DeidentificationMethodCodeSequence", None) or []:
        option = _CODE_TO_OPTION.get(str(item.get("CodeValue", "")).strip())
        if option is not None:
            found.add(option)
    return frozenset(found)


def remaining_identifiers(ds: Dataset) -> list[Offence]:
    """Every element of ``ds`` that still identifies, by the rules in the module docstring."""
    actions = action_table().actions_for(declared_options(ds))
    pseudonym = str(ds.get("PatientID", "") or "").strip()
    found: list[Offence] = []
    _walk(ds, (), actions, pseudonym, found)
    return found


def _walk(
    ds: Dataset, parents: tuple[str, ...], actions: ResolvedActions, pseudonym: str, found: list[Offence]
) -> None:
    for elem in ds:  # this level; sequence items recurse below
        tag = int(elem.tag)
        if elem.tag.is_private or elem.tag.group == 0x0002:
            continue
        keyword = elem.keyword or f"{tag:08X}"
        path = (*parents, keyword)
        action = actions.get(tag) or ""
        if elem.VR == "SQ":
            items: Sequence = elem.value or Sequence()
            if (
                action in ("X", "Z", "X/Z", "X/Z/D", "X/D", "Z/D", "D")
                and keyword in IDENTITY_KEYWORDS
                and len(items)
            ):
                found.append(Offence(tag, elem.name, " > ".join(path), action))
                continue
            for item in items:
                _walk(item, path, actions, pseudonym, found)
            continue
        if action not in _ACTIONS_THAT_CLEAR:
            continue
        if elem.VR not in CHECKED_VRS and keyword not in IDENTITY_KEYWORDS:
            continue
        if _acceptable(keyword, _text(elem.value), action, pseudonym, top_level=not parents):
            continue
        found.append(Offence(tag, elem.name, " > ".join(path), action))


def _acceptable(keyword: str, value: str, action: str, pseudonym: str, *, top_level: bool) -> bool:
    if value == "":
        return True
    if top_level and keyword == "PatientName" and (value == pseudonym or value.upper() in DUMMY_VALUES):
        return True
    return "D" in action and value.upper() in DUMMY_VALUES


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        return value.decode("latin-1", "replace").strip(" \x00")
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(_text(v) for v in value).strip("\\ ")
    return str(value).strip()


def summarise(per_file: Iterable[tuple[str, list[Offence]]], limit: int = 50) -> list[str]:
    """One line per offending element: how many files carry it and one example file."""
    seen: dict[str, tuple[int, str, str]] = {}
    for name, offences in per_file:
        for offence in {o.label: o for o in offences}.values():
            count, example, _ = seen.get(offence.label, (0, name, offence.name))
            seen[offence.label] = (count + 1, example, offence.name)
    lines = [
        f"{label} — {elem_name}: still has a value in {count} file{'s' if count != 1 else ''} "
        f"(e.g. {example})"
        for label, (count, example, elem_name) in sorted(seen.items())
    ]
    return lines[:limit] + ([f"… and {len(lines) - limit} more elements"] if len(lines) > limit else [])

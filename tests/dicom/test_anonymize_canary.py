"""Canaries: a unique marker in every string, name, date, time and private element (sequences included);
a byte search of every output finds none except where the profile keeps that attribute.

What the profile keeps is read from the two data files, not from the engine: an attribute survives only if
Table E.1-1 keeps or cleans it under a chosen option, or if Table E.1-1 does not list it and the SOP
class's retain list names its path. Names, identifiers, dates and private values are checked by hand too.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pydicom
import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from rtbank.dicom.anonymize import Anonymizer, Option, Profile, action_table, retain_list
from tests.dicom.test_anonymize_support import _SCRATCH, BASIC, DATA, FULL, KEY, write_registration

FILES = (
    "rt-utils/ct_1.dcm",  # 117 private attributes
    "rt-utils/rt.dcm",
    "slicerrt-eclipse-prostate/RP.1.2.246.352.71.5.2088656855.377401.20110920153647.dcm",
    "slicerrt-eclipse-prostate/RI.1.2.246.352.71.3.2088656855.2381134.20110921150951.dcm",
    "pyplanscoring/raystation_brain_srs_imrt/RD1.2.752.243.1.1.20180405114728128.4000.85245.dcm",
    "pyplanscoring/monaco_3dcrt_3plans/2018CompLTCWC2_t21.dcm",
    "synthetic-rtrecord/RTRECORD_fx1.dcm",
    "aptg-dcpt-let/plan03_ramp_full/ramped_2Gy_ver2_full.dcm",
)
STRING_VRS = {"PN", "LO", "SH", "ST", "LT", "UT", "UC", "AE", "CS", "UR"}
TEMPORAL_VRS = {"DA", "DT", "TM"}
NEVER_KEPT = {
    "ReceiveCoilName",
    "00089999",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "OtherPatientNames",
    "PatientAddress",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "InstitutionName",
    "InstitutionAddress",
    "StudyID",
    "AccessionNumber",
    "ReviewerName",
}
# Attributes the options keep, by option (from Table E.1-1's option columns, checked here by name).
KEPT_WITH_FULL = {
    "PatientSex",
    "StationName",
    "SeriesDescription",
    "ROIName",
    "StudyDescription",
}


@dataclass(frozen=True)
class Canary:
    source: str
    sop_class: str
    path: tuple[str, ...]  # keywords from the top, private elements as their tag
    vr: str
    marker: str


class Planter:
    """Replaces each string/name/date/time/private value with a unique marker and records where."""

    def __init__(self) -> None:
        self.canaries: list[Canary] = []
        self._dates = 0

    def plant(self, ds: Dataset, source: str) -> None:
        self._walk(ds, (), source, str(ds.SOPClassUID))

    def _walk(self, ds: Dataset, parents: tuple[str, ...], source: str, sop_class: str) -> None:
        for elem in list(ds):
            name = elem.keyword if elem.keyword and not elem.tag.is_private else f"{int(elem.tag):08X}"
            path = (*parents, name)
            if elem.VR == "SQ":
                for item in elem.value:
                    self._walk(item, path, source, sop_class)
            elif elem.tag.is_private and not elem.tag.is_private_creator:
                elem.VR, elem.value = "LO", self._marker(source, sop_class, path, "private")
            elif elem.keyword == "SpecificCharacterSet" or elem.tag.is_private_creator:
                continue
            elif elem.VR in STRING_VRS | TEMPORAL_VRS:
                elem.value = self._marker(source, sop_class, path, elem.VR)

    def _marker(self, source: str, sop_class: str, path: tuple[str, ...], vr: str) -> str:
        n = len(self.canaries)
        if vr in ("DA", "DT"):
            # 11 years apart, so no date shift (at most 10 years) can turn one canary into another.
            day = dt.date(1000, 1, 1) + dt.timedelta(days=4100 * self._dates)
            self._dates += 1
            marker = f"{day:%Y%m%d}" + ("101010" if vr == "DT" else "")
        elif vr == "TM":
            marker = f"235959.{n:06d}"
        else:
            marker = f"CNRY{n:06d}"
        self.canaries.append(Canary(source, sop_class, path, vr, marker))
        return marker


def _add_identifying_extras(ds: Dataset) -> None:
    """Identifying attributes the files may lack, at the top and inside sequences kept or replaced."""
    ds.OtherPatientNames = "x"
    ds.PatientAddress = "x"
    ds.InstitutionName = "x"
    ds.InstitutionAddress = "x"
    ds.ReferringPhysicianName = "x"
    ds.OperatorsName = "x"
    ds.StationName = "x"
    ds.StudyDescription = "x"
    ds.SeriesDescription = "x"
    ds.PatientSex = "O"
    ds.PatientAge = "050Y"
    ds.PatientBirthDate = "19500101"
    ds.StudyDate = "20200101"
    ds.AcquisitionDateTime = "20200101101010"
    reference = Dataset()
    reference.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    reference.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.8"
    reference.PerformingPhysicianName = "x"  # inside a sequence Table E.1-1 keeps (X/Z/U*)
    reference.ReceiveCoilName = "x"  # in neither list at this path
    ds.ReceiveCoilName = "x"  # an MR attribute: in neither list for any RT object
    ds.add_new(0x00089999, "LO", "x")  # a public tag no dictionary knows
    ds.ReferencedImageSequence = Sequence([reference])
    block = ds.private_block(0x0029, "CANARY CREATOR", create=True)
    block.add_new(0x10, "LO", "x")
    inner = Dataset()
    inner.add_new(0x00291011, "LO", "x")  # a private element inside a private sequence
    block.add_new(0x12, "SQ", Sequence([inner]))


@cache
def planted() -> tuple[tuple[tuple[str, Dataset], ...], tuple[Canary, ...]]:
    registration = _SCRATCH / "canary" / "REG.dcm"
    ct = [DATA / "rt-utils/ct_1.dcm", DATA / "rt-utils/ct_2.dcm"]
    write_registration(ct, ct[:1], registration)
    planter = Planter()
    datasets = []
    for path in [DATA / f for f in FILES] + [registration]:
        ds = pydicom.dcmread(path, force=True)
        _add_identifying_extras(ds)
        planter.plant(ds, Path(path).name)
        datasets.append((Path(path).name, ds))
    return tuple(datasets), tuple(planter.canaries)


def _outputs(profile: Profile) -> dict[str, bytes]:
    datasets, _canaries = planted()
    anonymizer = Anonymizer(profile, KEY, "1")
    out = {}
    for name, ds in datasets:
        buffer = io.BytesIO()
        anonymizer.anonymize(ds).save_as(buffer, enforce_file_format=True)
        out[name] = buffer.getvalue()
    return out


def _kept_by_profile(canary: Canary, profile: Profile) -> bool:
    """Whether the data files say this attribute may survive (its value possibly cleaned)."""
    if canary.vr == "private" or canary.vr == "PN" or canary.vr in ("DA", "DT"):
        return False  # names, private values and dates never survive as they were
    keyword = canary.path[-1]
    if canary.vr == "TM":
        return Option.RETAIN_LONGITUDINAL_MODIFIED_DATES in profile
    tag = tag_for_keyword(keyword)
    action = action_table().actions_for(profile.options).get(tag) if tag is not None else None
    if action is not None:
        return action in ("K", "C") or action == "X/Z/U*"
    retain = retain_list(canary.sop_class)
    return retain is not None and retain.keeps(canary.path)


def _found(outputs: dict[str, bytes], canaries: tuple[Canary, ...]) -> list[Canary]:
    blob = b"\n".join(outputs.values())
    markers = set(re.findall(rb"CNRY[0-9]{6}|235959\.[0-9]{6}", blob))
    found = [c for c in canaries if c.marker.encode() in markers]
    found += [c for c in canaries if c.vr in ("DA", "DT") and c.marker.encode() in blob]
    return found


@pytest.mark.parametrize("profile_name", ["BASIC", "FULL"])
def test_no_canary_survives_unless_the_profile_keeps_its_attribute(profile_name):
    profile = {"BASIC": BASIC, "FULL": FULL}[profile_name]
    _datasets, canaries = planted()
    assert len(canaries) > 900
    assert len([c for c in canaries if c.vr == "private"]) > 100
    found = _found(_outputs(profile), canaries)
    leaked = [c for c in found if not _kept_by_profile(c, profile)]
    assert not leaked, [f"{c.source}: {'>'.join(c.path)} ({c.vr})" for c in leaked[:20]]
    keywords = {c.path[-1] for c in found}
    assert not keywords & NEVER_KEPT
    if profile_name == "FULL":
        assert KEPT_WITH_FULL <= keywords  # the search does find what an option keeps
    else:
        assert not keywords & KEPT_WITH_FULL
        assert "Manufacturer" in keywords and "BeamName" in keywords  # kept by the retain lists

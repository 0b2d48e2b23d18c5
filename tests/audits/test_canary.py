"""Canaries through the whole audit path: planted in the stored data, looked for in every copy's bytes.

A unique marker replaces every string, name, date, time and private value (inside sequences too) of one
case — CT slices, structure set, plan, dose — before it is stored; the audit then copies it for two
participants. A byte search of every output finds no marker except where the audit's profile keeps that
attribute (decided from the PS3.15 table and the retain lists, :mod:`tests.dicom.test_anonymize_canary`).
Coded strings (CS) are left alone so the objects stay meaningful to rtbank's filing; the Patient ID is one
marker per patient, so the case stays one patient.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from rtbank.audits.copies import copy_files
from rtbank.dicom.anonymize import Option, Profile
from tests.audits.support import OPTIONS, AuditWorld, Case, build_world, make_audit
from tests.dicom.test_anonymize_canary import (
    NEVER_KEPT,
    STRING_VRS,
    TEMPORAL_VRS,
    Planter,
    _add_identifying_extras,
    _found,
    _kept_by_profile,
)

PATIENT_MARKER = "PIDCNRY0001"


class CaseSafePlanter(Planter):
    """The engine test's planter, minus coded strings and the Patient ID (see the module docstring)."""

    def _walk(self, ds: Dataset, parents: tuple[str, ...], source: str, sop_class: str) -> None:
        for elem in list(ds):
            name = elem.keyword if elem.keyword and not elem.tag.is_private else f"{int(elem.tag):08X}"
            path = (*parents, name)
            if elem.VR == "SQ":
                for item in elem.value:
                    self._walk(item, path, source, sop_class)
            elif elem.tag.is_private and not elem.tag.is_private_creator:
                elem.VR, elem.value = "LO", self._marker(source, sop_class, path, "private")
            elif elem.keyword in ("SpecificCharacterSet", "PatientID") or elem.tag.is_private_creator:
                continue
            elif elem.VR in (STRING_VRS - {"CS"}) | TEMPORAL_VRS:
                elem.value = self._marker(source, sop_class, path, elem.VR)


def planted_case(case: Case, out: Path) -> tuple[list[Path], Planter]:
    planter = CaseSafePlanter()
    ct = [p for p in case.files if p.parent.name.startswith("CT")]
    files = [p for p in case.files if p not in ct] + ct[::20]
    written = []
    for i, path in enumerate(files):
        ds = pydicom.dcmread(path)
        _add_identifying_extras(ds)
        planter.plant(ds, path.name)
        ds.PatientID = PATIENT_MARKER
        target = out / f"{i:03d}.dcm"
        ds.save_as(target)
        written.append(target)
    return written, planter


def test_no_canary_of_the_stored_data_reaches_a_copy_unless_the_profile_keeps_it(
    db: None, cases: list[Case], tmp_path: Path
) -> None:
    case = cases[0]
    files, planter = planted_case(case, tmp_path)
    world: AuditWorld = build_world([case], {case.patient_id: files})
    audit = make_audit(world, 2)
    outputs = {
        f"{p.copy_id}/{f.name}": f.read_bytes() for p in audit.participants.all() for f in copy_files(p)
    }
    assert len(outputs) == 2 * len(files)
    canaries = tuple(planter.canaries)
    assert len(canaries) > 250 and len([c for c in canaries if c.vr == "private"]) == 2 * len(files)
    profile = Profile([Option(o) for o in OPTIONS])
    found = _found(outputs, canaries)
    leaked = [c for c in found if not _kept_by_profile(c, profile)]
    assert not leaked, [f"{c.source}: {'>'.join(c.path)} ({c.vr})" for c in leaked[:20]]
    assert not {c.path[-1] for c in found} & NEVER_KEPT
    assert {"SeriesDescription", "StudyDescription"} & {c.path[-1] for c in found}, (
        "the search finds kept text"
    )
    assert not any(PATIENT_MARKER.encode() in data for data in outputs.values())

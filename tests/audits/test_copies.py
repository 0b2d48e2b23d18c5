"""Audit copies made through the audit's services: the same guarantees as the engine, at the audit level.

Two cases (synthetic patients: planning CT, structure set, plan, dose) × two participants.
"""

from __future__ import annotations

import io
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pydicom
import pytest

from rtbank.audits import services
from rtbank.audits.copies import copy_files, copy_folder
from rtbank.audits.keys import key_path
from rtbank.audits.models import Audit, CopyState, Participant, PseudonymousPatient, PseudonymousUid
from rtbank.catalog.blobstore import blob_store
from rtbank.catalog.models import Instance
from rtbank.dicom.contours import StructureSet
from rtbank.dicom.dosegrid import DoseGrid
from rtbank.dicom.dvh import dvhs_for_structure_set, report
from rtbank.dicom.references import Ref, references
from rtbank.projects.models import AccessLog
from tests.audits.support import ALL_CONTENTS, AuditWorld, Case, build_world, drain, make_audit, thinned
from tests.dicom.test_anonymize_support import all_uids, dciodvfy_errors, reference_edges, uid_like_tokens

ALL = ALL_CONTENTS


def sources_by_uid(world: AuditWorld) -> dict[str, Path]:
    store = blob_store()
    return {
        i.sop_instance_uid: store.local_path(i.blob_key)
        for i in Instance.objects.filter(state="current").exclude(
            series__study__patient__issuer__startswith="audit:"
        )
    }


@pytest.fixture
def thin_world(db: None, cases: list[Case]) -> AuditWorld:
    return build_world(cases, thinned(cases))


def test_each_copy_keeps_every_guarantee_of_the_engine(thin_world: AuditWorld) -> None:
    """Two cases × two participants, CT (every 4th slice), RTSTRUCT, RTPLAN, RTDOSE, through the services."""
    world = thin_world
    audit = make_audit(world)
    sources = sources_by_uid(world)
    participants = list(Participant.objects.filter(audit=audit).order_by("copy_id"))
    per_copy_uids: list[set[str]] = []
    input_uids = set().union(*(all_uids(p) for p in sources.values()))
    for p in participants:
        assert p.copy_state == CopyState.READY, p.copy_error
        files = copy_files(p)
        assert p.copy_files == len(files) == len(sources)
        to_copy = dict(PseudonymousUid.objects.filter(participant=p).values_list("original_uid", "uid"))
        back = {new: original for original, new in to_copy.items()}
        pseudonyms = set(
            PseudonymousPatient.objects.filter(participant=p).values_list("pseudonym", flat=True)
        )
        assert len(pseudonyms) == 2 and all(n.startswith(f"AUDIT{audit.pk}-{p.copy_id}-") for n in pseudonyms)
        uids: set[str] = set()
        pairs = []
        for output in files:
            ds = pydicom.dcmread(output, force=True)
            assert str(ds.PatientID) in pseudonyms and str(ds.PatientIdentityRemoved) == "YES"
            source = sources[back[str(ds.SOPInstanceUID)]]  # the stored map names the source of every output
            pairs.append((source, output))
            uids |= all_uids(output)
            # the reference graph is the original's under the map: every RT reference still resolves
            original = pydicom.dcmread(source, force=True)
            assert set(references(ds)) == {Ref(r.kind, to_copy[r.target_uid]) for r in references(original)}
            mapped = {(to_copy[s], path, to_copy[t]) for s, path, t in reference_edges(original)}
            assert reference_edges(ds) <= mapped, output.name
            leaked = input_uids & set(uid_like_tokens(output.read_bytes()).split("\n"))
            assert not leaked, f"{output.name} carries original UIDs {sorted(leaked)[:2]}"
        assert uids <= set(back), "a UID of the copy is missing from the stored map"
        per_copy_uids.append(uids)
        _no_new_dciodvfy_errors(pairs)
        _dvh_metrics_equal(pairs)
    assert per_copy_uids[0] and not per_copy_uids[0] & per_copy_uids[1], "two copies share a UID"
    # anonymising is an access to patient data: one row per patient and participant, by the requester
    rows = AccessLog.objects.filter(action="anonymise", project=world.project)
    assert rows.count() == 4 and {r.user_id for r in rows} == {world.users["auditor"].pk}


def test_a_later_export_of_a_copy_is_identical_and_keeps_its_references(world: AuditWorld) -> None:
    audit = make_audit(world, participants=1, contents=["structure_set", "plan"])
    participant = audit.participants.get()
    first = {f.name: f.read_bytes() for f in copy_files(participant)}
    maps = set(PseudonymousUid.objects.filter(participant=participant).values_list("original_uid", "uid"))
    # later, the same copy with the planning CT and dose as well (a second export of the same copy)
    Audit.objects.filter(pk=audit.pk).update(contents=ALL)
    services.request_copies(world.access(), audit)
    drain()
    second = {f.name: f.read_bytes() for f in copy_files(participant)}
    assert {k: second[k] for k in first} == first, "the objects of the first export changed"
    assert len(second) > len(first)
    assert maps <= set(
        PseudonymousUid.objects.filter(participant=participant).values_list("original_uid", "uid")
    )
    copy_uids = {
        str(pydicom.dcmread(io.BytesIO(b), stop_before_pixels=True).SOPInstanceUID) for b in second.values()
    }
    back = {new: original for original, new in maps}
    stored = sources_by_uid(world)
    for data in first.values():  # the first export's references resolve into the second export's objects
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        targets = {
            r.target_uid for r in references(ds) if r.level == "instance" and back.get(r.target_uid) in stored
        }
        assert targets and targets <= copy_uids


def _no_new_dciodvfy_errors(pairs: list[tuple[Path, Path]]) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda pair: (pair, dciodvfy_errors(pair[0]), dciodvfy_errors(pair[1])), pairs)
        )
    for (source, output), before, after in results:
        new = sorted(set(after) - set(before))
        assert not new, f"{output.name} (from {source.name}): new dciodvfy errors {new[:3]}"


def _dvh_metrics_equal(pairs: list[tuple[Path, Path]]) -> None:
    """For each case: the copy's structure set on the copy's dose gives the original's DVH metrics."""
    structures, doses = {}, {}
    for source, output in pairs:
        ds = pydicom.dcmread(source, stop_before_pixels=True)
        if ds.Modality == "RTSTRUCT":
            structures[str(ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID)] = (source, output)
        elif ds.Modality == "RTDOSE":
            doses[str(ds.FrameOfReferenceUID)] = (source, output)
    assert structures and structures.keys() == doses.keys()
    for frame, (ss_source, ss_copy) in structures.items():
        dose_source, dose_copy = doses[frame]
        original = _original_metrics(ss_source, dose_source)
        assert original and any(m["metrics"]["Dmean"] for m in original)
        assert _metrics(ss_copy, dose_copy) == original


@cache
def _original_metrics(structures: Path, dose: Path) -> list[dict]:
    return _metrics(structures, dose)


def _metrics(structures: Path, dose: Path) -> list[dict]:
    grid = DoseGrid.from_dataset(pydicom.dcmread(dose, force=True))
    ss = StructureSet.from_dataset(pydicom.dcmread(structures, force=True))
    return [
        {k: r[k] for k in ("number", "volume_cc", "metrics", "flags")}
        for r in (report(x, grid) for x in dvhs_for_structure_set(ss, grid))
    ]


def test_the_key_is_a_private_file_and_a_wrong_key_stops_the_copy(world: AuditWorld) -> None:
    audit = make_audit(world, participants=1, contents=["structure_set"])
    path = key_path(audit)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(copy_folder(audit.participants.get()).stat().st_mode) == 0o700
    assert audit.key_fingerprint and audit.key_fingerprint not in path.read_text()
    path.write_text(os.urandom(32).hex() + "\n")  # someone swapped the file
    services.request_copies(world.access(), audit)
    drain()
    participant = audit.participants.get()
    assert participant.copy_state == CopyState.FAILED
    assert "not the key of audit" in participant.copy_error


def test_targets_are_removed_from_the_copies_when_asked(world: AuditWorld) -> None:
    audit = make_audit(
        world,
        participants=1,
        contents=["planning_images", "structure_set"],
        remove_roi_types=["GTV", "CTV", "PTV"],
    )
    (structure_set,) = [
        f for f in copy_files(audit.participants.get()) if f.name.startswith("structure-set")
    ][:1] or [None]
    assert structure_set is not None
    ds = pydicom.dcmread(structure_set)
    types = {str(o.RTROIInterpretedType) for o in ds.RTROIObservationsSequence}
    assert types and not types & {"GTV", "CTV", "PTV"}
    numbers = {int(r.ROINumber) for r in ds.StructureSetROISequence}
    assert {int(c.ReferencedROINumber) for c in ds.ROIContourSequence} <= numbers
    assert {int(o.ReferencedROINumber) for o in ds.RTROIObservationsSequence} == numbers


def test_an_audit_only_takes_plans_its_project_holds(world: AuditWorld) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="holds no plan"):
        services.create_audit(world.access(), world.project, name="x", plans=["1.2.3.4"], participants=1)
    with pytest.raises(ValidationError, match="no subject"):
        services.create_audit(world.access(), world.project, name="x", subjects=["NOPE"], participants=1)

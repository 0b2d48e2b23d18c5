"""A world for audit tests: synthetic patients in a project, an auditor, and what participants send back.

The synthetic archive is written once per session (``rtbank.dicom.synth``); every test imports only each
patient's first plan with its structure set, dose and planning CT into a fresh database (a few seconds).
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from django.contrib.auth.models import User
from django.test import Client
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from rtbank.audits import services
from rtbank.audits.copies import copy_files
from rtbank.audits.models import Audit, Participant, PseudonymousUid
from rtbank.catalog.models import Instance, Patient
from rtbank.ingest.importer import import_paths
from rtbank.institutions.models import Institution, Node
from rtbank.projects.access import Access
from rtbank.projects.models import Project
from rtbank.projects.services import add_project, assign_plan, grant
from rtbank.work.worker import run_until_idle

NEXT_YEAR = dt.date.today() + dt.timedelta(days=365)
# Filing, plan bundles, rules, and the audit's own work (other areas' kinds, e.g. DVHs, cost time here).
KINDS = ["ingest", "analysis", "rules", "audit_copy", "audit_qa", "forward"]
SEED = 2024
ALL_CONTENTS = ["planning_images", "structure_set", "plan", "dose"]
OPTIONS = ["retain_longitudinal_modified_dates", "clean_descriptors"]


@dataclass(frozen=True)
class Case:
    patient_id: str
    institution: str
    plan_uid: str
    files: tuple[Path, ...]


def synth_cases(root: Path, patients: int = 2) -> list[Case]:
    """Generate the archive under ``root`` (once) and return each patient's first plan and its objects."""
    from rtbank.dicom.synth import generate_archive

    manifest_path = root / "manifest.json"
    manifest = (
        json.loads(manifest_path.read_text())
        if manifest_path.exists()
        else generate_archive(root, patients, seed=SEED, workers=1)
    )
    by_uid = {f["sop_instance_uid"]: f for f in manifest["files"]}
    cases = []
    for patient in manifest["patients"][:patients]:
        plan = patient["plans"][0]
        uids = {plan["sop_instance_uid"], plan["structure_set"], *plan["doses"]}
        paths = [root / by_uid[u]["path"] for u in sorted(uids)]
        paths += sorted(
            root / f["path"]
            for f in manifest["files"]
            if f["series_instance_uid"] == plan["planning_ct_series"]
        )
        cases.append(
            Case(patient["patient_id"], patient["institution"], plan["sop_instance_uid"], tuple(paths))
        )
    return cases


def thinned(cases: list[Case], every: int = 4) -> dict[str, list[Path]]:
    """Each case with every ``every``-th CT slice only (plan, structure set and dose kept): fewer files to
    anonymise and validate where the number of slices does not matter."""
    out = {}
    for case in cases:
        ct = [p for p in case.files if p.parent.name.startswith("CT")]
        out[case.patient_id] = [p for p in case.files if p not in ct] + ct[::every]
    return out


_SHARED: list[Case] = []


def shared_cases() -> list[Case]:
    """:func:`synth_cases` written once per test session (shared by the audit and end-to-end tests)."""
    if not _SHARED:
        root = Path(tempfile.mkdtemp(prefix="rtbank-audit-synth-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _SHARED.extend(synth_cases(root))
    return list(_SHARED)


@dataclass
class AuditWorld:
    project: Project
    users: dict[str, User]
    cases: list[Case]
    plans: list[Instance] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)

    def access(self, role: str = "auditor") -> Access:
        return Access(self.users[role])

    def client(self, role: str) -> Client:
        client = Client()
        if role != "anonymous":
            client.force_login(self.users[role])
        return client


def build_world(cases: list[Case], files: dict[str, list[Path]] | None = None) -> AuditWorld:
    """Project AUD holding the cases' plans; an auditor (view, audit, forward), a viewer, an outsider."""
    codes = sorted({c.institution for c in cases})
    for code in codes:
        Institution.objects.get_or_create(code=code, defaults={"name": code})
    for case in cases:
        import_paths(list((files or {}).get(case.patient_id, case.files)), {"institution": case.institution})
    run_until_idle(KINDS)
    project = add_project(
        "AUD", name="Delineation audit", renew_by=NEXT_YEAR, institutions=codes, actor="test"
    )
    other = add_project("OTHER", name="Other", renew_by=NEXT_YEAR, institutions=codes, actor="test")
    plans = []
    for case in cases:
        plan = Instance.objects.get(sop_instance_uid=case.plan_uid, state="current")
        assign_plan(project, plan, actor="test")
        plans.append(plan)
    users = {
        name: User.objects.create_user(name, f"{name}@example.org", None)
        for name in ("auditor", "viewer", "outsider", "admin")
    }
    users["admin"].is_superuser = True
    users["admin"].save()
    grant(users["auditor"], project, ["view", "audit", "forward"], NEXT_YEAR, actor="test")
    grant(users["viewer"], project, ["view", "download", "export"], NEXT_YEAR, actor="test")
    grant(users["outsider"], other, ["view", "audit"], NEXT_YEAR, actor="test")
    return AuditWorld(project, users, cases, plans)


def add_nodes(world: AuditWorld, ports: list[int], host: str = "127.0.0.1") -> list[Node]:
    """One DICOM node per participant (destination and sender), on the project's allow-list."""
    nodes = []
    for i, port in enumerate(ports, start=1):
        node = Node.objects.create(
            name=f"CENTRE{i}", ae_title=f"CENTRE{i}", host=host, port=port, roles=["dest", "send"]
        )
        world.project.destinations.add(node)
        nodes.append(node)
    world.nodes = nodes
    return nodes


def drain(*, score: bool = True) -> None:
    """Run the work these tests need; ``score=False`` leaves the audits' QA rows pending."""
    run_until_idle(KINDS if score else [k for k in KINDS if k != "audit_qa"])


def clinical_patients() -> set[tuple[str, str]]:
    return set(Patient.objects.exclude(issuer__startswith="audit:").values_list("issuer", "patient_id"))


# --- what participants send back -------------------------------------------------------------------------
def structure_sets(folder: Path) -> list[Path]:
    """The structure sets among the files of a folder (any names, e.g. as storescp writes them)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [
        p
        for p in files
        if pydicom.dcmread(p, stop_before_pixels=True, force=True).get("Modality") == "RTSTRUCT"
    ]


def edited_structure_set(
    source: Path,
    target: Path,
    *,
    shift_mm: float = 0.0,
    scale: float = 1.0,
    rois: set[str] | None = None,
    drop: set[str] = frozenset(),
) -> Path:
    """What a participant's planning system writes after editing the received structure set.

    New SOP Instance and Series UIDs (a new object), references to the received CT kept; the contours of
    ``rois`` (default: all) moved by ``shift_mm`` along x and scaled by ``scale`` about their centre.
    """
    ds = pydicom.dcmread(source)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.StructureSetLabel = "RETURNED"
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    dropped = {n for n, name in names.items() if name in drop}
    ds.StructureSetROISequence = [r for r in ds.StructureSetROISequence if int(r.ROINumber) not in dropped]
    ds.ROIContourSequence = [c for c in ds.ROIContourSequence if int(c.ReferencedROINumber) not in dropped]
    ds.RTROIObservationsSequence = [
        o for o in ds.RTROIObservationsSequence if int(o.ReferencedROINumber) not in dropped
    ]
    for item in ds.ROIContourSequence:
        if rois is not None and names[int(item.ReferencedROINumber)] not in rois:
            continue
        for contour in item.get("ContourSequence", []):
            xyz = np.asarray([float(v) for v in contour.ContourData]).reshape(-1, 3)
            centre = xyz[:, :2].mean(axis=0)
            xyz[:, :2] = centre + (xyz[:, :2] - centre) * scale
            xyz[:, 0] += shift_mm
            contour.ContourData = [f"{v:.3f}" for v in xyz.ravel()]
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    return target


def make_audit(
    world: AuditWorld,
    participants: int | list[Any] = 2,
    *,
    contents: list[str] | None = None,
    options: list[str] | None = None,
    **kwargs: Any,
) -> Audit:
    """An audit of every case's plan, its copies made by the worker."""
    audit = services.create_audit(
        world.access(),
        world.project,
        name="Audit A",
        plans=[p.sop_instance_uid for p in world.plans],
        participants=participants,
        contents=contents or ALL_CONTENTS,
        options=OPTIONS if options is None else options,
        **kwargs,
    )
    services.request_copies(world.access(), audit)
    drain()
    return audit


def copy_structure_sets(audit: Audit) -> dict[str, list[Path]]:
    """Participant name → its copy's structure sets (one per case, ordered by original frame of reference)."""
    out = {}
    for p in audit.participants.order_by("copy_id"):
        files = [f for f in copy_files(p) if f.name.startswith("structure-set")]
        out[p.name] = sorted(files, key=lambda f: _original_frame(p, f))
    return out


def _original_frame(participant: Participant, path: Path) -> str:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    frame = str(ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID)
    return PseudonymousUid.objects.get(participant=participant, uid=frame).original_uid


def send_back(
    paths: list[Path], calling_ae: str = "CENTRE1", institution: str = "", *, score: bool = True
) -> None:
    """As if sent over DICOM by a participant's node (same spool and worker path as C-STORE)."""
    info = {"via": "dicom", "calling_ae": calling_ae, "called_ae": "RTBANK"}
    if institution:
        info["institution"] = institution
    import_paths(paths, info)
    drain(score=score)


def participant(world: AuditWorld, name: str) -> Participant:
    return Participant.objects.get(audit__project=world.project, name=name)


def dataset_of(path: Path) -> Dataset:
    return pydicom.dcmread(path, force=True)


def dump(value: Any) -> str:
    return json.dumps(value, default=str, indent=1)

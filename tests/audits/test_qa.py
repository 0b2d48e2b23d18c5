"""QA of returns: contour agreement against the reference and the others' consensus, DVH metrics of
returned plans, the report page and CSV."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from rtbank.audits.copies import copy_files
from rtbank.audits.models import Against, PlanMetric, RoiAgreement
from rtbank.audits.qa import compute
from tests.audits.support import AuditWorld, copy_structure_sets, edited_structure_set, make_audit, send_back

SHIFT_MM = 3.0
SCALE = 1.1


def test_returned_contours_are_scored_per_participant_and_roi(world: AuditWorld, scratch: Path) -> None:
    """observer 1 returns the contours unchanged, observer 2 moved by 3 mm, observer 3 grown by 10 %."""
    audit = make_audit(world, 3, contents=["structure_set"])
    copies = copy_structure_sets(audit)
    edits = {"observer 1": {}, "observer 2": {"shift_mm": SHIFT_MM}, "observer 3": {"scale": SCALE}}
    returned = [
        edited_structure_set(path, scratch / name / f"{i}.dcm", **edits[name])
        for name, files in copies.items()
        for i, path in enumerate(files)
    ]
    started = time.process_time()
    send_back(returned, calling_ae="CENTRE1")
    scoring_s = time.process_time() - started
    rows = list(
        RoiAgreement.objects.filter(participant__audit=audit).select_related("participant", "dataset")
    )
    reference = [r for r in rows if r.against == Against.REFERENCE and r.dice is not None]
    by = {name: [r for r in reference if r.participant.name == name] for name in edits}
    rois_per_case = {r.dataset.label: set() for r in reference}
    for r in reference:
        rois_per_case[r.dataset.label].add(r.standard_name)
    assert len(rois_per_case) == 2 and all(len(v) >= 5 for v in rois_per_case.values())
    for name in edits:  # every participant, every ROI of every case
        assert {(r.dataset.label, r.standard_name) for r in by[name]} == {
            (case, roi) for case, names in rois_per_case.items() for roi in names
        }
    for r in by["observer 1"]:
        assert (r.dice, r.hausdorff95_mm, r.mean_surface_distance_mm, r.volume_ratio) == (1.0, 0.0, 0.0, 1.0)
    for r in by["observer 2"]:
        assert r.dice < 1.0, r.standard_name
        # no surface point moved further than the shift (within a voxel); the surface facing it moved by it
        assert 0 < r.mean_surface_distance_mm < r.hausdorff95_mm <= SHIFT_MM + r.spacing_mm, r.standard_name
        assert r.volume_ratio == pytest.approx(1.0, abs=1e-6)
    for r in by["observer 3"]:
        assert r.dice < 1.0 and r.volume_ratio == pytest.approx(SCALE**2, rel=0.03), r.standard_name
    consensus = [r for r in rows if r.against == Against.CONSENSUS]
    assert {r.participant.name for r in consensus} == set(edits)
    assert all(r.compared_with == 2 and r.dice is not None for r in consensus)
    assert scoring_s < 120, f"scoring took {scoring_s:.0f} s of CPU"


def test_the_report_and_csv_show_the_scores_and_stay_inert(world: AuditWorld, scratch: Path) -> None:
    audit = make_audit(world, 1, contents=["structure_set"])
    (path,) = copy_structure_sets(audit)["observer 1"][:1]
    ds = pydicom.dcmread(path)
    drawn = next(int(c.ReferencedROINumber) for c in ds.ROIContourSequence if c.get("ContourSequence"))
    roi = next(r for r in ds.StructureSetROISequence if int(r.ROINumber) == drawn)
    roi.ROIName = '=HYPERLINK("http://evil.example","x")'
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    hostile = scratch / "hostile.dcm"
    ds.save_as(hostile)
    send_back([hostile])
    client = world.client("auditor")
    page = client.get(f"/projects/AUD/audits/{audit.pk}/report/")
    assert page.status_code == 200 and b"1.000" in page.content
    assert b'=HYPERLINK("http' not in page.content or b"&quot;" in page.content
    response = client.get(f"/projects/AUD/audits/{audit.pk}/report.csv")
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows and all(not v.startswith(("=", "+", "@")) for row in rows for v in row.values() if v)
    assert any(row["roi_name"].startswith("'=HYPERLINK") for row in rows)
    assert {row["dice"] for row in rows if row["against"] == "reference" and row["dice"]} == {"1.0"}


def test_returned_plans_get_the_protocols_dvh_metrics_beside_the_cases_own(
    world: AuditWorld, scratch: Path
) -> None:
    """The copy's plan and dose sent back unchanged give the case's values; a dose 5 % higher, 5 % more."""
    audit = make_audit(world, 2, contents=["structure_set", "plan", "dose"])
    for copy_id, factor in (("1", 1.0), ("2", 1.05)):
        files = copy_files(audit.participants.get(copy_id=copy_id))
        plan = next(f for f in files if f.name.startswith("plan"))
        plan_ds = pydicom.dcmread(plan, stop_before_pixels=True)
        # The copy holds every case's plan and dose: take the dose of this plan (some vendors' doses name
        # the plan's structure set instead of the plan).
        ours = {plan_ds.SOPInstanceUID, plan_ds.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID}
        doses = [pydicom.dcmread(f) for f in files if f.name.startswith("dose")]
        ds = next(
            d
            for d in doses
            if ours
            & {
                r.ReferencedSOPInstanceUID
                for key in ("ReferencedRTPlanSequence", "ReferencedStructureSetSequence")
                for r in d.get(key, [])
            }
        )
        ds.DoseGridScaling = float(ds.DoseGridScaling) * factor
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        target = scratch / copy_id / "dose.dcm"
        target.parent.mkdir()
        ds.save_as(target)
        send_back([plan, target], calling_ae=f"CENTRE{copy_id}", score=False)
    results = compute(audit)
    assert results.metrics and not [m.note for m in results.metrics if m.note]
    dmean = [m for m in results.metrics if m.metric == "Dmean" and m.reference_value]
    assert {m.participant_id for m in dmean} == set(audit.participants.values_list("pk", flat=True))
    for m in dmean:
        factor = 1.0 if m.participant_id == audit.participants.get(copy_id="1").pk else 1.05
        assert m.value == pytest.approx(m.reference_value * factor, rel=1e-3), (m.standard_name, m.metric)
    assert PlanMetric.objects.count() == 0  # compute() only computes; the worker stores

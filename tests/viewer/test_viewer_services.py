"""What the viewer endpoints send: planes equal to the stored images, geometry equal to the DICOM, doses."""

from __future__ import annotations

import copy
import gzip
import json

import numpy as np
import pydicom
import pytest
from django.test import Client
from pydicom.uid import RLELossless

from rtbank.catalog.models import Instance
from rtbank.dicom.contours import StructureSet
from rtbank.dicom.dosegrid import DoseGrid
from rtbank.dicom.imaging import EncodedPlane, decode_plane, modality_pixels
from rtbank.viewer import loading, services
from tests.viewer import synthetic
from tests.viewer.conftest import ViewerWorld
from tests.web.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def plane_of(response) -> np.ndarray:
    head = json.loads(response["X-Rtbank-Plane"])
    body = response.content
    if response.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    encoded = EncodedPlane(body, head["rows"], head["columns"], head["scale"], head["offset"])
    return decode_plane(encoded), head


def ct_files_by_z(world: ViewerWorld) -> dict[float, pydicom.Dataset]:
    out = {}
    for path in world.head_neck.files:
        ds = pydicom.dcmread(path)
        if ds.get("SeriesInstanceUID") == world.head_neck.ct_series_uid:
            out[round(float(ds.ImagePositionPatient[2]), 2)] = ds
    return out


def open_viewer(client: Client, uid: str) -> tuple[dict, dict]:
    return client.get(f"/viewer/{uid}/manifest.json").json(), {}


def test_the_manifest_describes_the_plan_dataset(viewer_world: ViewerWorld) -> None:
    client = client_for(viewer_world.users["images"])
    manifest, _ = open_viewer(client, viewer_world.plan.sop_instance_uid)
    files = ct_files_by_z(viewer_world)
    assert manifest["primary"]["uid"] == viewer_world.head_neck.ct_series_uid
    assert manifest["primary"]["z_mm"] == sorted(files)  # ordered by position
    assert manifest["views"]["axial"]["count"] == len(files)
    ss = pydicom.dcmread(viewer_world.head_neck.structure_set_file)
    colours = {
        int(c.ReferencedROINumber): "#" + "".join(f"{int(v):02x}" for v in c.ROIDisplayColor)
        for c in ss.ROIContourSequence
    }
    shown = {r["number"]: r for r in manifest["rois"]}
    assert {n: shown[n]["color"] for n in colours} == colours
    assert len(shown) == len(ss.StructureSetROISequence)
    assert all(shown[n]["empty"] for n in set(shown) - set(colours))  # ROIs without contours: listed, marked
    dose = DoseGrid.from_dataset(pydicom.dcmread(viewer_world.head_neck.dose_file))
    assert manifest["dose"]["available"] and manifest["dose"]["max_gy"] == pytest.approx(
        dose.max_gy, abs=1e-3
    )
    assert manifest["dose"]["prescription_gy"] == viewer_world.head_neck.prescription_gy
    others = {s["modality"]: s for s in manifest["others"]}
    assert others["MR"]["registered"] and not others["MR"]["same_frame"]
    assert others["PT"]["registered"]  # through the registration of its diagnostic CT's frame


def test_axial_planes_are_the_stored_slices_cold_and_warm(viewer_world: ViewerWorld) -> None:
    client = client_for(viewer_world.users["images"])
    uid, ct = viewer_world.plan.sop_instance_uid, viewer_world.head_neck.ct_series_uid
    manifest, _ = open_viewer(client, uid)
    files = ct_files_by_z(viewer_world)
    for k in (0, 17, len(files) - 1):
        expected = modality_pixels(files[manifest["primary"]["z_mm"][k]])
        cold, head = plane_of(client.get(f"/viewer/{uid}/image/{ct}/axial/{k}", HTTP_ACCEPT_ENCODING="gzip"))
        assert head["scale"] == 1.0 and np.array_equal(cold, expected)  # HU exactly, one file read
    loading.volume(services.primary(_dataset(viewer_world)))  # assembled: later planes come from the volume
    services.PLANES.clear()
    for k in (0, 17):
        warm, _ = plane_of(client.get(f"/viewer/{uid}/image/{ct}/axial/{k}"))
        assert np.array_equal(warm, modality_pixels(files[manifest["primary"]["z_mm"][k]]))


def test_reconstructions_and_registered_planes_come_from_the_volumes(viewer_world: ViewerWorld) -> None:
    client = client_for(viewer_world.users["images"])
    uid, ct = viewer_world.plan.sop_instance_uid, viewer_world.head_neck.ct_series_uid
    manifest, _ = open_viewer(client, uid)
    files = ct_files_by_z(viewer_world)
    z = manifest["primary"]["z_mm"]
    column = manifest["views"]["sagittal"]["count"] // 2
    sagittal, _ = plane_of(client.get(f"/viewer/{uid}/image/{ct}/sagittal/{column}"))
    plane = manifest["views"]["sagittal"]["plane"]
    assert sagittal.shape == (plane["v"]["count"], plane["u"]["count"])
    # The top row is the most superior slice; the column is the image column through the plane.
    assert np.array_equal(sagittal[0], modality_pixels(files[z[-1]])[:, column])
    assert np.array_equal(sagittal[-1], modality_pixels(files[z[0]])[:, column])
    mr = next(s for s in manifest["others"] if s["modality"] == "MR")
    registered, _ = plane_of(client.get(f"/viewer/{uid}/image/{mr['uid']}/axial/{len(z) // 2}"))
    assert registered.shape == (manifest["primary"]["y"]["count"], manifest["primary"]["x"]["count"])
    assert np.isfinite(registered).mean() > 0.3 and np.nanmax(registered) > 0  # MR anatomy on the CT plane


def test_contours_and_isodose_lines_are_where_the_dicom_puts_them(viewer_world: ViewerWorld) -> None:
    client = client_for(viewer_world.users["images"])
    uid = viewer_world.plan.sop_instance_uid
    manifest, _ = open_viewer(client, uid)
    contours = StructureSet.from_dataset(pydicom.dcmread(viewer_world.head_neck.structure_set_file))
    ptv = next(r for r in contours.rois if r.interpreted_type == "PTV" and r.planes)
    z = np.array(manifest["primary"]["z_mm"])
    k = int(np.argmin(np.abs(z - ptv.planes[len(ptv.planes) // 2].z_mm)))
    dose = DoseGrid.from_dataset(pydicom.dcmread(viewer_world.head_neck.dose_file))
    level = round(0.95 * viewer_world.head_neck.prescription_gy, 4)
    geometry = client.get(f"/viewer/{uid}/geometry/axial/{k}?levels={level},1000").json()
    assert geometry["plane"]["fixed"]["mm"] == pytest.approx(z[k])
    (lines,) = [r["lines"] for r in geometry["rois"] if r["number"] == ptv.number]
    plane = next(p for p in ptv.planes if abs(p.z_mm - z[k]) < 0.01)
    expected = sorted(np.round(np.vstack([p, p[:1]]), 2).ravel().tolist() for p in plane.polygons)
    assert sorted(lines) == expected
    by_level = {i["level_gy"]: i["lines"] for i in geometry["isodose"]}
    assert by_level[1000.0] == [] and by_level[level]
    for flat in by_level[level]:
        xy = np.array(flat).reshape(-1, 2)
        values = dose.dose_at(np.column_stack([xy, np.full(len(xy), z[k])]))
        assert np.allclose(values, level, atol=0.02 * level)  # on the line the dose is the level
    sagittal = client.get(
        f"/viewer/{uid}/geometry/sagittal/{manifest['views']['sagittal']['count'] // 2}"
    ).json()
    assert sagittal["plane"]["u"]["axis"] == "y" and sagittal["rois"]
    value = client.get(f"/viewer/{uid}/dose-at", {"x": 0.0, "y": 0.0, "z": float(z[k])}).json()["dose_gy"]
    assert value == pytest.approx(float(dose.dose_at(np.array([0.0, 0.0, z[k]]))[0]), abs=1e-3)
    wash, head = plane_of(client.get(f"/viewer/{uid}/dose/axial/{k}"))
    row, col = head["row0"] + wash.shape[0] // 2, head["column0"] + wash.shape[1] // 2
    point = [
        manifest["primary"]["x"]["start_mm"] + col * manifest["primary"]["x"]["step_mm"],
        manifest["primary"]["y"]["start_mm"] + row * manifest["primary"]["y"]["step_mm"],
        z[k],
    ]
    assert wash[wash.shape[0] // 2, wash.shape[1] // 2] == pytest.approx(
        dose.dose_at(np.array(point))[0], abs=0.01
    )
    assert client.get(f"/viewer/{uid}/geometry/axial/{k}?levels=-3").status_code == 400
    assert client.get(f"/viewer/{uid}/geometry/axial/{len(z)}").status_code == 400


def test_the_dvh_panel_is_computed_once_and_matches_the_engine(viewer_world: ViewerWorld) -> None:
    from rtbank.dicom.dvh import dvhs_for_structure_set
    from rtbank.viewer import dvh

    client = client_for(viewer_world.users["images"])
    uid = viewer_world.plan.sop_instance_uid
    body = client.get(f"/viewer/{uid}/dvh.json").json()
    for _ in range(3):  # bounded: wait for the calculation under way, then ask again
        if body["status"] != "computing":
            break
        dvh.wait_for_running(timeout_s=120)
        body = client.get(f"/viewer/{uid}/dvh.json").json()
    assert body["status"] == "ok" and body["rois"]
    contours = StructureSet.from_dataset(pydicom.dcmread(viewer_world.head_neck.structure_set_file))
    grid = DoseGrid.from_dataset(pydicom.dcmread(viewer_world.head_neck.dose_file))
    ptv = next(r for r in contours.rois if r.interpreted_type == "PTV" and r.planes)
    reference = dvhs_for_structure_set(contours, grid, [ptv])[0].histogram.curve()
    shown = next(r for r in body["rois"] if r["number"] == ptv.number)
    assert shown["step_gy"] == reference.dose_step_gy
    assert np.allclose(shown["cumulative_cc"], reference.cumulative_cc, atol=1e-3)


def test_compressed_planning_images_display_like_uncompressed_ones(
    viewer_world: ViewerWorld, tmp_path
) -> None:
    """An RLE copy of the planning CT (as another archive might send it) shows the same values."""
    from rtbank.projects.services import add_project, assign_patient, grant

    files = ct_files_by_z(viewer_world)
    folder = tmp_path / "rle"
    folder.mkdir()
    new_series = pydicom.uid.generate_uid()
    for n, ds in enumerate(files.values()):
        copy_ = copy.deepcopy(ds)
        copy_.PatientID, copy_.SeriesInstanceUID = "RLE-COPY", new_series
        copy_.SOPInstanceUID = pydicom.uid.generate_uid()
        copy_.compress(RLELossless)
        copy_.save_as(folder / f"{n}.dcm")
    synthetic.load(sorted(folder.iterdir()))
    assert Instance.objects.filter(series__uid=new_series, transfer_syntax_uid=RLELossless).count() == len(
        files
    )
    project = add_project("C", name="Compressed", renew_by=viewer_world.projects["A"].renew_by, actor="test")
    assign_patient(
        project, Instance.objects.filter(series__uid=new_series).first().series.study.patient, actor="t"
    )
    grant(viewer_world.users["images"], project, ["images"], project.renew_by, actor="test")
    client = client_for(viewer_world.users["images"])
    manifest = client.get(f"/viewer/{new_series}/manifest.json").json()
    z = manifest["primary"]["z_mm"]
    for k in (0, len(z) // 2):
        shown, _ = plane_of(client.get(f"/viewer/{new_series}/image/{new_series}/axial/{k}"))
        assert np.array_equal(shown, modality_pixels(files[z[k]]))


def _dataset(world: ViewerWorld):
    from rtbank.projects.access import Access
    from rtbank.viewer.dataset import resolve

    acc = Access(world.users["images"])
    return resolve(acc, world.plan, "plan", world.plan.sop_instance_uid, [world.projects["A"]])


def test_roi_names_show_the_projects_standard_name_where_a_rule_maps_them(viewer_world: ViewerWorld) -> None:
    from rtbank.analysis import mapping

    mapping.add_rule(viewer_world.projects["A"], "PTV_6?", "PTV_High", actor="test")
    client = client_for(viewer_world.users["images"])
    rois = {
        r["name"]: r
        for r in client.get(f"/viewer/{viewer_world.plan.sop_instance_uid}/manifest.json").json()["rois"]
    }
    assert rois["PTV_66"]["standard"] == "PTV_High"
    assert rois["GTV"]["standard"] == ""  # no rule: the name as received
    # The rule is project A's: B's viewer of the same patient's spine plan does not apply it.
    b_rois = (
        client_for(viewer_world.users["b_images"])
        .get(f"/viewer/{viewer_world.other_plan.sop_instance_uid}/manifest.json")
        .json()["rois"]
    )
    assert all(r["standard"] != "PTV_High" for r in b_rois)


def test_a_plan_whose_images_have_not_arrived_still_shows_structures_dose_facts_and_dvhs(
    viewer_world: ViewerWorld,
) -> None:
    Instance.objects.filter(series__uid=viewer_world.head_neck.ct_series_uid).delete()
    client = client_for(viewer_world.users["images"])
    uid = viewer_world.plan.sop_instance_uid
    manifest = client.get(f"/viewer/{uid}/manifest.json").json()
    assert manifest["primary"] is None and "not stored" in manifest["problem"]
    assert manifest["rois"] and manifest["root"]["label"] == viewer_world.head_neck.label
    ct = viewer_world.head_neck.ct_series_uid
    for url in (
        f"/viewer/{uid}/image/{ct}/axial/0",
        f"/viewer/{uid}/geometry/axial/0",
        f"/viewer/{uid}/dose/axial/0",
    ):
        response = client.get(url)
        assert response.status_code in (400, 404) and "error" in response.json()
    assert client.get(f"/viewer/{uid}/dvh.json").json()["status"] in ("computing", "ok")


def test_the_dvh_panel_uses_the_stored_dvhs_when_they_fit(viewer_world: ViewerWorld) -> None:
    from rtbank.analysis.models import PlanDvh
    from rtbank.work.worker import run_until_idle

    run_until_idle(["dvh"])  # the analysis area's DVH stage, as the worker runs it
    stored = PlanDvh.objects.get(plan=viewer_world.plan, state="ok")
    client = client_for(viewer_world.users["images"])
    body = client.get(f"/viewer/{viewer_world.plan.sop_instance_uid}/dvh.json").json()
    assert body["status"] == "ok" and body["source"] == "stored"
    by_number = {r["number"]: r for r in body["rois"]}
    for row in stored.rois.all():
        assert by_number[row.roi_number]["cumulative_cc"] == row.cumulative_cc()

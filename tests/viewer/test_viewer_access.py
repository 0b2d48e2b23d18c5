"""Who may use the viewer: ``images`` on a project holding the data; every endpoint checked and logged."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from rtbank.catalog.models import Instance, StructureSet
from rtbank.projects.models import AccessLog
from rtbank.projects.services import revoke
from tests.viewer.conftest import ViewerWorld
from tests.web.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def endpoints(world: ViewerWorld) -> list[str]:
    """Every viewer URL of A's plan: page, manifest, planning CT and registered MR slices, reconstructions,
    geometry, dose plane, dose value and DVHs."""
    uid = world.plan.sop_instance_uid
    ct = world.head_neck.ct_series_uid
    mr = (
        Instance.objects.filter(series__modality="MR", in_bundles__plan=world.plan)
        .values_list("series__uid", flat=True)
        .first()
    )
    base = f"/viewer/{uid}"
    return [
        base,
        base + "/",
        f"{base}/manifest.json",
        f"{base}/image/{ct}/axial/3",
        f"{base}/image/{ct}/sagittal/60",
        f"{base}/image/{mr}/axial/3",
        f"{base}/geometry/axial/3?levels=60",
        f"{base}/geometry/coronal/50",
        f"{base}/dose/axial/3",
        f"{base}/dose-at?x=0&y=0&z=0",
        f"{base}/dvh.json",
    ]


def test_people_with_images_open_every_endpoint(viewer_world: ViewerWorld) -> None:
    client = client_for(viewer_world.users["images"])
    for url in endpoints(viewer_world):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.content[:200])


def test_members_without_images_get_403_and_outsiders_404_on_every_endpoint(
    viewer_world: ViewerWorld,
) -> None:
    urls = endpoints(viewer_world)
    for role, status in (("looker", 403), ("outsider", 404), ("b_images", 404)):
        client = client_for(viewer_world.users[role])
        for url in urls:
            assert client.get(url).status_code == status, (role, url)
        refused = AccessLog.objects.filter(user=viewer_world.users[role]).exclude(outcome="allowed")
        assert refused.count() == len(urls)  # every refusal logged, none as allowed
        assert {"denied" if status == 403 else "not_found"} == set(refused.values_list("outcome", flat=True))
    anonymous = Client().get(urls[0])
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")


def test_images_on_one_project_do_not_open_what_only_another_project_holds(viewer_world: ViewerWorld) -> None:
    """Same patient, two projects: A's viewer user reaches nothing of B's spine plan, by any UID or route."""
    client = client_for(viewer_world.users["images"])
    spine = viewer_world.other_plan
    spine_ss = StructureSet.objects.get(
        instance__in_bundles__plan=spine, instance__in_bundles__role="structure_set"
    )
    for uid in (spine.sop_instance_uid, spine_ss.instance.sop_instance_uid, viewer_world.spine.ct_series_uid):
        assert client.get(f"/viewer/{uid}").status_code == 404
        assert client.get(f"/viewer/{uid}/manifest.json").status_code == 404
    # Through A's own plan: the spine CT is not part of the dataset, whatever the URL says.
    base = f"/viewer/{viewer_world.plan.sop_instance_uid}"
    response = client.get(f"{base}/image/{viewer_world.spine.ct_series_uid}/axial/0")
    assert response.status_code == 404
    manifest = client.get(f"{base}/manifest.json").json()
    shown = {manifest["primary"]["uid"], *(s["uid"] for s in manifest["others"])}
    assert viewer_world.spine.ct_series_uid not in shown
    # And B's user, who holds images on B, sees the spine plan but not A's.
    b_client = client_for(viewer_world.users["b_images"])
    assert b_client.get(f"/viewer/{spine.sop_instance_uid}/manifest.json").status_code == 200
    assert b_client.get(f"{base}/manifest.json").status_code == 404


def test_a_viewer_session_logs_each_kind_of_read_once_and_every_refusal(viewer_world: ViewerWorld) -> None:
    user = viewer_world.users["images"]
    client = client_for(user)
    uid = viewer_world.plan.sop_instance_uid
    page = client.get(f"/viewer/{uid}")
    token = re.search(r'data-session="([^"]+)"', page.content.decode()).group(1)
    ct = viewer_world.head_neck.ct_series_uid
    for k in range(6):
        assert (
            client.get(f"/viewer/{uid}/image/{ct}/axial/{k}", HTTP_X_VIEWER_SESSION=token).status_code == 200
        )
        assert client.get(f"/viewer/{uid}/geometry/axial/{k}", HTTP_X_VIEWER_SESSION=token).status_code == 200
    rows = list(AccessLog.objects.filter(user=user).order_by("id").values_list("action", "outcome"))
    assert rows == [("viewer_open", "allowed"), ("viewer_slice", "allowed"), ("viewer_geometry", "allowed")]
    # Without the token (or with someone else's) every request is a row.
    for k in range(3):
        client.get(f"/viewer/{uid}/image/{ct}/axial/{k}")
    other = client_for(viewer_world.users["b_images"])
    other.get(f"/viewer/{uid}/image/{ct}/axial/0", HTTP_X_VIEWER_SESSION=token)
    assert AccessLog.objects.filter(user=user, action="viewer_slice").count() == 4
    assert AccessLog.objects.filter(user=viewer_world.users["b_images"], outcome="not_found").count() == 1
    # A revoked grant stops the next slice of the same session at once, and the refusal is logged.
    revoke(user, viewer_world.projects["A"], ["images"], actor="test")
    for _ in range(2):
        response = client.get(f"/viewer/{uid}/image/{ct}/axial/1", HTTP_X_VIEWER_SESSION=token)
        assert response.status_code == 403
    assert AccessLog.objects.filter(user=user, action="viewer_slice", outcome="denied").count() == 2


def test_names_reach_the_page_only_as_text(viewer_world: ViewerWorld) -> None:
    client = client_for(viewer_world.users["images"])
    uid = viewer_world.plan.sop_instance_uid
    html = client.get(f"/viewer/{uid}").content.decode()
    assert "onerror" not in html  # ROI names are not in the HTML at all; the script sets them as text
    manifest = client.get(f"/viewer/{uid}/manifest.json")
    assert manifest["Content-Type"] == "application/json"
    names = [r["name"] for r in manifest.json()["rois"]]
    assert '<img src=x onerror="window.__xss=1">' in names and viewer_world.hostile_roi_was not in names


def test_the_plan_and_subject_pages_link_to_the_viewer_only_with_images(viewer_world: ViewerWorld) -> None:
    uid = viewer_world.plan.sop_instance_uid
    subject = viewer_world.projects["A"].subjects.get().subject_id
    with_images = client_for(viewer_world.users["images"])
    without = client_for(viewer_world.users["looker"])
    for url in (f"/projects/A/plans/{uid}/", f"/projects/A/subjects/{subject}/"):
        assert f'href="/viewer/{uid}"' in with_images.get(url).content.decode()
        page = without.get(url)
        assert page.status_code == 200 and "/viewer/" not in page.content.decode()
    subject_page = with_images.get(f"/projects/A/subjects/{subject}/").content.decode()
    assert f'href="/viewer/{viewer_world.head_neck.ct_series_uid}"' in subject_page
    assert viewer_world.spine.uid not in subject_page  # B's plan of the same patient is not offered


def registration_into_b(world: ViewerWorld, folder) -> str:
    """A registration of A's MR onto B's spine CT (so it, and the spine CT, belong to B's plan bundle)."""
    import pydicom
    from pydicom.uid import generate_uid

    from tests.viewer import synthetic

    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in world.head_neck.files]
    mr_frame = next(str(h.FrameOfReferenceUID) for h in headers if h.Modality == "MR")
    hn_frame = next(
        str(h.FrameOfReferenceUID)
        for h in headers
        if h.get("SeriesInstanceUID") == world.head_neck.ct_series_uid
    )
    ds = next(
        h
        for h in headers
        if h.Modality == "REG" and mr_frame in {i.FrameOfReferenceUID for i in h.RegistrationSequence}
    )
    spine_ct = [
        h
        for h in (pydicom.dcmread(p, stop_before_pixels=True) for p in world.spine.files)
        if h.Modality == "CT"
    ]
    spine_frame = str(spine_ct[0].FrameOfReferenceUID)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = spine_frame

    def refs() -> list:
        out = []
        for image in spine_ct:
            item = pydicom.Dataset()
            item.ReferencedSOPClassUID = image.SOPClassUID
            item.ReferencedSOPInstanceUID = image.SOPInstanceUID
            out.append(item)
        return out

    for item in ds.RegistrationSequence:
        if item.FrameOfReferenceUID == hn_frame:
            item.FrameOfReferenceUID = spine_frame
            item.ReferencedImageSequence = refs()
    series_items = list(ds.get("ReferencedSeriesSequence", []))
    for study in ds.get("StudiesContainingOtherReferencedInstancesSequence", []):
        series_items += list(study.get("ReferencedSeriesSequence", []))
    for item in series_items:
        if item.SeriesInstanceUID == world.head_neck.ct_series_uid:
            item.SeriesInstanceUID = world.spine.ct_series_uid
            item.ReferencedInstanceSequence = refs()
    folder.mkdir(parents=True, exist_ok=True)
    ds.save_as(folder / "reg-mr-to-spine.dcm")
    synthetic.load([folder / "reg-mr-to-spine.dcm"])
    return str(ds.SOPInstanceUID)


def test_objects_found_through_references_stay_within_the_users_projects(
    viewer_world: ViewerWorld, tmp_path
) -> None:
    """A's MR is also registered to B's spine CT: opening the MR series from A must not bring the spine CT."""
    from rtbank.catalog.models import PlanBundleMember

    reg_uid = registration_into_b(viewer_world, tmp_path / "reg")
    in_b = PlanBundleMember.objects.filter(plan=viewer_world.other_plan)
    assert in_b.filter(member__sop_instance_uid=reg_uid).exists()  # the registration is B's
    assert not PlanBundleMember.objects.filter(
        plan=viewer_world.plan, member__sop_instance_uid=reg_uid
    ).exists()
    mr = (
        Instance.objects.filter(series__modality="MR", in_bundles__plan=viewer_world.plan)
        .values_list("series__uid", flat=True)
        .first()
    )
    client = client_for(viewer_world.users["images"])
    manifest = client.get(f"/viewer/{mr}/manifest.json").json()
    shown = {manifest["primary"]["uid"], *(s["uid"] for s in manifest["others"])}
    assert mr in shown and viewer_world.head_neck.ct_series_uid in shown  # A's registration still applies
    assert viewer_world.spine.ct_series_uid not in shown
    assert client.get(f"/viewer/{mr}/image/{viewer_world.spine.ct_series_uid}/axial/0").status_code == 404
    # B's user sees the spine CT with the MR (through B's registration), but not A's planning CT.
    b_manifest = (
        client_for(viewer_world.users["b_images"])
        .get(f"/viewer/{viewer_world.spine.ct_series_uid}/manifest.json")
        .json()
    )
    b_shown = {s["uid"] for s in b_manifest["others"]}
    assert mr in b_shown and viewer_world.head_neck.ct_series_uid not in b_shown

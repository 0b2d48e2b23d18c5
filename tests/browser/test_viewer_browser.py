"""The plan viewer in headless Chromium: scroll, toggle, and look at the pixels of the screenshots.

Expected positions come from the DICOM files and the display convention (docs/viewer.md), not from the
page's own code: a contour drawn in the wrong place, or with the wrong flip, misses the expected pixels.
Screenshots are kept in the test's artifacts folder.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from rtbank.dicom.contours import Roi, StructureSet
from rtbank.dicom.dosegrid import DoseGrid
from tests.viewer.conftest import ViewerWorld, fast_passwords, fresh_viewer_caches, viewer_world  # noqa: F401
from tests.viewer.pngread import read_png
from tests.viewer.synthetic import HOSTILE_ROI

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000
RED, ORANGE = (255, 0, 0), (255, 140, 0)  # the 100 % and 95 % isodose lines (ranks 1 and 2 of six)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test still makes are
    # synchronous and safe (the live server answers from its own thread).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


class Screen:
    """Canvas geometry as the viewer draws it (docs/viewer.md): the plane fitted, centred, zoom 1, no pan."""

    def __init__(self, plane: dict, width: float, height: float) -> None:
        self.plane, self.width, self.height = plane, width, height
        u, v = plane["u"], plane["v"]
        fit = min(width / (u["count"] * abs(u["step_mm"])), height / (v["count"] * abs(v["step_mm"])))
        self.sx, self.sy = fit * abs(u["step_mm"]), fit * abs(v["step_mm"])
        self.ox = (width - u["count"] * self.sx) / 2
        self.oy = (height - v["count"] * self.sy) / 2

    def to_canvas(self, u_mm: np.ndarray, v_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, v = self.plane["u"], self.plane["v"]
        column = (u_mm - u["start_mm"]) / u["step_mm"] + 0.5
        row = (v_mm - v["start_mm"]) / v["step_mm"] + 0.5
        return self.ox + column * self.sx, self.oy + row * self.sy

    def to_mm(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, v = self.plane["u"], self.plane["v"]
        return (
            u["start_mm"] + ((x - self.ox) / self.sx - 0.5) * u["step_mm"],
            v["start_mm"] + ((y - self.oy) / self.sy - 0.5) * v["step_mm"],
        )


def near_colour(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> np.ndarray:
    return np.all(np.abs(pixels[..., :3].astype(int) - np.array(colour)) <= tolerance, axis=-1)


def found_near(mask: np.ndarray, xs: np.ndarray, ys: np.ndarray, radius: int = 3) -> float:
    """Fraction of points with a masked pixel within ``radius``."""
    hits = 0
    for x, y in zip(np.rint(xs).astype(int), np.rint(ys).astype(int), strict=True):
        window = mask[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
        hits += bool(window.any())
    return hits / len(xs)


def shot(page: Page, selector: str, folder: Path, name: str) -> np.ndarray:
    png = page.locator(selector).screenshot()
    (folder / f"{name}.png").write_bytes(png)
    return read_png(png)


def wait_attr(page: Page, selector: str, attribute: str, value: str) -> None:
    try:
        page.wait_for_selector(f'{selector}[data-{attribute}="{value}"]', timeout=TIMEOUT_MS)
    except PlaywrightTimeout as exc:
        status = page.locator("#viewer-status").text_content()
        state = page.evaluate(
            "JSON.stringify([...document.querySelectorAll('figure.vw')].map(f => ({...f.dataset})))"
        )
        raise AssertionError(
            f"waiting for {selector} {attribute}={value}: status {status!r}, views {state}"
        ) from exc


def target_ptv(world: ViewerWorld) -> tuple[Roi, tuple[int, int, int]]:
    contours = StructureSet.from_dataset(pydicom.dcmread(world.head_neck.structure_set_file))
    prescription = str(int(world.head_neck.prescription_gy))
    ptvs = [r for r in contours.rois if r.interpreted_type == "PTV" and r.planes]
    roi = next((r for r in ptvs if prescription in r.name), ptvs[0])
    return roi, tuple(int(v) for v in roi.color)  # type: ignore[return-value]


def test_the_viewer_shows_a_plan_scrolls_and_toggles_with_pixels_where_they_belong(
    viewer_world: ViewerWorld,  # noqa: F811 - the fixture imported above
    live_server,
    browser: Browser,
    artifacts_dir: Path,
) -> None:
    client = Client()
    client.force_login(viewer_world.users["images"])
    uid = viewer_world.plan.sop_instance_uid
    manifest = client.get(f"/viewer/{uid}/manifest.json").json()
    roi, colour = target_ptv(viewer_world)
    z = np.array(manifest["primary"]["z_mm"])
    middle = roi.planes[len(roi.planes) // 2]
    k = int(np.argmin(np.abs(z - middle.z_mm)))
    dose = DoseGrid.from_dataset(pydicom.dcmread(viewer_world.head_neck.dose_file))

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    problems: list[str] = []
    # Errors of the page (CSP violations included). Failed requests are logged by Chromium too; the viewer
    # retries a 5xx once (an in-memory test database can refuse a concurrent write), so those are checked
    # below: every one must have been answered on the retry.
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.text} {m.location}")
            if m.type == "error" and "Failed to load resource" not in m.text
            else None
        ),
    )
    answers: dict[str, list[int]] = {}
    page.on("response", lambda r: answers.setdefault(r.url, []).append(r.status))
    page.on("pageerror", lambda e: problems.append(str(e)))

    started = time.monotonic()
    page.goto(f"{live_server.url}/viewer/{uid}")
    page.wait_for_selector("#viewer[data-ready=true]", timeout=TIMEOUT_MS)
    middle_index = manifest["views"]["axial"]["count"] // 2
    wait_attr(page, "figure.vw.main", "loaded", str(middle_index))
    (artifacts_dir / "open-seconds.txt").write_text(f"{time.monotonic() - started:.2f}\n")

    # Scroll: the wheel and the arrow keys step one slice, the slider jumps.
    canvas = page.locator("figure.vw.main canvas")
    canvas.hover()
    page.mouse.wheel(0, -120)
    wait_attr(page, "figure.vw.main", "loaded", str(middle_index + 1))
    canvas.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    wait_attr(page, "figure.vw.main", "loaded", str(middle_index - 1))
    page.locator("figure.vw.main input[type=range]").fill(str(k))
    wait_attr(page, "figure.vw.main", "geometry", str(k))
    wait_attr(page, "figure.vw.main", "dose", str(k))
    page.mouse.move(0, 0)

    box = canvas.bounding_box()
    screen = Screen(
        dict(manifest["views"]["axial"]["plane"], fixed={"axis": "z", "mm": float(z[k])}),
        box["width"],
        box["height"],
    )
    plane = next(p for p in roi.planes if abs(p.z_mm - z[k]) < 0.01)
    polygon = max(plane.polygons, key=len)
    sample = polygon[np.linspace(0, len(polygon) - 1, 24).astype(int)]
    xs, ys = screen.to_canvas(sample[:, 0], sample[:, 1])

    pixels = shot(page, "figure.vw.main canvas", artifacts_dir, "1-axial-contours")
    assert abs(pixels.shape[0] - box["height"]) <= 1 and abs(pixels.shape[1] - box["width"]) <= 1
    assert found_near(near_colour(pixels, colour), xs, ys) >= 0.8, "PTV contour not where the DICOM puts it"

    # Toggle the PTV off: its colour leaves those places.
    page.locator(f"#roi-{roi.number}").uncheck()
    pixels = shot(page, "figure.vw.main canvas", artifacts_dir, "2-ptv-off")
    assert found_near(near_colour(pixels, colour), xs, ys) <= 0.2

    # Isodose lines alone (no ROIs): the 100 % line runs inside the high-dose region.
    page.locator("#rois-none").click()
    pixels = shot(page, "figure.vw.main canvas", artifacts_dir, "3-isodose")
    red = np.argwhere(near_colour(pixels, RED, 30))
    assert len(red) > 20, "no 100 % isodose line on a slice through the PTV"
    u_mm, v_mm = screen.to_mm(red[:, 1] + 0.5, red[:, 0] + 0.5)
    on_line = dose.dose_at(np.column_stack([u_mm, v_mm, np.full(len(red), z[k])]))
    prescription = viewer_world.head_neck.prescription_gy
    assert np.mean(on_line >= 0.9 * prescription) > 0.9
    assert near_colour(pixels, ORANGE, 30).sum() > 20
    page.locator("#isodose-on").uncheck()
    pixels = shot(page, "figure.vw.main canvas", artifacts_dir, "4-isodose-off")
    assert near_colour(pixels, RED, 30).sum() == 0 and near_colour(pixels, ORANGE, 30).sum() == 0

    # The dose under the cursor, at the PTV's centre.
    cx, cy = screen.to_canvas(np.array([middle.centroid_mm[0]]), np.array([middle.centroid_mm[1]]))
    page.mouse.move(box["x"] + float(cx[0]), box["y"] + float(cy[0]))
    page.wait_for_function(
        "document.getElementById('cursor').textContent.includes('dose')", timeout=TIMEOUT_MS
    )
    text = page.locator("#cursor").text_content()
    shown_gy = float(text.split("dose")[1].split("Gy")[0])
    expected_gy = float(dose.dose_at(np.array([*middle.centroid_mm, z[k]]))[0])
    assert shown_gy == pytest.approx(expected_gy, abs=0.05 * prescription)

    # Colour wash on: colours appear inside the PTV, the grey image stays grey elsewhere.
    page.mouse.move(0, 0)
    page.locator("#wash-on").check()
    pixels = shot(page, "figure.vw.main canvas", artifacts_dir, "5-wash")
    r, g, b = (pixels[..., c].astype(int) for c in range(3))
    coloured = (np.abs(r - g) > 40) | (np.abs(g - b) > 40)
    assert coloured[int(cy[0]) - 3 : int(cy[0]) + 4, int(cx[0]) - 3 : int(cx[0]) + 4].all()
    page.locator("#wash-on").uncheck()
    page.locator("#rois-all").click()
    page.locator("#isodose-on").check()

    # Sagittal and coronal reconstructions are drawn.
    for view in ("sagittal", "coronal"):
        wait_attr(
            page, f'figure.vw[data-view="{view}"]', "loaded", str(manifest["views"][view]["count"] // 2)
        )
        side = shot(page, f'figure.vw[data-view="{view}"] canvas', artifacts_dir, f"6-{view}")
        assert (side[..., :3].max(axis=-1) > 40).mean() > 0.05

    # A registered MR side by side, on the same plane.
    mr = next(s for s in manifest["others"] if s["modality"] == "MR" and s["registered"])
    page.locator("#secondary-series").select_option(mr["uid"])
    wait_attr(page, "figure.vw.secondary", "loaded", str(k))
    registered = shot(page, "figure.vw.secondary canvas", artifacts_dir, "7-registered-mr")
    assert (registered[..., :3].max(axis=-1) > 40).mean() > 0.05
    page.locator("input[name=secondary-mode][value=blend]").check()
    wait_attr(page, "#viewer", "mode", "blend")
    shot(page, "figure.vw.main canvas", artifacts_dir, "8-blended-mr")

    # DVHs beside the image (computed on demand), in the ROI colours.
    page.wait_for_selector("#viewer[data-dvh=ready]", timeout=180_000)
    dvh = shot(page, "#dvh-plot", artifacts_dir, "9-dvh")
    assert near_colour(dvh, colour, 30).sum() > 20
    page.screenshot(path=str(artifacts_dir / "10-page.png"), full_page=True)

    # Names are text: the HTML payload of a ROI name is shown literally and never runs.
    assert HOSTILE_ROI in page.locator("#roi-list").text_content()
    assert page.evaluate("window.__xss") is None
    assert not problems, problems
    failed = {url: codes for url, codes in answers.items() if codes[-1] >= 400 and "favicon" not in url}
    assert not failed, failed  # nothing failed for good
    page.wait_for_load_state("networkidle")  # no request still running in the live server at teardown
    context.close()

"""In headless Chromium (Debian's, driven by Playwright): log in, open a project, assign inbox data, upload a
zip, and watch the access log grow — with the CSP on, no inline script, screenshots kept as artifacts."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django_otp.oath import totp

from rtbank.projects.models import ProjectSubject, Upload
from tests.conftest import DATA
from tests.projects.world import PASSWORD, World, build_world, run_filing
from tests.web.clients import verified_device

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(monkeypatch) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def world(tmp_path, settings) -> World:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_world(tmp_path, with_jobs=False, other_stages=False)


class Session:
    """One person's browser context; records CSP violations and page errors."""

    def __init__(self, browser: object, base: str, shots: Path, who: str) -> None:
        self.context = browser.new_context(viewport={"width": 1360, "height": 900})  # type: ignore[attr-defined]
        self.page = self.context.new_page()
        self.base, self.shots, self.who = base, shots, who
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)
        self.page.on(
            "response", lambda r: self.problems.append(f"{r.status} {r.url}") if r.status >= 400 else None
        )
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{self.who}-{name}.png"), full_page=True)

    def log_in(self, username: str, lands_on: str) -> None:
        self.go("/login/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        with self.page.expect_navigation(url=re.compile(lands_on)):
            self.page.click("main button[type=submit]")


def log_rows(session: Session) -> int:
    session.go("/access-log/")
    return session.page.locator("#access-log tbody tr").count()


def test_a_day_in_rtbank(world: World, live_server, browser, artifacts_dir: Path, tmp_path: Path) -> None:
    manager = Session(browser, live_server.url, artifacts_dir, "manager")
    manager.log_in("manager_A", r".*/projects/$")

    # The site admin logs in with the second factor, and opens the access log.
    admin = Session(browser, live_server.url, artifacts_dir, "admin")
    device = verified_device(world.users["site_admin"])
    admin.log_in("site_admin", r".*/login/verify/.*")
    admin.page.fill("input[name=token]", f"{totp(device.bin_key, step=device.step, t0=device.t0):06d}")
    with admin.page.expect_navigation(url=re.compile(r".*/projects/$")):
        admin.page.click("main button[type=submit]")
    before = log_rows(admin)
    admin.shot("access-log-before")

    # Open a project: the chart is drawn by the vendored Chart.js under the CSP.
    with manager.page.expect_navigation(url=re.compile(r".*/projects/A/$")):
        manager.page.click("#projects a[href='/projects/A/']")
    manager.page.wait_for_selector("canvas[data-chart-drawn=yes]")
    assert manager.page.locator("#subjects tbody tr").count() == 1
    manager.shot("project")
    with manager.page.expect_navigation(url=re.compile(r".*/subjects/A-0001/$")):
        manager.page.click("#subjects a[href='/projects/A/subjects/A-0001/']")
    manager.page.wait_for_selector("text=plan page")
    manager.shot("subject")

    # Assign inbox data to the project (bulk select).
    manager.go("/inbox/")
    manager.page.check(f"input[name=patients][value='{world.inbox_ode.pk}']")
    manager.page.select_option("select[name=project]", "A")
    manager.page.click("#assign-form button[type=submit]")
    manager.page.wait_for_selector("text=assigned to A")
    manager.shot("inbox-assigned")
    assert ProjectSubject.objects.filter(project__code="A", patient=world.inbox_ode).exists()

    # Upload a zip; per-file results are shown; the worker files it.
    archive = tmp_path / "centre-upload.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in ("ct.0.dcm", "rtss.dcm", "rtplan.dcm"):
            z.write(DATA / "dicompyler-core" / name, f"export/{name}")
        z.writestr("export/README.txt", "hello")
    manager.go("/upload/")
    manager.page.set_input_files("input[name=files]", str(archive))
    manager.page.click("form.card button[type=submit]")
    manager.page.wait_for_selector("#results")
    assert manager.page.inner_text("#stored").strip() == "3"
    assert "not DICOM (skipped)" in manager.page.inner_text("#results")
    manager.shot("upload")
    run_filing()
    assert Upload.objects.filter(user=world.users["manager_A"], stored=3).exists()

    # The access log grew by what the manager just did.
    after = log_rows(admin)
    text = admin.page.inner_text("#access-log")
    assert after > before and "view_subject" in text and "upload" in text and "assign" in text
    admin.shot("access-log-after")
    assert not manager.problems and not admin.problems, manager.problems + admin.problems

"""In headless Chromium with the CSP on: the plan page draws the DVH from the vendored Chart.js, and the
show all / hide all toggles work, without console errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from rtbank.analysis import mapping
from rtbank.catalog.models import Instance
from tests.analysis.conftest import AnalysisWorld

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(monkeypatch) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop here
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


def test_the_plan_page_draws_and_toggles_the_dvh(
    analysis_world: AnalysisWorld, live_server, browser, artifacts_dir: Path
) -> None:
    w = analysis_world
    mapping.add_rule(w.project, "PTV*", "PTV_High", actor="test")
    client = Client()
    client.force_login(w.users["viewer"])
    context = browser.new_context(viewport={"width": 1360, "height": 1000})  # type: ignore[attr-defined]
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
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    uid = Instance.objects.get(kind="plan", series__study__patient__patient_id="PH1").sop_instance_uid
    page.goto(f"{live_server.url}/projects/P/plans/{uid}/")
    page.wait_for_selector("canvas#dvh-chart[data-chart-drawn=yes]")
    assert page.is_visible("#dvh-toggles")
    visible = "() => Chart.getChart('dvh-chart').getSortedVisibleDatasetMetas().length"
    assert page.evaluate(visible) == 3
    page.click("button[data-dvh-all=off]")
    assert page.evaluate(visible) == 0
    page.click("button[data-dvh-all=on]")
    assert page.evaluate(visible) == 3
    labels = page.evaluate("() => Chart.getChart('dvh-chart').data.datasets.map(d => d.label)")
    assert "PTV 70 (PTV_High)" in labels and '=HYPERLINK("x")' in labels
    page.screenshot(path=str(artifacts_dir / "plan-dvh.png"), full_page=True)
    assert not problems, problems

"""Real-browser flow in Debian's Chromium: load the demo, train a small model, open its recommendations.

Screenshots of every step are kept in artifacts/e2e/ for people to look at.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from app_server import ARTIFACTS, CHROMIUM, ERROR_BOXES, FLAGS, go, start_app, stop_app, stop_jobs, wait_idle

pytestmark = pytest.mark.e2e

if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    runs = tmp_path_factory.mktemp("e2e_runs")
    env = {**os.environ, "SEQREC_RUNS_DIR": str(runs)}
    env.pop("SEQREC_AUTOLOAD_DEMO", None)
    log = open(tmp_path_factory.mktemp("e2e_log") / "streamlit.log", "wb")
    proc, url = start_app(env, log)
    yield url
    stop_app(proc)
    stop_jobs(runs)
    log.close()


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 1200")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 50, 6000)})
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_demo_train_recommend_flow(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        console_errors: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.goto(server)
        page.get_by_role("button", name="Load demo data").click()
        page.get_by_text("Demo data loaded").wait_for(timeout=60_000)
        wait_idle(page)
        shoot(page, "1_home")

        go(page, "Data")
        page.get_by_text("Data quality").wait_for(timeout=60_000)
        wait_idle(page)
        shoot(page, "2_data")
        assert page.locator(ERROR_BOXES).count() == 0

        go(page, "Train")
        page.get_by_text("New model").wait_for(timeout=60_000)
        page.get_by_role("spinbutton", name="Time budget (s)").fill("15")
        page.get_by_role("button", name="Start training").click()
        page.get_by_text("Finished").wait_for(timeout=240_000)
        wait_idle(page)
        shoot(page, "3_train")
        assert page.locator(ERROR_BOXES).count() == 0

        # The run is analysed right after training (the Train page's default): Evaluate shows the job, then
        # the stored evaluation when the job has written it.
        go(page, "Evaluate")
        page.get_by_text("Protocol:").wait_for(timeout=300_000)
        wait_idle(page, 120_000)
        shoot(page, "4_evaluate")
        assert page.locator(ERROR_BOXES).count() == 0

        go(page, "Recommendations")
        page.get_by_text("Its rank").wait_for(timeout=60_000)
        wait_idle(page)
        shoot(page, "5_recommendations")
        assert page.locator(ERROR_BOXES).count() == 0
        browser.close()
    assert not [e for e in console_errors if "favicon" not in e], console_errors

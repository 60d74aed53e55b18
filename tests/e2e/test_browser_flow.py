"""Real-browser flow in Debian's Chromium: load the demo, train a small model, open its recommendations.

Screenshots of every step are kept in artifacts/e2e/ for people to look at.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts" / "e2e"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
ERROR_BOXES = '[data-testid="stException"], [data-testid="stAlertContentError"]'

if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    port = _free_port()
    env = {**os.environ, "SEQREC_RUNS_DIR": str(tmp_path_factory.mktemp("e2e_runs"))}
    env.pop("SEQREC_AUTOLOAD_DEMO", None)
    log = open(tmp_path_factory.mktemp("e2e_log") / "streamlit.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--browser.gatherUsageStats", "false",
                             "--server.fileWatcherType", "none"], cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not start within 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def wait_idle(page, timeout_ms: int = 60_000) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]'
                           '[data-test-connection-state="CONNECTED"]', timeout=timeout_ms)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stSkeleton\"]') && "
                           "[...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
                           ".every(c => c.querySelector('.main-svg'))", timeout=timeout_ms)


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 1200")
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 50, 6000)})
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def go(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNavLink"]', has_text=title).first.click()
    page.wait_for_timeout(300)


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

        go(page, "Evaluate")
        page.get_by_text("Protocol:").wait_for(timeout=120_000)
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

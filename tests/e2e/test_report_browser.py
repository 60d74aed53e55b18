"""The review report in a real browser without network: `report` on a copy of the shipped demo run, opened as a
file:// page in Debian's Chromium with every non-file request aborted. No console errors, no page errors, no
request that needed the network, and every figure drawn. A screenshot is kept in artifacts/e2e/ for people."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from app_server import ARTIFACTS, CHROMIUM, FLAGS, ROOT

pytestmark = pytest.mark.e2e

if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

DEMO_RUN = ROOT / "assets" / "demo_run"
MAX_BYTES = 20 << 20


def test_demo_report_renders_offline(tmp_path, capsys):
    from seqrec_core.cli import main

    run = Path(shutil.copytree(DEMO_RUN, tmp_path / "demo_run"))  # never write into assets/
    out = tmp_path / "review.html"
    started = time.perf_counter()
    assert main(["report", "--run", str(run), "--out", str(out), "--device", "cpu"]) == 0
    seconds = time.perf_counter() - started
    doc = json.loads(capsys.readouterr().out)
    assert doc["bytes"] == out.stat().st_size <= MAX_BYTES
    assert doc["figures"] >= 30 and len(doc["users"]) >= 2, doc
    assert seconds < 120, f"report took {seconds:.0f} s"

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        console_errors: list[str] = []
        page_errors: list[str] = []
        blocked: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page_errors.append(str(e)))

        def offline(route) -> None:  # noqa: ANN001 - playwright Route
            if route.request.url.startswith("file:"):
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        page.route("**/*", offline)
        page.goto(out.as_uri())
        page.wait_for_load_state("load")
        page.wait_for_function("n => document.querySelectorAll('.plotly-graph-div').length === n && "
                               "[...document.querySelectorAll('.plotly-graph-div')]"
                               ".every(d => d.classList.contains('js-plotly-plot') && d.querySelector('.main-svg'))",
                               arg=doc["figures"], timeout=60_000)
        drawn = page.evaluate("[...document.querySelectorAll('.js-plotly-plot')]"
                              ".filter(d => d._fullLayout && d.querySelector('.main-svg .cartesianlayer')).length")
        assert drawn == doc["figures"]
        for user in doc["users"]:
            assert page.get_by_text(f"User {user}", exact=True).count() == 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report_top.png"))
        browser.close()
    assert not blocked, blocked
    assert not page_errors, page_errors
    assert not console_errors, console_errors

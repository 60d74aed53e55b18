"""How long each page's first view takes in a real browser (issue 14's bar: <= 3 s after "Load demo data").

Starts the dashboard on a fresh runs folder, opens it in headless Chromium, then either clicks "Load demo data"
(default) or opens a link to a run (``--run-dir``: the run folder is copied into the fresh runs folder and opened
with ``?run=NAME``, which loads the log the run records), and visits every page through the sidebar, timing each
until the page is idle (script finished, no skeleton, every chart drawn). Prints one JSON document with the times
and the machine. The server is fresh, so the first views include its one-time imports, as a first demo would.

    python bench/page_times.py                                      # the demo
    python bench/page_times.py --run-dir runs/beauty-sasrec         # a run with its stored analysis
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from app_server import CHROMIUM, FLAGS, start_app, stop_app  # noqa: E402  (tests/e2e/app_server.py)

IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED'
    && !document.querySelector('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"]')
    && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].every(c => c.querySelector('.main-svg'));
}"""
PAGES = ["Data", "Patterns", "Train", "Evaluate", "Explain", "Embeddings", "Recommendations", "Compare"]


def settle(page, timeout_ms: int) -> None:  # noqa: ANN001 - playwright Page
    page.wait_for_timeout(250)  # right after a click the app still reads 'notRunning' for a moment
    page.wait_for_function(IDLE_JS, timeout=timeout_ms)


def main() -> None:
    from playwright.sync_api import sync_playwright

    from bench.machine import host_info

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run-dir", help="a run folder to open by link instead of the demo")
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="page-times-"))
    query = ""
    if args.run_dir:
        src = Path(args.run_dir)
        shutil.copytree(src, runs / src.name)
        query = f"?run={src.name}"
    env = {**os.environ, "SEQREC_RUNS_DIR": str(runs)}
    timeout_ms = int(args.timeout * 1000)
    times: dict[str, float] = {}
    with open(runs / "streamlit.log", "wb") as log:
        proc, url = start_app(env, log)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                t = time.monotonic()
                page.goto(url + query)
                settle(page, timeout_ms)
                times["first page" if not query else "link opened"] = round(time.monotonic() - t, 2)
                if not query:
                    t = time.monotonic()
                    page.get_by_role("button", name="Load demo data").first.click()
                    settle(page, timeout_ms)
                    times["Load demo data"] = round(time.monotonic() - t, 2)
                for name in PAGES:
                    t = time.monotonic()
                    page.locator('[data-testid="stSidebarNavLink"]', has_text=name).first.click()
                    page.wait_for_function(f"() => document.querySelector('h1') && "
                                           f"document.querySelector('h1').innerText.startsWith({json.dumps(name)})",
                                           timeout=timeout_ms)
                    settle(page, timeout_ms)
                    times[name] = round(time.monotonic() - t, 2)
                boxes = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count()
                browser.close()
        finally:
            stop_app(proc)
    shutil.rmtree(runs, ignore_errors=True)
    pages = {k: v for k, v in times.items() if k in PAGES}
    print(json.dumps({"what": f"first view of every page ({'link to ' + Path(args.run_dir).name if query else 'demo'})",
                      "seconds": times, "slowest_page": max(pages, key=pages.get), "max_seconds": max(pages.values()),
                      "bar_seconds": 3.0, "error_boxes_on_last_page": boxes, "console_errors": len(errors),
                      "machine": host_info()}, indent=2))


if __name__ == "__main__":
    main()

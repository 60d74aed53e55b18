"""Screenshot every tab of some dashboard pages on the demo, as ../shared/tools/shoot_pages.py does for each
page's first view (which shows only the first tab of a tabbed page).

    source .venv/bin/activate
    SEQREC_RUNS_DIR="$(mktemp -d)" python tools/shoot_tabs.py --out "$(mktemp -d)" Explain Patterns Compare

Starts the app, clicks "Load demo data", then on each named page clicks every tab and saves a full-page PNG,
printing any error box or exception the tab shows. Exit status 1 when one did.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent / "shared" / "tools"))

from playwright.sync_api import sync_playwright  # noqa: E402
from shoot_pages import CHROMIUM_ARGS, NAV_LINKS, free_port, problems_on, shoot, wait_idle  # noqa: E402

TIMEOUT_MS = 180_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="*", default=["Explain", "Patterns", "Compare"], help="sidebar page names")
    ap.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with open(args.out / "streamlit.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                 "--server.port", str(port), "--browser.gatherUsageStats", "false",
                                 "--server.fileWatcherType", "none"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url, bad = f"http://127.0.0.1:{port}", []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            wait_idle(page, TIMEOUT_MS)
            page.get_by_role("button", name="Load demo data").first.click()
            wait_idle(page, TIMEOUT_MS)
            for name in args.pages:
                page.locator(NAV_LINKS).filter(has_text=name).first.click()
                wait_idle(page, TIMEOUT_MS)
                try:  # right after a page switch the old page's state can read as idle: wait for the tabs
                    page.get_by_role("tab").first.wait_for(timeout=30_000)
                except Exception:  # a page without tabs (or one that never drew them) is a finding
                    bad.append(f"{name}: no tabs")
                    page.screenshot(path=str(args.out / f"{name}_no_tabs.png"), full_page=True)
                    print(f"{name}: no tabs found; see {name}_no_tabs.png", flush=True)
                    continue
                for i, tab in enumerate(t.inner_text().strip() for t in page.get_by_role("tab").all()):
                    page.get_by_role("tab", name=tab).first.click()
                    path = args.out / f"{name}_{i}_{''.join(c if c.isalnum() else '_' for c in tab)[:30]}.png"
                    shoot(page, path, TIMEOUT_MS)
                    found = problems_on(page)
                    bad += found
                    print(path, "; ".join(found) or "ok", flush=True)
            browser.close()
    finally:
        proc.terminate()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""What the real-browser tests share: Chromium's flags, a Streamlit server of the app on a free port, and waits
that know when a page has finished drawing. Imported by the tests in this folder (pytest puts it on sys.path)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts" / "e2e"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
ERROR_BOXES = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env: dict, log: IO[bytes], timeout_s: float = 60) -> tuple[subprocess.Popen, str]:
    """Start `streamlit run app.py` headless with ``env`` and wait for its health check: (process, url)."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--browser.gatherUsageStats", "false",
                             "--server.fileWatcherType", "none"], cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail(f"streamlit did not start within {timeout_s:.0f} s")


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=20)


def wait_idle(page, timeout_ms: int = 60_000) -> None:  # noqa: ANN001 - playwright Page
    """Until the script has finished, the connection is up, no skeleton is left and every chart has drawn."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]'
                           '[data-test-connection-state="CONNECTED"]', timeout=timeout_ms)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stSkeleton\"]') && "
                           "[...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
                           ".every(c => c.querySelector('.main-svg'))", timeout=timeout_ms)


def go(page, title: str) -> None:  # noqa: ANN001 - playwright Page
    """Open a page from the sidebar navigation."""
    page.locator('[data-testid="stSidebarNavLink"]', has_text=title).first.click()
    page.wait_for_timeout(300)


def stop_jobs(runs_root: Path) -> None:
    """Cancel every background job the dashboard started under ``runs_root`` (a train job goes on analysing its
    run after the page that started it is gone) and wait for them, so no test leaves work behind."""
    from seqrec_core.jobs import runner

    jobs = runner.list_jobs(Path(runs_root))
    for job in jobs:
        runner.cancel(job)
    deadline = time.time() + 60
    for job in jobs:
        while runner.is_alive(job) and time.time() < deadline:
            time.sleep(0.2)


"""Deep links in Debian's Chromium: a link to Explain for a demo user and target, opened in a fresh browser
context (no session state), shows that user and target; the page's own "Copy link" gives such a link; a link
to an unknown run or user says so in one sentence instead of failing."""
from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from app_server import CHROMIUM, ERROR_BOXES, FLAGS, start_app, stop_app, wait_idle

pytestmark = pytest.mark.e2e

if not Path(CHROMIUM).exists():
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    env = {**os.environ, "SEQREC_RUNS_DIR": str(tmp_path_factory.mktemp("link_runs"))}
    env.pop("SEQREC_AUTOLOAD_DEMO", None)
    log = open(tmp_path_factory.mktemp("link_log") / "streamlit.log", "wb")
    proc, url = start_app(env, log)
    yield url
    stop_app(proc)
    log.close()


@pytest.fixture(scope="module")
def demo_user():
    """A demo user other than the page's default one, and their held-out (last) item."""
    from seqrec_core.data.dataset import DataSource, open_dataset

    seqs = open_dataset(DataSource(path="demo")).sequences
    u = 123
    return seqs.vocab.user_ids[u], seqs.vocab.item_id(int(seqs.sequences[u][-1]))


def user_box(page):  # noqa: ANN001, ANN202 - the "User id" text box (its help icon has the same label)
    return page.get_by_label("User id", exact=True).and_(page.get_by_test_id("stTextInputField"))


def fresh_page(browser):  # noqa: ANN001, ANN202 - a new context: no cookies, no session, as another person would
    """A page in a new context, and the errors it logs. Streamlit's frontend first probes its server under the
    page's own path (/Explain/_stcore/health and host-config) and falls back to the root: those two 404s are its
    way of finding the server, not errors of this app, so failed loads are judged by their URL instead."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error"
            and not m.text.startswith("Failed to load resource") else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400
            and "/_stcore/" not in r.url else None)
    return context, page, errors


def test_a_link_to_explain_opens_the_same_user_and_target(server, demo_user):
    user, heldout = demo_user
    link = f"{server}/Explain?run=demo-sasrec-pretrained&user={user}&target={quote('Held-out item')}"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context, page, errors = fresh_page(browser)
        page.goto(link)
        page.get_by_text("Explaining:").wait_for(timeout=120_000)
        wait_idle(page, timeout_ms=120_000)
        assert user_box(page).input_value() == user
        assert page.get_by_role("radio", name="Held-out item").is_checked()
        explaining = page.get_by_text("Explaining:").locator("..").inner_text()
        assert heldout in explaining, explaining
        assert page.locator(ERROR_BOXES).count() == 0 and not errors, errors
        # The page's own link names the same view; opened elsewhere it shows it again.
        page.get_by_role("button", name="Copy link to this view").click()
        shown = page.locator("code").filter(has_text="/Explain?").first.inner_text()
        assert "run=demo-sasrec-pretrained" in shown and f"user={user}" in shown, shown
        context.close()
        context, page, errors = fresh_page(browser)
        page.goto(re.sub(r"\s+", "", shown).replace("http://localhost:8501", server))
        page.get_by_text("Explaining:").wait_for(timeout=120_000)
        wait_idle(page, timeout_ms=120_000)
        assert user_box(page).input_value() == user
        assert heldout in page.get_by_text("Explaining:").locator("..").inner_text()
        context.close()
        browser.close()


def test_links_to_unknown_runs_and_users_say_so(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context, page, errors = fresh_page(browser)
        page.goto(f"{server}/Explain?run=no-such-run&user=u0001")
        page.get_by_text("which is not in this dashboard's runs folder").wait_for(timeout=60_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        context.close()
        context, page, errors = fresh_page(browser)
        page.goto(f"{server}/Explain?run=demo-sasrec-pretrained&user=nobody-{os.getpid()}")
        page.get_by_text("is not in Demo data").wait_for(timeout=120_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        context.close()
        browser.close()

"""Two people on one dashboard at once (two browser contexts = two Streamlit sessions in one server process):
A loads the demo while B uploads a different log; each sees only their own data, then B trains on its log while
A explains a prediction of a demo run, and neither sees the other's dataset or run. The browser test is marked
e2e and skips without Chromium; the AppTest at the end checks the same isolation without a browser.
Screenshots go to artifacts/e2e/two_sessions_*."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from app_server import ARTIFACTS, CHROMIUM, ERROR_BOXES, FLAGS, ROOT, go, start_app, stop_app, stop_jobs, wait_idle

DEMO_NAME = "Demo data (synthetic)"
B_NAME = "session_b_log.csv"
B_USERS = 60

NO_BROWSER = not Path(CHROMIUM).exists()
TINY_DEMO_RUN = """
import sys
import torch
from seqrec_core.data.dataset import DEMO, DataSource, open_dataset
from seqrec_core.models import build_model
from seqrec_core.runs import save_run
ds = open_dataset(DataSource(path=DEMO, demo_seed=0))
torch.manual_seed(0)
model = build_model("sasrec", ds.sequences.vocab.n_items, hidden_size=8, num_layers=1, num_heads=1, max_len=20)
save_run(sys.argv[1], model=model.eval(), config={"data": ds.info()}, vocab=ds.sequences.vocab, metrics={}, history=[])
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    runs = tmp_path_factory.mktemp("two_sessions_runs")
    env = {**os.environ, "SEQREC_RUNS_DIR": str(runs)}
    env.pop("SEQREC_AUTOLOAD_DEMO", None)
    log = open(tmp_path_factory.mktemp("two_sessions_log") / "streamlit.log", "wb")
    # A tiny untrained run on the demo log, saved while the test starts, so session A has a model to explain even
    # where the shipped demo run is missing (the test waits for it only before A opens Explain).
    trainer = subprocess.Popen([sys.executable, "-c", TINY_DEMO_RUN, str(runs / "tiny-demo")], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=log)
    proc, url = start_app(env, log)
    yield url, runs, trainer
    if trainer.poll() is None:
        trainer.kill()
        trainer.wait()
    stop_app(proc)
    stop_jobs(runs)
    log.close()


def sidebar(page, expect: str | None = None) -> str:
    """The sidebar's text, once it names ``expect`` (the sidebar may still show the previous run's state)."""
    bar = page.locator('[data-testid="stSidebar"]')
    if expect is not None:
        bar.filter(has_text=expect).wait_for(timeout=60_000)
        wait_idle(page)
    return bar.inner_text()


def run_in_use(page) -> str:
    """The sidebar's "Model (run)" choice ("" when no run is trained on this session's data)."""
    box = page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Model (run)")
    return box.input_value() if box.count() else ""


def metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]', has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text()


def shoot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"two_sessions_{name}.png"), full_page=True)


def write_b_log(path: Path) -> Path:
    rows = ["user,item,timestamp"] + [f"b{u},shoe{(u * 5 + k) % 17},{1_700_000_000 + 3600 * k + u}"
                                      for u in range(B_USERS) for k in range(10)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.e2e
@pytest.mark.skipif(NO_BROWSER, reason="Chromium is not installed (apt-get install chromium)")
def test_two_sessions_see_only_their_own_data_and_runs(server, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    url, runs, saver = server
    b_log = write_b_log(tmp_path / B_NAME)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        ctx_a = browser.new_context(viewport={"width": 1400, "height": 1000})
        ctx_b = browser.new_context(viewport={"width": 1400, "height": 1000})
        a, b = ctx_a.new_page(), ctx_b.new_page()
        a.goto(url)
        b.goto(url)
        wait_idle(a)
        go(b, "Data")
        b.get_by_text("Bring your own log").first.wait_for(timeout=30_000)
        wait_idle(b)

        # At the same time: A loads the demo, B reads its upload.
        a.get_by_role("button", name="Load demo data").click()
        b.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(b_log))
        b.get_by_role("button", name="Use this data").click(timeout=60_000)
        a.get_by_text("Demo data loaded").wait_for(timeout=90_000)
        b.get_by_text("Data loaded.").wait_for(timeout=90_000)
        wait_idle(b)
        assert metric(b, "Users") == f"{B_USERS:,}"

        go(a, "Data")
        go(b, "Data")  # the sidebar is drawn before the page sets the data: it shows it from the next run on
        a.get_by_text(f"Summary: {DEMO_NAME}").wait_for(timeout=60_000)
        b.get_by_text(f"Summary: {B_NAME}").wait_for(timeout=60_000)
        wait_idle(a)
        wait_idle(b)
        assert metric(a, "Users") != f"{B_USERS:,}"
        assert B_NAME not in sidebar(a, expect=DEMO_NAME)
        assert DEMO_NAME not in sidebar(b, expect=B_NAME)
        assert b.get_by_text(f"Summary: {B_NAME}").count() == 1

        # B trains on its log (a CLI job in the background) while A opens Explain on the demo.
        go(b, "Train")
        b.get_by_text("New model").wait_for(timeout=60_000)
        wait_idle(b)
        b.get_by_role("spinbutton", name="Time budget (s)").fill("10")
        b.get_by_role("spinbutton", name="Max epochs").fill("1")
        b.get_by_text("Analyse the run when training finishes").click()  # off: this test is about two sessions
        b.get_by_role("button", name="Start training").click()
        assert saver.wait(timeout=120) == 0, "saving the tiny demo run failed"
        go(a, "Explain")
        a.get_by_text("Explaining:").wait_for(timeout=120_000)  # an IG explanation of A's own demo run
        wait_idle(a, 120_000)
        assert run_in_use(a) and a.locator(ERROR_BOXES).count() == 0  # tiny-demo, or the shipped demo run
        b.get_by_text("Finished").wait_for(timeout=120_000)
        wait_idle(b)
        shoot(a, "a_explain")
        shoot(b, "b_train")
        assert b.locator(ERROR_BOXES).count() == 0

        # B's run is B's: listed in B's sidebar, absent from A's (runs are matched to the data they were trained on).
        b_run = next(p.name for p in runs.iterdir() if p.name.startswith("sasrec-"))
        go(a, "Data")
        a.get_by_text(f"Summary: {DEMO_NAME}").wait_for(timeout=60_000)
        wait_idle(a)
        text_a = sidebar(a, expect=DEMO_NAME)
        assert b_run not in text_a and B_NAME not in text_a
        go(b, "Data")
        b.get_by_text(f"Summary: {B_NAME}").wait_for(timeout=60_000)
        wait_idle(b)
        assert B_NAME in sidebar(b, expect=B_NAME) and metric(b, "Users") == f"{B_USERS:,}"
        assert b_run in run_in_use(b) and "tiny-demo" not in run_in_use(b) and "demo" not in run_in_use(b)
        assert run_in_use(a) and b_run not in run_in_use(a)
        assert a.locator(ERROR_BOXES).count() == 0 and b.locator(ERROR_BOXES).count() == 0
        browser.close()


# ------------------------------------------------------------------ the same promise without a browser (AppTest)
def _session_script() -> None:
    """One page run of a session that misbehaves: it changes the run and the dataset it was given."""
    import streamlit as st

    from ui import state

    if st.session_state.get("load_demo"):
        state.load_demo(seed=7)
        st.session_state["load_demo"] = False  # once per session, as the Home button does
    run = state.session_run(st.session_state["path"])
    st.session_state["model_id"] = id(run.model)
    st.session_state["was_training"] = run.model.training
    run.model.train()  # e.g. a page forgetting eval mode, or moving the model to another device
    run.config["family"] = "tampered"
    ds = state.get_dataset()
    st.session_state["had_column"] = "tampered" in ds.events.columns
    ds.events["tampered"] = 1  # a page adding a column in place


def test_sessions_get_their_own_run_and_event_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamlit serves every session from one process: cached objects are shared unless handed out as copies."""
    import pandas as pd
    import torch
    from streamlit.testing.v1 import AppTest

    from seqrec_core.data import build_sequences
    from seqrec_core.models import build_model
    from seqrec_core.runs import save_run
    from ui import state

    monkeypatch.chdir(ROOT)
    rows = [(f"u{u}", f"i{(u + t) % 12}", t) for u in range(20) for t in range(6)]
    data = build_sequences(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))
    torch.manual_seed(0)
    model = build_model("gru4rec", data.vocab.n_items, hidden_size=8, max_len=6).eval()
    path = save_run(tmp_path / "run", model=model, config={}, vocab=data.vocab, metrics={}, history=[])
    sessions = []
    for _ in range(2):
        at = AppTest.from_function(_session_script, default_timeout=60)
        at.session_state["path"] = str(path)
        at.session_state["load_demo"] = True
        at.run()
        assert not at.exception, at.exception
        sessions.append(at)
    a, b = sessions
    assert a.session_state["model_id"] != b.session_state["model_id"]
    assert not a.session_state["was_training"] and not b.session_state["was_training"]  # A's .train() stayed A's
    assert not a.session_state["had_column"] and not b.session_state["had_column"]  # A's column stayed A's
    shared = state.load_run_cached(str(path), (path / "config.json").stat().st_mtime)
    assert not shared.model.training and shared.config["family"] == "gru4rec"
    assert "tampered" not in state._demo_dataset(7).events.columns
    a.run()  # A's next run keeps A's own (changed) copy: per session, not per page run
    assert a.session_state["was_training"] and a.session_state["had_column"]

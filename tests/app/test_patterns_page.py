"""AppTest of the Patterns page: guards without data or timestamps, renders the demo's patterns with the planted
truth check, and ties the patterns to a loaded run."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE = "app_pages/2_Patterns.py"


def open_patterns(dataset=None, run: Path | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    if dataset is not None:
        at.session_state["dataset"] = dataset
    if run is not None:
        at.session_state["run_path"] = str(run)
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    return at


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


@pytest.fixture(scope="module")
def demo_dataset():
    """The demo generator at a smaller size, marked as the built-in demo so the planted truth check shows."""
    from seqrec_core.data.dataset import DEMO, DataSource, dataset_from_events
    from seqrec_core.data.synthetic import make_demo_events

    events, _ = make_demo_events(n_users=600, seed=4)
    return dataset_from_events(events, "Demo data (synthetic)", source=DataSource(path=DEMO, demo_seed=4))


def test_without_data_points_to_data(runs_dir):
    at = open_patterns()
    assert any("No data loaded yet" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_log_without_timestamps_says_so(runs_dir):
    import pandas as pd

    from seqrec_core.data.dataset import dataset_from_events

    events = pd.DataFrame({"user_id": np.repeat([f"u{u}" for u in range(20)], 5),
                           "item_id": [f"i{k % 7}" for k in range(100)],
                           "timestamp": np.tile(np.arange(5, dtype=np.int64), 20)})
    at = open_patterns(dataset_from_events(events, "order_only.txt"))
    assert any("no timestamps" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def show_tab(at: AppTest, name: str) -> AppTest:
    """Tabs rerun on change and only the open one renders: open ``name`` the way a click would."""
    at.session_state["patterns_tab"] = name
    at.run()
    assert not at.exception, at.exception
    return at


def test_demo_patterns_render_with_the_planted_check(runs_dir, demo_dataset, monkeypatch):
    # the planted truth of this smaller demo (600 users: at 400 a 2-day burst has too few events to detect)
    # (the page regenerates it from the seed at the default size)
    from seqrec_core.data.synthetic import make_demo_events
    from ui import explain_cache

    monkeypatch.setattr(explain_cache, "demo_truth", lambda seed: make_demo_events(n_users=600, seed=seed)[1])
    at = open_patterns(demo_dataset)
    assert [t.value for t in at.title] == ["Patterns"]
    labels = {m.label: m.value for m in at.metric}
    assert {"Significant periods", "Burstiness B", "Memory M", "Item bursts", "Repeat share"} <= set(labels)
    shown = [float(h) for h in re.findall(r"([\d.]+) h", labels["Significant periods"])]  # e.g. "24 h, 167 h"
    for planted in (24, 168):  # the bar: within 2%
        assert any(abs(h - planted) <= 0.02 * planted for h in shown), shown
    assert {"Which periods repeat in the activity", "When in the week people are active",
            "Activity per day"} <= set(chart_titles(at))
    assert len(at.get("download_button")) >= 2
    expected = {"Burstiness": {"Time between a user's consecutive events", "Burstiness and memory per user",
                               "Users per temporal segment"},
                "Repeats": {"Time until the same user repeats an item"}}
    for tab, titles in expected.items():
        assert titles <= set(chart_titles(show_tab(at, tab))), (tab, chart_titles(at))
    assert any(t.startswith("Activity of") for t in chart_titles(show_tab(at, "Bursts")))  # item and user timelines
    show_tab(at, "Model")
    assert any("No model trained on this data" in i.value for i in at.info)
    labels = {m.label: m.value for m in show_tab(at, "Planted truth check").metric}
    assert labels["Planted daily period 24 h"] != "not found" and labels["Planted weekly period 168 h"] != "not found"
    assert float(labels["Planted bursts: F1"]) >= 0.8
    # another timezone: the hour-of-day axis and the calendar follow it, nothing breaks
    show_tab(at, "Overview")
    at.selectbox(key="patterns_tz").set_value("Asia/Tokyo").run()
    assert not at.exception, at.exception
    axes = [json.loads(c.proto.spec)["layout"]["xaxis"].get("title", {}).get("text") for c in at.get("plotly_chart")]
    assert "hour of day (Asia/Tokyo)" in axes and "date (Asia/Tokyo)" in axes


def test_model_tab_with_a_run(runs_dir, small_dataset, tiny_run):
    at = show_tab(open_patterns(small_dataset, run=tiny_run), "Model")
    titles = chart_titles(at)
    assert "NDCG@10 by the user's temporal segment" in titles
    assert "NDCG@10 inside vs outside item bursts" in titles
    assert "Does the model lean on timely events?" in chart_titles(at)  # stored at its default settings
    at.number_input(key="patterns_tm_users").set_value(20).run()
    assert not at.exception, at.exception
    assert "Does the model lean on timely events?" not in chart_titles(at)
    assert any(b.label == "Compute now" for b in at.button)

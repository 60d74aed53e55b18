"""AppTest of the Patterns page: guards without data or timestamps, renders the demo's patterns with the planted
truth check, and ties the patterns to a loaded run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE = "pages/2_Patterns.py"


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

    events, _ = make_demo_events(n_users=400, seed=4)
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


def test_demo_patterns_render_with_the_planted_check(runs_dir, demo_dataset, monkeypatch):
    # the planted truth of this smaller demo (the page regenerates it from the seed at the default size)
    from seqrec_core.data.synthetic import make_demo_events
    from ui import explain_cache

    monkeypatch.setattr(explain_cache, "demo_truth", lambda seed: make_demo_events(n_users=400, seed=seed)[1])
    at = open_patterns(demo_dataset)
    assert [t.value for t in at.title] == ["Patterns"]
    labels = {m.label: m.value for m in at.metric}
    assert {"Significant periods", "Burstiness B", "Memory M", "Item bursts", "Repeat share"} <= set(labels)
    assert "24 h" in labels["Significant periods"]
    assert "Planted daily period 24 h" in labels and labels["Planted daily period 24 h"] != "not found"
    titles = chart_titles(at)
    for expected in ("Which periods repeat in the activity", "When in the week people are active",
                     "Activity per day", "Time between a user's consecutive events", "Burstiness and memory per user",
                     "Users per temporal segment", "Time until the same user repeats an item"):
        assert expected in titles, titles
    assert any(t.startswith("Activity of") for t in titles)  # the picked item's timeline
    assert any("No model trained on this data" in i.value for i in at.info)  # Model tab without a run
    assert len(at.get("download_button")) >= 5
    # another timezone: the hour-of-day axis follows it, nothing breaks
    at.selectbox(key="patterns_tz").set_value("Asia/Tokyo").run()
    assert not at.exception, at.exception
    axes = [json.loads(c.proto.spec)["layout"]["xaxis"].get("title", {}).get("text") for c in at.get("plotly_chart")]
    assert "hour of day (Asia/Tokyo)" in axes and "date (Asia/Tokyo)" in axes


def test_model_tab_with_a_run(runs_dir, small_dataset, tiny_run):
    at = open_patterns(small_dataset, run=tiny_run)
    titles = chart_titles(at)
    assert "NDCG@10 by the user's temporal segment" in titles
    assert "NDCG@10 inside vs outside the held-out item's bursts" in titles
    at.number_input(key="patterns_tm_users").set_value(20)
    at.slider(key="patterns_tm_steps").set_value(5)
    next(b for b in at.button if b.label == "Compute attribution by time").click().run()
    assert not at.exception, at.exception
    assert "Does the model lean on timely events?" in chart_titles(at)

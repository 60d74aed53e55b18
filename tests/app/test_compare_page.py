"""AppTest of the Compare page (no data / one run / two runs) and of the Train page's model-family selector.

Each test gets its own runs folder holding exactly the runs it needs (copies of the session's tiny runs), so
runs other tests train on the same data never change what these pages list."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from compare_runs import TIMED_RUN, train_second_run, train_timed_run  # tests/compare_runs.py
from streamlit.testing.v1 import AppTest

from seqrec_core import compare

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_page(page: str, dataset=None, tab: str | None = None) -> AppTest:  # noqa: ANN001
    at = AppTest.from_file(APP, default_timeout=120)
    if dataset is not None:
        at.session_state["dataset"] = dataset
    if tab is not None:  # Compare's tabs draw only when open; the open one is the URL-bound key "compare_tab"
        at.session_state["compare_tab"] = tab
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def private_runs(tmp_path, monkeypatch, runs_dir, small_dataset, tiny_run):
    """A function that fills a fresh runs folder with copies of the first n tiny runs (plain, learned positions),
    or of the named ones (the time-aware run is trained only when named)."""
    second = train_second_run(runs_dir, small_dataset)
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("SEQREC_RUNS_DIR", str(root))

    def fill(n: int | tuple[str, ...]) -> Path:
        if isinstance(n, int):
            sources = (tiny_run, second)[:n]
        else:
            made = {tiny_run.name: tiny_run, second.name: second}
            sources = [made[name] if name in made else train_timed_run(runs_dir, small_dataset) for name in n]
        for src in sources:
            shutil.copytree(src, root / src.name)
        return root

    return fill


def test_compare_without_data_points_to_data(runs_dir):
    at = open_page("app_pages/8_Compare.py")
    assert any("No data loaded yet" in i.value for i in at.info)


def test_compare_with_no_run_points_to_train(private_runs, small_dataset):
    private_runs(0)
    at = open_page("app_pages/8_Compare.py", dataset=small_dataset)
    assert any("No model has been trained" in i.value for i in at.info)
    assert not at.dataframe


def test_compare_one_run_shows_its_row_and_asks_for_another(private_runs, small_dataset):
    private_runs(1)
    at = open_page("app_pages/8_Compare.py", dataset=small_dataset)
    assert any("Only one run" in i.value for i in at.info)
    table = at.dataframe[0].value
    assert list(table["run"]) == ["tiny-sasrec"]
    assert len(at.get("plotly_chart")) >= 1  # its metrics next to the baselines
    at = open_page("app_pages/8_Compare.py", dataset=small_dataset, tab="For whom is each run better?")
    assert len(at.get("plotly_chart")) >= 2  # the breakdowns render for one run too
    at = open_page("app_pages/8_Compare.py", dataset=small_dataset, tab="Two runs head to head")
    assert any("Train a second run" in i.value for i in at.info)


def test_compare_two_runs_table_charts_and_side_by_side(private_runs, small_dataset):
    private_runs(2)
    at = open_page("app_pages/8_Compare.py", dataset=small_dataset)
    table = at.dataframe[0].value
    assert len(table) == 2 and set(table["run"]) == {"tiny-sasrec", "tiny-sasrec-learned"}
    assert {"setup", "NDCG@10 (95% CI)", "HR@10 (95% CI)", "MRR (95% CI)", "AUC (95% CI)", "GAUC (95% CI)",
            "training time", "parameters", "device", "data fingerprint"} <= set(table.columns)
    for cell in [*table["AUC (95% CI)"], *table["GAUC (95% CI)"]]:  # "0.8123 (0.8010–0.8240)"
        value, lo, hi = (float(x) for x in cell.replace("(", "").replace(")", "").replace("–", " ").split())
        assert 0 <= lo <= value <= hi <= 1
    assert "Test metrics of every run" in "\n".join(c.proto.spec for c in at.get("plotly_chart"))
    frames = [d.value for d in at.dataframe]
    paired = next(f for f in frames if "verdict (NDCG@10)" in f.columns)
    assert len(paired) == 1 + 3 and set(paired["verdict (NDCG@10)"]) <= {"better", "worse", "within chance"}
    assert {c.split(" vs ")[0] for c in paired.columns if " vs " in c} == {"HR@10", "NDCG@10", "MRR", "AUC", "GAUC"}
    assert any(b.label == "Download runs table (CSV)" for b in at.get("download_button"))
    at = open_page("app_pages/8_Compare.py", dataset=small_dataset, tab="For whom is each run better?")
    joined = "\n".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "by history length" in joined and "temporal segment" in joined
    metric_box = next(box for box in at.selectbox if box.label == "Metric")
    assert list(metric_box.options) == list(compare.COMPARE_METRICS)  # AUC and GAUC too
    metric_box.set_value("AUC").run()  # AUC per history length and per segment, with whiskers
    assert not at.exception, at.exception
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert [s["layout"]["title"]["text"].split("<")[0] for s in specs] == [
        "AUC by history length", "AUC by the user's temporal segment"]
    assert all(s["data"] for s in specs)  # bars drawn, not the "no values" placeholder
    at = open_page("app_pages/8_Compare.py", dataset=small_dataset, tab="One user, two runs")
    joined = "\n".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "Where the two runs agree" in joined and "Which past events each run relies on" in joined
    frames = [d.value for d in at.dataframe]
    side = next(f for f in frames if "A: item" in f.columns)
    assert len(side) == 10 and "B: item" in side.columns
    events = next(f for f in frames if "lag" in f.columns)
    assert {"A", "B"} <= set(events.columns)
    assert sorted(events[["A", "B"]].notna().sum()) == [12, len(events)]  # windows of 12 and 20 events, aligned
    at.radio[0].set_value("top").run()  # each run's own top recommendation
    assert not at.exception, at.exception
    at.text_input[0].set_value("no-such-user").run()
    assert not at.exception and any("no-such-user" in e.value for e in at.error)


def test_compare_time_aware_and_plain_run(private_runs, small_dataset):
    """A time-aware run next to a plain one: the table names its options, the head-to-head gives a verdict, and
    its top-K on the page is the one scored with times (recommend.py's, asked at the held-out event's time)."""
    from seqrec_core.recommend import get_recommendations
    from seqrec_core.runs import load_run

    root = private_runs(("tiny-sasrec", TIMED_RUN))
    at = open_page("app_pages/8_Compare.py", dataset=small_dataset)
    runs_table = at.dataframe[0].value.set_index("run")
    assert "time features" in runs_table.loc[TIMED_RUN, "setup"] and "loss gbce" in runs_table.loc[TIMED_RUN, "setup"]
    assert "time features" not in runs_table.loc["tiny-sasrec", "setup"]
    options = next(d.value for d in at.dataframe if "family" in d.value.columns and "run" in d.value.columns)
    assert {"time_features", "loss", "max_len"} <= set(options.columns) and "dropout" not in options.columns
    next(t for t in at.toggle if t.label.startswith("Also show the options")).set_value(True).run()
    assert not at.exception, at.exception
    options = next(d.value for d in at.dataframe if "family" in d.value.columns and "run" in d.value.columns)
    assert "dropout" in options.columns and "train: lr" in options.columns

    at = open_page("app_pages/8_Compare.py", dataset=small_dataset, tab="Two runs head to head")
    next(s for s in at.selectbox if s.label == "Run A").set_value(TIMED_RUN).run()
    assert not at.exception, at.exception
    head = next(d.value for d in at.dataframe if "verdict" in d.value.columns).set_index("metric")
    assert list(head.index) == ["NDCG@10", "HR@10"]
    assert set(head["verdict"]) <= {"A beats B", "B beats A", "no clear difference"}
    for diff, interval in zip(head["A − B"], head["95% interval"], strict=True):
        lo, hi = (float(x) for x in interval.split(" to "))
        assert lo <= float(diff) <= hi
    assert any("Run A minus run B" in c.proto.spec for c in at.get("plotly_chart"))
    at = open_page("app_pages/8_Compare.py", dataset=small_dataset, tab="One user, two runs")
    next(s for s in at.selectbox if s.label == "Run A").set_value(TIMED_RUN).run()
    assert not at.exception, at.exception
    assert any("time-aware runs at that event's time" in m.value for m in at.markdown)

    user = at.text_input[0].value
    served = get_recommendations(load_run(root / TIMED_RUN).scorer(), small_dataset.sequences, user, 10,
                                 exclude_seen=at.toggle[0].value, holdout=True)
    side = next(d.value for d in at.dataframe if "A: item" in d.value.columns)
    assert side["A: score"].to_numpy() == pytest.approx(served["score"].to_numpy(), rel=1e-5)
    events = next(d.value for d in at.dataframe if "lag" in d.value.columns)
    assert {"A", "B"} <= set(events.columns) and events["A"].notna().sum() == min(16, len(events))
    at.radio[0].set_value("top").run()
    assert not at.exception, at.exception


def test_train_page_family_selector_shows_the_familys_options(runs_dir, small_dataset):
    from seqrec_core.models import MODEL_FAMILIES

    at = open_page("app_pages/3_Train.py", dataset=small_dataset)
    family = next(s for s in at.selectbox if s.label == "Model family")
    assert set(family.options) == set(MODEL_FAMILIES)
    labels = {w.label for kind in ("selectbox", "number_input", "slider", "select_slider") for w in at.get(kind)}
    assert {"Hidden size", "Positions", "Layers"} <= labels  # sasrec's own config fields
    assert "Time budget (s)" in labels and any(b.label == "Start training" for b in at.button)
    for name in MODEL_FAMILIES:
        family = next(s for s in at.selectbox if s.label == "Model family")
        family.set_value(name).run()
        assert not at.exception, (name, at.exception)
        assert any(name in m.value for m in at.markdown), name


def test_train_page_passes_changed_family_options_and_refuses_bad_ones(runs_dir, small_dataset, monkeypatch):
    from seqrec_core.jobs import runner

    calls = []

    def fake_start(spec, root, **kw):  # noqa: ANN001, ANN003, ANN202 - never train in an AppTest
        calls.append(spec)
        return runner.Job(name=kw["name"], folder=kw["folder"], run_dir=root / "fake", pid=0, started=0.0,
                          dataset=small_dataset.name, fingerprint=small_dataset.fingerprint)

    monkeypatch.setattr(runner, "start_job", fake_start)
    at = open_page("app_pages/3_Train.py", dataset=small_dataset)
    next(w for w in at.select_slider if w.label == "Hidden size").set_value(32)
    next(w for w in at.selectbox if w.label == "Positions").set_value("learned")
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, at.exception
    spec = calls[-1]
    options = spec.model_options
    assert spec.family == "sasrec" and options["hidden_size"] == 32 and options["positions"] == "learned"
    assert "num_heads" not in options and "dropout" not in options  # unchanged options keep the config's defaults
    assert spec.train.max_len == 50 and spec.train.time_budget == 120 and "tied_output" not in options  # auto
    assert spec.analyze is not None  # the run is analysed after training unless the person turns it off
    assert spec.data.fingerprint == small_dataset.fingerprint and Path(spec.data.prepared).is_file()

    next(w for w in at.selectbox if w.label == "Loss").set_value("sampled").run()  # negatives count now
    next(w for w in at.number_input if w.label == "Negatives per positive").set_value(0)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception and len(calls) == 1  # refused: no job started
    assert any("num_negatives" in e.value for e in at.error)

    fresh = open_page("app_pages/3_Train.py", dataset=small_dataset)
    next(w for w in fresh.selectbox if w.label == "Output table tied to the inputs").set_value("no")
    next(w for w in fresh.number_input if w.label == "Weight averaging (decay)").set_value(0.99)
    next(t for t in fresh.toggle if t.label == "Analyse the run when training finishes").set_value(False)
    next(b for b in fresh.button if b.label == "Start training").click().run()
    assert len(calls) == 2 and calls[-1].model_options["tied_output"] is False
    assert calls[-1].train.weight_average == pytest.approx(0.99)
    assert calls[-1].train.weight_decay == 0.0 and calls[-1].analyze is None


def test_start_job_hands_the_spec_over_as_a_file(runs_dir, small_dataset, tmp_path, monkeypatch):
    """The job process gets the spec file, never options turned into command-line strings; the file reads back
    as the same spec (three-way and boolean options included)."""
    from seqrec_core.jobs import runner
    from seqrec_core.jobs.spec import TrainSpec, load_spec
    from seqrec_core.training.config import TrainConfig

    seen = []

    class FakePopen:
        pid = 0

        def __init__(self, cmd, **_kw):  # noqa: ANN001
            seen.append(cmd)

    monkeypatch.setattr(runner.subprocess, "Popen", FakePopen)
    name, folder = runner.claim_run_folder(tmp_path, "sasrec")
    spec = TrainSpec(data=runner.prepare_data(small_dataset, tmp_path), family="sasrec", out=str(tmp_path / name),
                     model_options={"tied_output": False, "time_features": True, "hidden_size": 32},
                     train=TrainConfig(epochs=3))
    job = runner.start_job(spec, tmp_path, name=name, folder=folder)
    (cmd,) = seen
    assert cmd[1:5] == ["-m", "seqrec_core", "train", "--spec"] and "--tied-output" not in cmd
    assert load_spec(cmd[5]) == spec and job.run_dir == tmp_path / name and job.kind == "train"

"""AppTest of every page: each renders without exceptions, shows what it promises, and guards missing inputs."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_page(page: str | None = None, dataset=None, run: Path | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if dataset is not None:
        at.session_state["dataset"] = dataset
    if run is not None:
        at.session_state["run_path"] = str(run)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.title]
    parts += [i.value for i in at.info] + [e.value for e in at.error] + [w.value for w in at.warning]
    return "\n".join(str(p) for p in parts)


def test_home_loads_demo_data(runs_dir):
    at = open_page()
    assert "SeqRec Lens" in texts(at)
    assert "dataset" not in at.session_state
    at.button[0].click().run()
    assert not at.exception
    ds = at.session_state["dataset"]
    assert 1_500 <= ds.sequences.n_users <= 2_500
    assert any("Demo data loaded" in s.value for s in at.success)
    # The shipped demo model is installed into the runs folder and put in use, so Explain works at once.
    assert at.session_state["run_path"] == str(runs_dir / "demo-sasrec-pretrained")
    assert any("pre-trained SASRec" in s.value for s in at.success)


@pytest.mark.parametrize("page", ["app_pages/3_Train.py", "app_pages/4_Evaluate.py", "app_pages/7_Recommendations.py"])
def test_pages_without_data_say_what_to_do_first(runs_dir, page):
    at = open_page(page)
    assert any("No data loaded yet" in i.value for i in at.info)


def test_data_page_summarises_dataset(runs_dir, small_dataset):
    at = open_page("app_pages/1_Data.py", dataset=small_dataset)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Users"] == f"{small_dataset.sequences.n_users:,}"
    assert labels["Events"] == f"{small_dataset.sequences.n_events:,}"
    assert len(at.get("plotly_chart")) >= 3
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert all('"title"' in spec for spec in titles)


def test_data_page_upload_csv_and_bad_file(runs_dir):
    rows = ["user,item,timestamp"] + [f"u{u},i{(u * 7 + k) % 13},{1_700_000_000 + 3600 * k}" for u in range(30)
                                      for k in range(6)]
    at = open_page("app_pages/1_Data.py")
    at.get("file_uploader")[0].set_value(("clicks.csv", "\n".join(rows).encode(), "text/csv"))
    at.run()
    assert not at.exception
    next(b for b in at.button if b.label == "Use this data").click().run()
    assert not at.exception, at.exception
    assert at.session_state["dataset"].sequences.n_users == 30

    at = open_page("app_pages/1_Data.py")
    at.get("file_uploader")[0].set_value(("junk.csv", b"\x00\x01\x02\xff\xfe binary", "text/csv"))
    at.run()
    assert not at.exception
    assert at.error and "junk.csv" in at.error[0].value


def test_train_page_lists_runs(runs_dir, small_dataset, tiny_run):
    at = open_page("app_pages/3_Train.py", dataset=small_dataset)
    assert any(b.label == "Start training" for b in at.button)
    table = at.dataframe[0].value
    assert "tiny-sasrec" in set(table["run"])


def test_train_page_disables_options_the_log_cannot_support(runs_dir, small_dataset, tmp_path):
    from seqrec_core.data.dataset import DataSource, open_dataset

    timed = open_page("app_pages/3_Train.py", dataset=small_dataset)
    assert not next(c for c in timed.checkbox if c.label == "Time features").disabled
    path = tmp_path / "order_only.txt"
    path.write_text("".join(f"{u} " + " ".join(str(1 + (u * 7 + k) % 40) for k in range(12)) + "\n"
                            for u in range(1, 31)))
    order_only = open_dataset(DataSource(path=str(path), format="seqtxt"))
    at = open_page("app_pages/3_Train.py", dataset=order_only)
    box = next(c for c in at.checkbox if c.label == "Time features")
    assert box.disabled and "no timestamps" in box.help


def test_train_page_disables_options_the_chosen_loss_never_reads(runs_dir, small_dataset):
    at = open_page("app_pages/3_Train.py", dataset=small_dataset)
    inputs = {w.label: w for w in [*at.number_input, *at.selectbox, *at.slider]}
    loss = inputs["Loss"]
    assert loss.value == "full" and not loss.disabled
    for label in ("Negatives per positive", "Negative sampling", "gBCE calibration t"):
        assert inputs[label].disabled and "Not available here" in inputs[label].help, label
    assert not inputs["Label smoothing"].disabled
    loss.set_value("gbce").run()
    inputs = {w.label: w for w in [*at.number_input, *at.selectbox, *at.slider]}
    for label in ("Negatives per positive", "Negative sampling", "gBCE calibration t"):
        assert not inputs[label].disabled, label
    assert inputs["Label smoothing"].disabled and "full softmax only" in inputs["Label smoothing"].help
    at = open_page("app_pages/3_Train.py", dataset=small_dataset)
    next(w for w in at.selectbox if w.label == "Model family").set_value("gru4rec").run()
    assert not any(w.label == "Loss" for w in at.selectbox)  # a family without a loss choice shows none
    assert not [w.label for w in [*at.number_input, *at.selectbox, *at.slider] if w.disabled]


def train_page_with_finished_job(runs_dir, small_dataset, name: str, events: list[dict],
                                 start: dict | None = None) -> AppTest:
    """The Train page showing one train job of this session (a dead pid: finished) whose progress file holds a
    start event (``start`` added to it) and then ``events``."""
    import json

    folder = runs_dir / ".jobs" / name
    folder.mkdir(parents=True)
    job = {"name": name, "folder": str(folder), "run_dir": str(runs_dir / name), "pid": 2**22 + 7, "started": 1.0,
           "dataset": "small", "fingerprint": small_dataset.fingerprint, "kind": "train",
           "analyze_after": any(e.get("event") == "analysis_done" for e in events)}
    (folder / "job.json").write_text(json.dumps(job))
    lines = [{"event": "start", "device": "cpu", "n_params": 1000, **(start or {})}, *events]
    (folder / "progress.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["dataset"] = small_dataset
    at.session_state["train_jobs"] = [name]
    at.run()
    at.switch_page("app_pages/3_Train.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_train_page_says_how_far_back_a_finished_run_looks(runs_dir, small_dataset):
    """A finished train job whose analysis found long histories unused: the job panel warns and says what to try
    (issue 15), next to the finished metrics."""
    import pandas as pd

    from seqrec_core.analysis.reach import describe_reach

    truncation = pd.DataFrame({"k": ["20", "all"], "NDCG@10": [0.2005, 0.207]})
    reach = describe_reach(truncation, 0.53, 0.9, 50, {"positions": "learned", "dropout": 0.4, "item_dropout": 0.2})
    at = train_page_with_finished_job(runs_dir, small_dataset, "sasrec-reach", [
        {"event": "done", "stopped_reason": "converged", "metrics": {"test": {"NDCG@10": 0.2, "HR@10": 0.3}}},
        {"event": "analysis_done", "seconds": 3.0, "parts": {}, "context_reach": reach.to_dict()}])
    warning = next(w.value for w in at.warning if "How far back the model looks" in w.value)
    assert "relies on the last 20 events" in warning and "--positions rotary" in warning
    assert any("Finished" in s.value for s in at.success)


def test_train_page_says_how_the_job_computes(runs_dir, small_dataset):
    """The job panel names the precision and the CPU threads the job started with (issue 18)."""
    at = train_page_with_finished_job(runs_dir, small_dataset, "sasrec-compute", [
        {"event": "done", "stopped_reason": "converged", "metrics": {"test": {"NDCG@10": 0.2, "HR@10": 0.3}}}],
        start={"precision": "fp32", "cpu_threads": 1})
    head = next(m.value for m in at.markdown if "sasrec-compute" in m.value)
    assert "**fp32** (this CPU has no native bf16 products)" in head and "1 CPU thread (" in head


def test_train_page_judges_a_finished_run_instead_of_a_green_finished(runs_dir, small_dataset):
    """A job whose model is below the best baseline is not reported in green: the verdict says so and what helps."""

    from seqrec_core.training.verdict import get_training_verdict

    verdict = get_training_verdict(stopped_reason="time_budget", epochs_trained=1, best_epoch=1, patience=10,
                                   model_score=0.01, baseline_scores={"popularity": 0.03}, on_gpu=False)
    at = train_page_with_finished_job(runs_dir, small_dataset, "sasrec-verdict", [
        {"event": "done", "stopped_reason": "time_budget", "verdict": verdict.to_json(),
         "metrics": {"test": {"NDCG@10": 0.01, "HR@10": 0.02}}}])
    assert not any("Finished" in s.value for s in at.success)
    warning = next(w.value for w in at.warning if "Training verdict" in w.value)
    assert "below the best baseline" in warning and "popularity" in warning and "first epoch" in warning


def test_evaluate_page_compares_with_baselines(runs_dir, small_dataset, tiny_run):
    at = open_page("app_pages/4_Evaluate.py", dataset=small_dataset, run=tiny_run)
    verdicts = [b.value for b in [*at.warning, *at.success] if "Training verdict" in b.value]
    assert len(verdicts) == 1 and "epoch" in verdicts[0]  # 2 epochs: a limit or a baseline held it back, said so
    table = at.dataframe[0].value
    assert {"popularity", "markov", "itemknn"} <= set(table["model"])
    assert table["NDCG@10"].between(0, 1).all()
    assert any("included" in m.value for m in at.markdown)
    at.toggle[0].set_value(True).run()
    assert not at.exception
    assert any("excluded" in m.value for m in at.markdown)


def test_recommendations_page_shows_user_and_heldout(runs_dir, small_dataset, tiny_run):
    at = open_page("app_pages/7_Recommendations.py", dataset=small_dataset, run=tiny_run)
    labels = {m.label for m in at.metric}
    assert {"Events in history", "Held-out (real next) item", "Its rank"} <= labels
    recs = at.dataframe[0].value
    assert len(recs) == 10 and recs["score"].is_monotonic_decreasing
    at.text_input[0].set_value("no-such-user").run()
    assert not at.exception
    assert at.error and "no-such-user" in at.error[0].value


def test_a_stale_newer_run_is_skipped_by_default_but_explains_itself(tiny_run, small_dataset, tmp_path, monkeypatch):
    """A newer run whose weights no longer fit its family's layout must not put an error box on every page."""
    import json
    import shutil

    root = tmp_path / "runs"
    good = shutil.copytree(tiny_run, root / "good")
    stale = shutil.copytree(tiny_run, root / "stale")
    cfg = json.loads((stale / "config.json").read_text())
    cfg["model"]["hidden_size"] *= 2  # weights saved for another width: they cannot load into this config
    cfg["created"] = "2999-01-01T00:00:00+0000"  # the newest run
    (stale / "config.json").write_text(json.dumps(cfg))
    monkeypatch.setenv("SEQREC_RUNS_DIR", str(root))
    at = open_page("app_pages/7_Recommendations.py", dataset=small_dataset)
    assert not at.error and at.session_state["run_path"] == str(good)
    at = open_page(dataset=small_dataset, run=stale)  # picked on purpose: Home says why it cannot be used
    assert any("do not belong together" in e.value and "retrain it" in e.value for e in at.error)

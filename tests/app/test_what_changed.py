"""AppTest of the Recommendations page's "What changed" section on a tiny resumed pair: a run trained before the
demo's planted taste shift, and its update on the log with the shift (both made once per module, in seconds)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE = "app_pages/7_Recommendations.py"
TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 1}


@pytest.fixture(scope="module")
def resumed_pair(tmp_path_factory: pytest.TempPathFactory, runs_dir: Path):  # noqa: ANN201
    """(runs folder, full dataset, truth): "before-shift" trained on the log before the shift, "after-shift"
    resumed from it on the whole log."""
    from seqrec_core.data.dataset import DataSource, open_dataset
    from seqrec_core.data.synthetic import make_demo_events
    from seqrec_core.jobs import run_training_job
    from seqrec_core.training import TrainConfig
    from seqrec_core.training.warm_start import resume_training

    root = tmp_path_factory.mktemp("what_changed")
    events, truth = make_demo_events(n_users=150, events_per_user=30, n_items=60, seed=4, shift_weeks=3)
    events[events["timestamp"] < truth.shift_start].to_parquet(root / "old.parquet", index=False)
    events.to_parquet(root / "full.parquet", index=False)
    old = open_dataset(DataSource(path=str(root / "old.parquet"), format="parquet"))
    full = open_dataset(DataSource(path=str(root / "full.parquet"), format="parquet"))
    runs = root / "runs"
    cfg = TrainConfig(epochs=3, batch_size=32, max_len=20, device="cpu", seed=0, lr=5e-3)
    run_training_job(old.sequences, "sasrec", TINY, cfg, runs / "before-shift", old.info())
    resume_training(runs / "before-shift", full.sequences, runs / "after-shift", data_info=full.info(), epochs=3)
    return runs, full, truth


def open_page(runs: Path, dataset, run: Path, monkeypatch: pytest.MonkeyPatch, truth=None,  # noqa: ANN001
              compare: bool = True) -> AppTest:
    monkeypatch.setenv("SEQREC_RUNS_DIR", str(runs))
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["dataset"] = dataset
    at.session_state["run_path"] = str(run)
    if truth is not None:
        at.session_state["planted_shift"] = {"users": truth.shift_users, "items": truth.shift_items}
    at.session_state["user"] = truth.shift_users[0] if truth is not None else dataset.sequences.vocab.user_ids[0]
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    if compare:
        at.toggle(key="what_changed_go").set_value(True).run()
        assert not at.exception, at.exception
    return at


def test_resumed_run_offers_its_old_run_and_computes_only_when_asked(resumed_pair, monkeypatch) -> None:
    runs, full, truth = resumed_pair
    at = open_page(runs, full, runs / "after-shift", monkeypatch, truth, compare=False)
    assert any(h.value == "What changed since before-shift" for h in at.subheader)
    assert at.selectbox(key="what_changed_old").value == "before-shift (resumed from)"
    assert not at.toggle(key="what_changed_go").value
    assert not any("newest behaviour" in c.proto.spec for c in at.get("plotly_chart"))


def test_resumed_run_shows_shift_items_entering_the_affected_users_top_k(resumed_pair, monkeypatch) -> None:
    runs, full, truth = resumed_pair
    at = open_page(runs, full, runs / "after-shift", monkeypatch, truth)
    line = next(m.value for m in at.markdown if m.value.startswith("**Users of the planted taste shift:**"))
    after, total = (int(x.replace(",", "")) for x in line.split("now get")[0].split(":**")[1].split(" of "))
    before = int(line.split("(before: ")[1].split(")")[0].replace(",", ""))
    assert before == 0  # the old run cannot rank items it never saw
    assert total == len(set(truth.shift_users) & set(full.sequences.vocab.user_ids)) and after >= total // 2, line
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    entered = next(c for c in charts if "entered users' top-K" in c["layout"]["title"]["text"])
    labels = entered["data"][0]["y"]
    assert any(title in label for label in labels for title in ("Smart plug", "Smart bulb", "Smart thermostat"))
    metrics = next(c for c in charts if "newest behaviour" in c["layout"]["title"]["text"])
    assert {t["name"] for t in metrics["data"]} == {"before-shift", "after-shift"}
    change = at.dataframe[-1].value  # the user's two lists side by side
    assert list(change.columns[:4]) == ["rank", "before", "before_title", "after"]
    assert change["change"].str.contains("new item entered").any()  # the first affected user gets shift items


def test_without_truth_the_log_names_the_users_who_took_up_new_items(resumed_pair, monkeypatch) -> None:
    runs, full, _truth = resumed_pair
    at = open_page(runs, full, runs / "after-shift", monkeypatch)
    assert any(m.value.startswith("**Users who took up new items since the old run:**") for m in at.markdown)


def test_a_run_trained_from_scratch_offers_a_picker_and_computes_nothing(resumed_pair, monkeypatch) -> None:
    runs, full, truth = resumed_pair
    from seqrec_core.data.dataset import DataSource, open_dataset

    old = open_dataset(DataSource(path=str(runs.parent / "old.parquet"), format="parquet"))
    at = open_page(runs, old, runs / "before-shift", monkeypatch, compare=False)
    box = at.selectbox(key="what_changed_old")
    assert box.value == "(none)" and "after-shift" in box.options
    assert not any(h.value.startswith("What changed since") for h in at.subheader)

"""seqrec_core.compare on two tiny runs of the small demo: one protocol for every run, tables that reproduce the
trainer's own numbers, and two runs' top-K and attributions aligned on the same user."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from compare_runs import SECOND_RUN, long_user, train_second_run  # tests/compare_runs.py

from seqrec_core import compare
from seqrec_core.errors import InputError


@pytest.fixture(scope="module")
def two_runs(runs_dir, small_dataset, tiny_run):
    from seqrec_core.runs import load_run

    second = train_second_run(runs_dir, small_dataset)
    return {p.name: load_run(p) for p in (tiny_run, second)}


@pytest.fixture(scope="module")
def results(two_runs, small_dataset):
    from seqrec_core.models.baselines import fit_baselines

    scorers = {name: run.scorer() for name, run in two_runs.items()} | fit_baselines(small_dataset.sequences)
    return compare.evaluate_scorers(scorers, small_dataset.sequences, exclude_seen=False)


def test_run_meta_reads_json_and_header_only(two_runs, small_dataset):
    for name, run in two_runs.items():
        meta = compare.get_run_meta(run.path)
        assert meta.name == name and meta.family == "sasrec"
        assert meta.fingerprint == small_dataset.fingerprint
        assert meta.n_params == sum(p.numel() for p in run.model.parameters())
        assert meta.train_seconds > 0 and meta.device == "cpu" and meta.epochs >= 1
    second = compare.get_run_meta(two_runs[SECOND_RUN].path)
    assert second.setup.startswith("sasrec · ") and "positions learned" in second.setup
    assert "max len 12" in second.setup and "hidden size 16" in second.setup
    assert "dropout" not in second.setup and "time features" not in second.setup  # defaults are left out
    assert second.options["positions"] == "learned" and second.options["train: seed"] == 1


def test_list_run_metas_filters_by_fingerprint(runs_dir, two_runs, small_dataset):
    names = {m.name for m in compare.list_run_metas(runs_dir, small_dataset.fingerprint)}
    assert set(two_runs) <= names
    assert compare.list_run_metas(runs_dir, "no-such-fingerprint") == []


def test_damaged_inputs(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"\x00junk")
    assert compare.count_parameters(tmp_path / "model.safetensors") is None
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="config.json"):
        compare.get_run_meta(tmp_path)


def test_runs_table_reproduces_the_trainers_test_metrics(two_runs, results):
    metrics = compare.get_metrics_with_ci(list(results.values()), n_boot=300)
    assert set(metrics.loc[metrics["kind"] == "baseline", "model"]) == {"popularity", "markov", "itemknn"}
    metas = [compare.get_run_meta(run.path) for run in two_runs.values()]
    table = compare.get_runs_table(metas, metrics)
    assert list(table["run"]) == list(two_runs) and len(table) == 2
    for _, row in table.iterrows():
        recorded = json.loads((Path(row["path"]) / "metrics.json").read_text())["test"]  # exclude_seen was off
        for m in compare.COMPARE_METRICS:  # AUC and GAUC too: training records them from the same ranking
            value, lo, hi = row[m], row[f"{m} lo"], row[f"{m} hi"]
            assert value == pytest.approx(recorded[m], abs=1e-9)
            assert 0 <= lo <= value <= hi <= 1
    assert (table["test users"] == len(next(iter(results.values())).users)).all()
    shown = compare.runs_table_for_display(table)
    assert shown["NDCG@10 (95% CI)"].str.match(r"^\d\.\d{4} \(\d\.\d{4}–\d\.\d{4}\)$").all()
    assert shown["GAUC (95% CI)"].str.match(r"^\d\.\d{4} \(\d\.\d{4}–\d\.\d{4}\)$").all()
    # a run evaluated before AUC existed (no AUC columns stored) says so instead of showing a number
    old = compare.runs_table_for_display(compare.get_runs_table(metas, metrics.drop(columns=["AUC", "AUC lo"])))
    assert set(old["AUC (95% CI)"]) == {compare.NO_AUC} and old["HR@10 (95% CI)"].str.match(r"^\d\.").all()
    # a run without metrics keeps its row (NaN), it does not vanish
    partial = compare.get_runs_table(metas, metrics[metrics["model"] != SECOND_RUN])
    assert len(partial) == 2 and np.isnan(partial.loc[partial["run"] == SECOND_RUN, "NDCG@10"].iloc[0])


def test_breakdowns_cover_every_test_user_once(results, small_dataset):
    from seqrec_core.patterns.report import get_pattern_report
    from seqrec_core.patterns.segments import SEGMENTS

    n_test = len(next(iter(results.values())).users)
    by_len = compare.get_history_length_across(list(results.values()), n_boot=100)
    assert (by_len.groupby("model", observed=True)["users"].sum() == n_test).all()
    segments = get_pattern_report(small_dataset.events).per_user
    by_seg = compare.get_segments_across(list(results.values()), small_dataset.sequences, segments, n_boot=100)
    assert set(by_seg["model"]) == set(results)
    assert (by_seg.groupby("model")["users"].sum() == n_test).all()
    assert set(by_seg["segment"]) <= set(SEGMENTS)
    assert ((by_seg["NDCG@10 lo"] <= by_seg["NDCG@10"] + 1e-12)
            & (by_seg["NDCG@10"] <= by_seg["NDCG@10 hi"] + 1e-12)).all()


def test_topk_side_by_side_marks_shared_and_heldout(two_runs, small_dataset):
    user = long_user(small_dataset)
    scorers = {name: run.scorer() for name, run in two_runs.items()}
    frame = compare.get_topk_comparison(scorers, small_dataset.sequences, user, 10, exclude_seen=False)
    a, b = (frame[frame["run"] == n] for n in two_runs)
    for part in (a, b):
        assert list(part["rank"]) == list(range(1, 11)) and part["score"].is_monotonic_decreasing
    shared = set(a["item_id"]) & set(b["item_id"])
    assert set(a.loc[a["in_all"], "item_id"]) == shared == set(b.loc[b["in_all"], "item_id"])
    seqs = small_dataset.sequences
    heldout = seqs.vocab.item_id(int(seqs.sequences[seqs.vocab.user_index(user)][-1]))
    assert (frame["heldout"] == (frame["item_id"] == heldout)).all()
    side = compare.topk_side_by_side(frame, list(two_runs), {n: lab for n, lab in zip(two_runs, "AB", strict=True)})
    assert len(side) == 10 and {"A: item", "A: id", "A: score", "B: item"} <= set(side.columns)
    assert list(side["A: id"]) == list(a["item_id"])
    assert (side["A: item"].str.contains("✓") == a["in_all"].to_numpy()).all()
    assert (side["B: item"].str.contains("★") == b["heldout"].to_numpy()).all()
    with pytest.raises(InputError, match="no-such-user"):
        compare.get_topk_comparison(scorers, seqs, "no-such-user", 10)


def test_attributions_align_on_lag_across_windows(two_runs, small_dataset):
    user = long_user(small_dataset)
    aligned, targets = compare.get_attribution_comparison(two_runs, small_dataset.sequences, user, "heldout",
                                                          steps=20)
    seqs = small_dataset.sequences
    history = seqs.sequences[seqs.vocab.user_index(user)][:-1]
    first, second = two_runs
    assert len(aligned) == min(20, len(history)) and len(history) > 12  # the longer window sets the rows
    assert list(aligned["item_id"]) == [seqs.vocab.item_id(int(i)) for i in history[-len(aligned):]]
    assert list(aligned["lag"]) == list(range(len(aligned), 0, -1))
    assert aligned[first].notna().all()
    assert aligned[second].notna().sum() == 12 and aligned.loc[aligned["lag"] > 12, second].isna().all()
    assert targets["target_item"].nunique() == 1  # "heldout": the same target for both runs
    for row in targets.itertuples(index=False):  # IG completeness per run, on the aligned column
        gap = row.target_score - row.baseline_score
        assert aligned[row.run].sum() == pytest.approx(gap, abs=abs(row.convergence_delta) + 1e-3)
    from seqrec_core.explain.attribution import attribute

    other = attribute(two_runs[second], seqs, seqs.vocab.user_ids[0], "heldout", "ig", steps=10)
    mine = attribute(two_runs[first], seqs, user, "heldout", "ig", steps=10)
    with pytest.raises(InputError, match="another history"):
        compare.align_attributions({first: mine, second: other})


def test_figures_have_titles_and_say_when_empty(results, two_runs, small_dataset):
    from seqrec_core.viz.plot_compare import plot_attribution_side_by_side, plot_runs_metrics, plot_topk_overlap

    metrics = compare.get_metrics_with_ci(list(results.values()), n_boot=100)
    fig = plot_runs_metrics(metrics, runs=list(two_runs))
    assert len(fig.data) == 3 and fig.layout.title.text
    assert list(fig.data[0].y[:2]) == list(two_runs)  # runs first, baselines after
    assert len(fig.data[0].y) == 5
    user = long_user(small_dataset)
    frame = compare.get_topk_comparison({n: r.scorer() for n, r in two_runs.items()}, small_dataset.sequences, user, 5)
    overlap = plot_topk_overlap(frame, list(two_runs))
    assert overlap.layout.title.text
    marks = [t for t in overlap.data if t.mode == "markers+text"]
    assert len(marks) == 2 and isinstance(marks[0].customdata[0][1], float)  # hover formats the score as a number
    aligned, targets = compare.get_attribution_comparison(two_runs, small_dataset.sequences, user, None, steps=10)
    fig = plot_attribution_side_by_side(aligned, list(two_runs), targets)
    assert len(fig.data) == 2
    for empty in (plot_runs_metrics(pd.DataFrame()), plot_attribution_side_by_side(pd.DataFrame(), ["x"]),
                  plot_topk_overlap(pd.DataFrame(), ["a", "b"])):
        assert "no data" in empty.layout.annotations[0].text


def test_paired_differences_are_exact_for_known_ranks(results):
    from dataclasses import replace

    ref = next(iter(results.values()))
    twin = replace(ref, name="twin")  # the same ranks: difference exactly 0, never "better" or "worse"
    perfect = replace(ref, name="perfect", ranks=np.ones_like(ref.ranks))  # every target ranked first
    table = compare.get_paired_differences([ref, twin, perfect], ref.name, n_boot=200).set_index("model")
    assert table.loc["twin", ["NDCG@10 diff", "NDCG@10 diff lo", "NDCG@10 diff hi"]].tolist() == [0.0, 0.0, 0.0]
    assert table.loc["twin", "verdict"] == "within chance"
    expected = 1.0 - ref.metrics["NDCG@10"]
    assert table.loc["perfect", "NDCG@10 diff"] == pytest.approx(expected)
    assert table.loc["perfect", "NDCG@10 diff lo"] <= expected <= table.loc["perfect", "NDCG@10 diff hi"]
    assert table.loc["perfect", "verdict"] == "better"
    shown = compare.paired_differences_for_display(table.reset_index())
    assert shown.loc[shown["model"] == "perfect", "verdict (NDCG@10)"].item() == "better"
    other = replace(ref, name="other", users=ref.users[::-1].copy())
    with pytest.raises(InputError, match="different users"):
        compare.get_paired_differences([ref, other], ref.name)

"""AUC and GAUC from the full ranks: exact per user (ties count half, as scikit-learn does), their means and
intervals, exclude-seen shrinking the candidates, and results stored before AUC existed."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from seqrec_core.errors import InputError
from seqrec_core.evaluation import (
    ALL_METRICS,
    EvalResult,
    bootstrap_intervals,
    evaluate,
    get_metrics_by_history_length,
    get_metrics_table,
    rank_counts,
)
from tests.core.test_evaluation import RandomScorer, make_data, random_data


def sklearn_auc(row: np.ndarray, target: int, excluded: set[int]) -> float:
    """roc_auc_score with the target as the one positive among the rankable items (padding and excluded out)."""
    cols = [j for j in range(1, len(row)) if j == target or j not in excluded]
    return roc_auc_score([1 if j == target else 0 for j in cols], row[cols])


def per_user_auc(ranks, ties, candidates) -> np.ndarray:
    res = EvalResult("x", "test", False, np.arange(len(ranks)), ranks, np.ones(len(ranks), dtype=int), {},
                     n_candidates=candidates, ties=ties)
    return res.per_user("AUC")


def test_auc_equals_sklearn_per_user_with_ties_and_exclusions():
    # rounded scores make ties on purpose; one row is all ties, one row has the target tied at the top
    rng = np.random.default_rng(3)
    scores = np.round(rng.random((6, 12)), 1).astype(np.float32)
    scores[0, 1:] = 0.5
    scores[1, 4] = scores[1, 1:].max()
    targets = np.array([3, 4, 7, 2, 11, 5])
    hists = [np.array([1, 2]), np.array([4, 5, 6]), np.array([8]), np.array([3, 9, 10]), np.array([1]),
             np.array([2, 5])]
    for exclude in (False, True):
        ranks, ties, cands = rank_counts(scores, hists, targets, exclude_seen=exclude)
        ours = per_user_auc(ranks, ties, cands)
        for i, target in enumerate(targets):
            excluded = {int(j) for j in hists[i] if j != target} if exclude else set()
            assert ours[i] == pytest.approx(sklearn_auc(scores[i], int(target), excluded), abs=1e-12)
    assert ties[0] == cands[0] and ours[0] == pytest.approx(0.5)  # all tied: chance, not 0 or 1


def test_torch_counts_match_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((5, 20)), 1).astype(np.float32)
    scores[2, 7] = np.nan
    hists = [rng.integers(1, 20, 4) for _ in range(5)]
    targets = rng.integers(1, 20, 5)
    for exclude in (False, True):
        a = rank_counts(scores, hists, targets, exclude)
        b = rank_counts(torch.from_numpy(scores), hists, targets, exclude)
        for x, y in zip(a, b, strict=True):
            assert x.tolist() == y.tolist()


def test_exclude_seen_shrinks_the_candidates_by_the_distinct_seen_items():
    data = make_data({"a": ["i1", "i2", "i2", "i3", "i4"], "b": ["i5", "i1", "i6", "i2"],
                      "c": ["i3", "i4", "i5", "i6", "i1", "i2"]})
    scorer = RandomScorer(data.vocab.n_items, seed=1)
    full = evaluate(scorer, data, "test", exclude_seen=False)
    shrunk = evaluate(RandomScorer(data.vocab.n_items, seed=1), data, "test", exclude_seen=True)
    split = data.split("test")
    n_items = data.vocab.n_items
    assert full.n_candidates.tolist() == [n_items - 1] * 3
    want = [n_items - 1 - len(set(h.tolist()) - {int(t)}) for h, t in zip(split.histories, split.targets, strict=True)]
    assert shrunk.n_candidates.tolist() == want
    assert all(s < f for s, f in zip(shrunk.n_candidates, full.n_candidates, strict=True))


def test_auc_is_the_mean_and_gauc_weights_by_history_length():
    data = random_data(n_users=40, n_items=25, seed=2)
    res = evaluate(RandomScorer(data.vocab.n_items, seed=4), data, "test")
    per_user = res.per_user("AUC")
    assert res.metrics["AUC"] == pytest.approx(per_user.mean())
    w = res.history_len.astype(float)
    assert res.metrics["GAUC"] == pytest.approx((per_user * w).sum() / w.sum())
    assert res.metrics["GAUC"] != pytest.approx(res.metrics["AUC"])  # the weights matter on this log
    # hand-made: ranks 1 of 10 candidates (AUC 1) and last of 10 (AUC 0); weights 3 and 1
    hand = EvalResult("h", "test", False, np.arange(2), np.array([1, 11]), np.array([3, 1]), {},
                      n_candidates=np.array([10, 10]), ties=np.array([0, 0]))
    assert hand.all_metrics()["AUC"] == pytest.approx(0.5)
    assert hand.all_metrics()["GAUC"] == pytest.approx(0.75)


def test_intervals_contain_the_point_and_gauc_resamples_with_weights():
    data = random_data(n_users=60, n_items=30, seed=5)
    res = evaluate(RandomScorer(data.vocab.n_items, seed=6), data, "test")
    ci = bootstrap_intervals(res, metrics=ALL_METRICS, n_boot=400, seed=0)
    for m in ("AUC", "GAUC"):
        lo, hi = ci[m]
        assert lo < res.metrics[m] < hi
        assert 0.0 <= lo and hi <= 1.0
    # same draws for every metric: a rank metric's interval is unchanged by asking for AUC too
    assert bootstrap_intervals(res, n_boot=400, seed=0)["NDCG@10"] == ci["NDCG@10"]
    table = get_metrics_table([res], n_boot=200)
    assert {"AUC", "AUC lo", "AUC hi", "GAUC", "GAUC lo", "GAUC hi"} <= set(table.columns)
    assert table["GAUC lo"].iloc[0] < table["GAUC"].iloc[0] < table["GAUC hi"].iloc[0]
    by_len = get_metrics_by_history_length([res], metric="GAUC", n_boot=100)
    assert (by_len["lo"] <= by_len["value"] + 1e-12).all() and (by_len["value"] <= by_len["hi"] + 1e-12).all()


def test_a_result_without_counts_has_no_auc_and_says_why():
    old = EvalResult("old", "test", False, np.arange(3), np.array([1, 2, 3]), np.array([2, 3, 4]), {})
    assert not old.has_auc
    old.metrics = old.all_metrics()
    assert "AUC" not in old.metrics and "HR@10" in old.metrics
    with pytest.raises(InputError, match="compute the evaluation again"):
        old.per_user("AUC")
    table = get_metrics_table([old], n_boot=50)
    assert np.isnan(table["AUC"].iloc[0]) and np.isnan(table["GAUC hi"].iloc[0])
    assert table["HR@1"].iloc[0] == pytest.approx(1 / 3)


def test_a_stored_version_1_evaluation_loads_without_auc(tmp_path):
    from seqrec_core.analysis.kinds_eval import RUN, load_evaluation

    class Unit:  # what load_evaluation reads of a StoredUnit: params, folder and the tables
        params = {"exclude_seen": False}
        folder = tmp_path

        @staticmethod
        def table(name):
            if name == "ranks":  # the version-1 columns: no candidates, no ties
                return pd.DataFrame({"model": [RUN, RUN], "user": [0, 1], "rank": [1, 4], "history_len": [2, 5]})
            if name == "metrics":
                return pd.DataFrame({"model": [RUN], "HR@10": [1.0]})
            return pd.DataFrame({"model": [RUN], "bucket": ["1-4"], "metric": ["HR@10"], "value": [1.0]})

    ev = load_evaluation(Unit(), "my_run")
    result = ev.results["my_run"]
    assert not result.has_auc and "AUC" not in result.metrics
    assert result.metrics["MRR"] == pytest.approx((1 + 1 / 4) / 2)


def test_paired_gauc_difference_is_the_weighted_difference():
    from seqrec_core.compare_paired import get_paired_difference

    data = random_data(n_users=50, n_items=30, seed=7)
    a = evaluate(RandomScorer(data.vocab.n_items, seed=1), data, "test")
    b = evaluate(RandomScorer(data.vocab.n_items, seed=2), data, "test")
    table = get_paired_difference(a, b, ("AUC", "GAUC"), n_boot=300).set_index("metric")
    for m in ("AUC", "GAUC"):
        assert table.loc[m, "A"] == pytest.approx(a.metrics[m]) and table.loc[m, "B"] == pytest.approx(b.metrics[m])
        assert table.loc[m, "difference"] == pytest.approx(a.metrics[m] - b.metrics[m])
        assert table.loc[m, "lo"] <= table.loc[m, "difference"] <= table.loc[m, "hi"]


def test_the_report_table_shows_auc_with_its_interval_and_a_dash_when_unknown():
    from seqrec_core.report.sections_run import metrics_table

    data = random_data(n_users=30, n_items=20, seed=8)
    res = evaluate(RandomScorer(data.vocab.n_items, seed=9), data, "test")
    table = metrics_table(get_metrics_table([res], n_boot=100))
    assert table["AUC"].iloc[0].startswith(f"{res.metrics['AUC']:.4f} [") and table["GAUC"].iloc[0].endswith("]")
    old = metrics_table(get_metrics_table([res], n_boot=100).drop(columns=["AUC", "GAUC"]))
    assert old["AUC"].iloc[0] == "—" and old["GAUC"].iloc[0] == "—" and old["MRR"].iloc[0] != "—"

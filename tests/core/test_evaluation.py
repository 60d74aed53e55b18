"""Full-ranking metrics: exact formulas, pessimistic ties, masking, subsampling, bootstrap, buckets."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from seqrec_core.data import build_sequences
from seqrec_core.errors import InputError
from seqrec_core.evaluation import (
    METRICS,
    EvalResult,
    bootstrap_intervals,
    compute_metrics,
    compute_ranks,
    evaluate,
    get_metrics_by_history_length,
    get_metrics_table,
    get_rank_distribution,
)


def make_data(seqs: dict[str, list[str]]):
    rows = [(u, it, t) for u, items in seqs.items() for t, it in enumerate(items)]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return build_sequences(df)


def random_data(n_users: int = 60, n_items: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    seqs = {f"u{u:03d}": [f"i{x:02d}" for x in rng.integers(0, n_items, rng.integers(3, 25))]
            for u in range(n_users)}
    return make_data(seqs)


class OracleScorer:
    """Knows the true next item of each history (looked up by the full history)."""

    name = "oracle"

    def __init__(self, data, part="test"):
        split = data.split(part)
        self.n_cols = data.vocab.n_items + 1
        self.lookup = {tuple(h.tolist()): int(t) for h, t in zip(split.histories, split.targets, strict=True)}

    def score_histories(self, histories):
        out = np.zeros((len(histories), self.n_cols), dtype=np.float32)
        out[:, 0] = -np.inf
        for i, h in enumerate(histories):
            out[i, self.lookup[tuple(np.asarray(h).tolist())]] = 1.0
        return out


class ConstantScorer:
    name = "constant"

    def __init__(self, n_items):
        self.n_cols = n_items + 1

    def score_histories(self, histories):
        out = np.zeros((len(histories), self.n_cols), dtype=np.float32)
        out[:, 0] = -np.inf
        return out


class RandomScorer:
    name = "random"

    def __init__(self, n_items, seed=0):
        self.n_cols = n_items + 1
        self.rng = np.random.default_rng(seed)

    def score_histories(self, histories):
        out = self.rng.random((len(histories), self.n_cols)).astype(np.float32)
        out[:, 0] = -np.inf
        return out


def test_metric_formulas_exact_on_hand_made_ranks():
    ranks = np.array([1, 2, 5, 11, 30])
    m = compute_metrics(ranks)
    assert m["HR@1"] == pytest.approx(1 / 5)
    assert m["HR@5"] == pytest.approx(3 / 5)
    assert m["HR@10"] == pytest.approx(3 / 5)
    assert m["HR@20"] == pytest.approx(4 / 5)
    assert m["NDCG@5"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 5)
    assert m["NDCG@20"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6) + 1 / math.log2(12)) / 5)
    assert m["MRR"] == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 11 + 1 / 30) / 5)
    res = EvalResult("x", "test", False, np.arange(5), ranks, np.ones(5, dtype=int), m)
    assert res.per_user("NDCG@10")[1] == pytest.approx(1 / math.log2(3))
    with pytest.raises(ValueError):
        res.per_user("recall@10")


def test_compute_ranks_pessimistic_ties_and_padding():
    scores = np.array([[-np.inf, 0.5, 0.5, 0.9, 0.1],
                       [-np.inf, 0.0, 0.0, 0.0, 0.0],
                       [-np.inf, np.nan, 0.2, 0.1, -np.inf]], dtype=np.float32)
    targets = np.array([1, 3, 4])
    ranks = compute_ranks(scores, [np.array([1])] * 3, targets)
    # row 0: item 3 beats it, item 2 ties -> 3; row 1: all tie -> last of 4; row 2: -inf target -> last of 4
    assert ranks.tolist() == [3, 4, 4]
    # NaN counts as a tie (pessimistic): target 2 at 0.2 is beaten by NaN item 1 -> 2
    assert compute_ranks(scores[2:], [np.array([3])], np.array([2])).tolist() == [2]


def test_compute_ranks_exclude_seen_keeps_target_rankable():
    scores = np.array([[-np.inf, 0.9, 0.8, 0.7, 0.1]], dtype=np.float32)
    # history holds items 1, 2 and the target 3 itself
    hist = [np.array([1, 2, 3])]
    assert compute_ranks(scores, hist, np.array([3]), exclude_seen=False).tolist() == [3]
    assert compute_ranks(scores, hist, np.array([3]), exclude_seen=True).tolist() == [1]
    # the input is not mutated
    assert scores[0, 1] == pytest.approx(0.9)


def test_compute_ranks_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 5, size=(7, 12)).astype(np.float32)  # many ties
    scores[:, 0] = -np.inf
    scores[2, 4] = np.nan
    hists = [rng.integers(1, 12, rng.integers(1, 6)) for _ in range(7)]
    targets = rng.integers(1, 12, 7)
    for ex in (False, True):
        a = compute_ranks(scores, hists, targets, exclude_seen=ex)
        b = compute_ranks(torch.from_numpy(scores), hists, targets, exclude_seen=ex)
        assert a.tolist() == b.tolist()


def test_oracle_gets_hr1_and_constant_ranks_last():
    data = random_data()
    res = evaluate(OracleScorer(data), data, "test", batch_size=7)
    assert res.metrics["HR@1"] == 1.0 and res.metrics["MRR"] == 1.0
    assert len(res.users) == data.split("test").users.size
    const = evaluate(ConstantScorer(data.vocab.n_items), data, "test")
    assert (const.ranks == data.vocab.n_items).all()
    const_ex = evaluate(ConstantScorer(data.vocab.n_items), data, "test", exclude_seen=True)
    split = data.split("test")
    expected = [data.vocab.n_items - len(set(h.tolist()) - {t})
                for h, t in zip(split.histories, split.targets, strict=True)]
    assert const_ex.ranks.tolist() == expected


def test_evaluate_val_part_uses_second_last_item_and_history_len():
    data = make_data({"a": ["x", "y", "z", "w"], "b": ["y", "x", "z"], "c": ["x"]})
    seen = []

    class Recorder(ConstantScorer):
        def score_histories(self, histories):
            seen.extend(np.asarray(h).tolist() for h in histories)
            return super().score_histories(histories)

    res = evaluate(Recorder(data.vocab.n_items), data, "val")
    assert res.users.tolist() == [0, 1]  # user c has too few events
    assert res.history_len.tolist() == [2, 1]
    v = data.vocab
    assert seen == [[v.item_index("x"), v.item_index("y")], [v.item_index("y")]]


def test_max_users_subsample_is_fixed_and_progress_reported():
    data = random_data(n_users=80)
    calls = []
    a = evaluate(RandomScorer(data.vocab.n_items), data, max_users=25, seed=3, batch_size=10,
                 progress=lambda d, t: calls.append((d, t)))
    b = evaluate(RandomScorer(data.vocab.n_items), data, max_users=25, seed=3)
    assert a.users.tolist() == b.users.tolist() and len(a.users) == 25
    assert calls == [(10, 25), (20, 25), (25, 25)]


def test_evaluate_rejects_wrong_shape_and_bad_part():
    data = random_data()
    with pytest.raises(InputError, match="same data"):
        evaluate(ConstantScorer(data.vocab.n_items + 3), data)
    with pytest.raises(InputError, match="part"):
        evaluate(ConstantScorer(data.vocab.n_items), data, "train")


def test_evaluate_accepts_torch_output():
    torch = pytest.importorskip("torch")
    data = random_data()

    class TorchOracle(OracleScorer):
        def score_histories(self, histories):
            return torch.from_numpy(super().score_histories(histories))

    assert evaluate(TorchOracle(data), data, exclude_seen=True).metrics["HR@1"] == 1.0


def test_bootstrap_contains_point_and_narrows_with_more_users():
    rng = np.random.default_rng(0)

    def result(n):
        ranks = rng.integers(1, 40, n)
        return EvalResult("m", "test", False, np.arange(n), ranks, np.full(n, 5), compute_metrics(ranks))

    small, large = result(100), result(5000)
    ci_s, ci_l = bootstrap_intervals(small, n_boot=300), bootstrap_intervals(large, n_boot=300)
    for m in METRICS:
        assert ci_s[m][0] <= small.metrics[m] <= ci_s[m][1]
        assert ci_l[m][0] <= large.metrics[m] <= ci_l[m][1]
    assert (ci_l["NDCG@10"][1] - ci_l["NDCG@10"][0]) < (ci_s["NDCG@10"][1] - ci_s["NDCG@10"][0]) / 3
    assert bootstrap_intervals(small, n_boot=300, seed=1) == bootstrap_intervals(small, n_boot=300, seed=1)


def test_tables_and_history_buckets_cover_all_users():
    data = random_data(n_users=120)
    results = [evaluate(RandomScorer(data.vocab.n_items), data), evaluate(OracleScorer(data), data)]
    table = get_metrics_table(results, n_boot=100)
    assert table["model"].tolist() == ["random", "oracle"]
    assert {"NDCG@10", "NDCG@10 lo", "NDCG@10 hi", "users", "exclude_seen"} <= set(table.columns)
    assert (table["NDCG@10 lo"] <= table["NDCG@10"]).all() and (table["NDCG@10"] <= table["NDCG@10 hi"]).all()
    dist = get_rank_distribution(results)
    assert len(dist) == 2 * len(results[0].ranks) and dist["rank"].min() >= 1
    buckets = get_metrics_by_history_length(results, n_boot=50)
    for name, res in zip(("random", "oracle"), results, strict=True):
        sub = buckets[buckets["model"] == name]
        assert sub["users"].sum() == len(res.ranks)
        overall = (sub["value"] * sub["users"]).sum() / sub["users"].sum()
        assert overall == pytest.approx(res.metrics["NDCG@10"])
    assert set(buckets["bucket"]) <= {"1-4", "5-9", "10-19", "20-49", "50-99", "100+"}
    short = get_metrics_by_history_length(results[:1], edges=(5, 10))
    assert short["users"].sum() == len(results[0].ranks) and "<5" in set(short["bucket"])


def test_seen_items_are_excluded_by_default_only_without_repeat_consumption():
    import pandas as pd

    from seqrec_core.data import build_sequences
    from seqrec_core.evaluation import default_exclude_seen, repeat_share

    def log(rows):
        return build_sequences(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))

    no_repeats = log([(u, f"i{u}{k}", k) for u in "ab" for k in range(6)])
    assert repeat_share(no_repeats) == 0 and default_exclude_seen(no_repeats)
    repeats = log([(u, f"i{k % 2}", k) for u in "ab" for k in range(6)])  # train part: i0 i1 i0 i1
    assert repeat_share(repeats) == 0.5 and not default_exclude_seen(repeats)

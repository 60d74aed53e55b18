"""Recommendations, held-out rank and the user timeline."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seqrec_core.data import build_sequences
from seqrec_core.errors import InputError
from seqrec_core.evaluation import evaluate
from seqrec_core.models.baselines import MarkovScorer, PopularityScorer
from seqrec_core.recommend import (
    get_all_recommendations,
    get_heldout_rank,
    get_recommendations,
    get_user_timeline,
)


class FixedScorer:
    """Item i scores i (the last item best), whatever the history."""

    name = "fixed"

    def __init__(self, n_items: int, torch_out: bool = False):
        self.n_items, self.torch_out = n_items, torch_out

    def score_histories(self, histories):
        out = np.tile(np.arange(self.n_items + 1, dtype=np.float32), (len(histories), 1))
        out[:, 0] = -np.inf
        if self.torch_out:
            import torch

            return torch.from_numpy(out)
        return out


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        n = int(rng.integers(1, 12))
        for t, it in enumerate(rng.integers(0, 25, n)):
            rows.append((f"user{u}", f"item{it:02d}", pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=u + t),
                         f"Title {it}", f"cat{it % 3}"))
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "item_title", "item_category"])
    return build_sequences(df)


def long_user(data, min_len=5):
    return next(uid for u, uid in enumerate(data.vocab.user_ids) if len(data.sequences[u]) >= min_len)


def test_recommendations_exclude_seen_and_columns(data):
    uid = long_user(data)
    u = data.vocab.user_index(uid)
    scorer = FixedScorer(data.vocab.n_items)
    recs = get_recommendations(scorer, data, uid, k=8, holdout=False)
    assert list(recs.columns) == ["rank", "item_id", "title", "category", "score"]
    assert recs["rank"].tolist() == list(range(1, 9))
    seen = {data.vocab.item_id(i) for i in data.sequences[u]}
    assert not seen & set(recs["item_id"])
    assert recs["score"].is_monotonic_decreasing
    assert recs["title"].iloc[0] == "Title " + str(int(recs["item_id"].iloc[0][4:]))
    with_seen = get_recommendations(scorer, data, uid, k=3, exclude_seen=False, holdout=False)
    assert with_seen["item_id"].tolist() == [data.vocab.item_id(data.vocab.n_items - j) for j in range(3)]


def test_holdout_keeps_target_rankable_and_agrees_with_heldout_rank(data):
    uid = long_user(data)
    seq = data.sequences[data.vocab.user_index(uid)]
    markov = MarkovScorer().fit(data)
    info = get_heldout_rank(markov, data, uid)
    assert info["item_id"] == data.vocab.item_id(seq[-1])
    recs = get_recommendations(markov, data, uid, k=data.vocab.n_items)
    seen_before = set(seq[:-1].tolist()) - {int(seq[-1])}
    assert len(recs) == data.vocab.n_items - len(seen_before)
    row = recs[recs["item_id"] == info["item_id"]]
    # the list breaks ties by index while the metric rank is pessimistic, so the list position is no worse
    assert int(row["rank"].iloc[0]) <= info["rank"]
    assert float(row["score"].iloc[0]) == pytest.approx(info["score"])


def test_heldout_rank_matches_evaluate(data):
    pop = PopularityScorer().fit(data)
    res = evaluate(pop, data, "test", exclude_seen=True)
    for user_row, rank in list(zip(res.users, res.ranks, strict=True))[:10]:
        uid = data.vocab.user_ids[user_row]
        assert get_heldout_rank(pop, data, uid, exclude_seen=True)["rank"] == rank


def test_timeline_positions_lags_and_split(data):
    uid = long_user(data)
    seq = data.sequences[data.vocab.user_index(uid)]
    tl = get_user_timeline(data, uid)
    n = len(seq)
    assert tl["position"].tolist() == list(range(1, n + 1))
    assert tl["lag"].tolist() == list(range(n, 0, -1))
    assert tl["split"].tolist() == ["train"] * (n - 2) + ["val", "test"]
    assert tl["item_id"].tolist() == [data.vocab.item_id(i) for i in seq]
    assert str(tl["timestamp"].dt.tz) == "UTC" and tl["timestamp"].is_monotonic_increasing
    short = next(uid for u, uid in enumerate(data.vocab.user_ids) if len(data.sequences[u]) < 3)
    assert set(get_user_timeline(data, short)["split"]) == {"train"}


def test_timeline_without_time():
    df = pd.DataFrame({"user_id": ["a"] * 3, "item_id": ["x", "y", "z"], "timestamp": [0, 1, 2]})
    tl = get_user_timeline(build_sequences(df), "a")
    assert tl["timestamp"].isna().all() and tl["lag"].tolist() == [3, 2, 1]


def test_unknown_ids_and_bad_k_are_input_errors(data):
    scorer = FixedScorer(data.vocab.n_items)
    with pytest.raises(InputError, match="nobody"):
        get_recommendations(scorer, data, "nobody")
    with pytest.raises(InputError, match="nobody"):
        get_user_timeline(data, "nobody")
    with pytest.raises(InputError, match="k must"):
        get_recommendations(scorer, data, long_user(data), k=0)
    one = next(uid for u, uid in enumerate(data.vocab.user_ids) if len(data.sequences[u]) == 1)
    with pytest.raises(InputError, match="holdout=False"):
        get_heldout_rank(scorer, data, one)
    assert len(get_recommendations(scorer, data, one, k=3, holdout=False)) == 3


@pytest.mark.parametrize("torch_out", [False, True])
def test_all_recommendations_batched(data, torch_out):
    if torch_out:
        pytest.importorskip("torch")
    scorer = FixedScorer(data.vocab.n_items, torch_out=torch_out)
    calls = []
    allrec = get_all_recommendations(scorer, data, k=5, batch_size=16, progress=lambda d, t: calls.append((d, t)))
    assert list(allrec.columns) == ["user_id", "rank", "item_id", "title", "score"]
    assert calls[-1] == (data.n_users, data.n_users) and len(calls) == 3
    assert allrec.groupby("user_id").size().eq(5).all() and allrec["user_id"].nunique() == data.n_users
    for uid in data.vocab.user_ids[:5]:
        one = get_recommendations(scorer, data, uid, k=5, holdout=False)
        mine = allrec[allrec["user_id"] == uid]
        assert mine["item_id"].tolist() == one["item_id"].tolist()
        seen = {data.vocab.item_id(i) for i in data.sequences[data.vocab.user_index(uid)]}
        assert not seen & set(mine["item_id"])

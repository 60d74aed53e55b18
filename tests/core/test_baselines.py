"""Baselines: protocol, planted transitions, beating random, and never seeing held-out items."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seqrec_core.data import build_sequences
from seqrec_core.errors import InputError
from seqrec_core.evaluation import evaluate
from seqrec_core.models.base import Scorer
from seqrec_core.models.baselines import ItemKNNScorer, MarkovScorer, PopularityScorer, fit_baselines


def make_data(seqs: dict[str, list[str]]):
    rows = [(u, it, t) for u, items in seqs.items() for t, it in enumerate(items)]
    return build_sequences(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


def chain_data(n_users: int = 150, n_pairs: int = 40, seed: int = 0):
    """Every user's log is a run of pairs a_k -> b_k (k Zipf-distributed), so the test target is always a b_k
    whose predecessor a_k is followed by nothing else anywhere."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_pairs + 1)
    p /= p.sum()
    # One teacher user per pair, so every chain occurs in someone's training events.
    seqs = {f"t{k:02d}": [f"a{k:02d}", f"b{k:02d}"] * 3 for k in range(n_pairs)}
    for u in range(n_users):
        ks = rng.choice(n_pairs, size=rng.integers(2, 8), p=p)
        seqs[f"u{u:03d}"] = [x for k in ks for x in (f"a{k:02d}", f"b{k:02d}")]
    return make_data(seqs)


class RandomScorer:
    name = "random"

    def __init__(self, n_items: int, seed: int = 0):
        self.n_cols, self.rng = n_items + 1, np.random.default_rng(seed)

    def score_histories(self, histories):
        out = self.rng.random((len(histories), self.n_cols)).astype(np.float32)
        out[:, 0] = -np.inf
        return out


@pytest.fixture(scope="module")
def chains():
    return chain_data()


def test_protocol_output_shape_dtype_padding(chains):
    models = fit_baselines(chains)
    assert set(models) == {"popularity", "markov", "itemknn"}
    hists = [chains.sequences[0][:3], chains.sequences[1][:1]]
    for name, model in models.items():
        assert isinstance(model, Scorer) and model.name == name
        out = model.score_histories(hists)
        assert out.shape == (2, chains.vocab.n_items + 1) and out.dtype == np.float32
        assert np.isneginf(out[:, 0]).all() and np.isfinite(out[:, 1:]).all()


def test_unfitted_scorer_raises():
    with pytest.raises(RuntimeError, match="fit"):
        MarkovScorer().score_histories([np.array([1])])


def test_markov_nails_deterministic_chains(chains):
    res = evaluate(MarkovScorer().fit(chains), chains, "test")
    assert res.metrics["HR@1"] == 1.0


def test_baselines_beat_random(chains):
    n = chains.vocab.n_items
    rand = evaluate(RandomScorer(n), chains, "test").metrics["NDCG@10"]
    for name, model in fit_baselines(chains).items():
        score = evaluate(model, chains, "test").metrics["NDCG@10"]
        assert score > 1.5 * rand, name
    knn = evaluate(ItemKNNScorer().fit(chains), chains, "test").metrics
    assert knn["HR@1"] > 0.9  # a_k's only forward neighbour within one step is b_k


def test_popularity_is_train_counts_and_order(chains):
    pop = PopularityScorer().fit(chains)
    expected = np.zeros(chains.vocab.n_items + 1)
    for u in range(chains.n_users):
        np.add.at(expected, chains.train_sequence(u), 1)
    scores = pop.score_histories([np.array([1])])[0]
    assert np.array_equal(scores[1:], expected[1:].astype(np.float32))


def test_markov_backs_off_to_popularity_for_unseen_last_item():
    # "z" only ever appears as a held-out item, so it has no outgoing transitions in training.
    data = make_data({"u1": ["x", "y", "x", "y", "z", "z"], "u2": ["y", "x", "y", "w", "z", "z"]})
    markov = MarkovScorer().fit(data)
    pop = PopularityScorer().fit(data)
    z = data.vocab.item_index("z")
    m, p = markov.score_histories([np.array([z])])[0], pop.score_histories([np.array([z])])[0]
    assert np.argsort(-m[1:], kind="stable").tolist() == np.argsort(-p[1:], kind="stable").tolist()
    # after x, its only seen successor y beats every other item
    x, y = data.vocab.item_index("x"), data.vocab.item_index("y")
    assert markov.score_histories([np.array([x])])[0].argmax() == y


def test_baselines_never_see_heldout_items():
    # Every user's validation and test items are private items that occur nowhere else.
    rng = np.random.default_rng(1)
    seqs = {f"u{u}": [f"i{k}" for k in rng.integers(0, 15, 8)] + [f"val{u}", f"test{u}"] for u in range(30)}
    data = make_data(seqs)
    secret = [data.vocab.item_index(f"{p}{u}") for u in range(30) for p in ("val", "test")]
    models = fit_baselines(data)
    assert (models["popularity"].counts[secret] == 0).all()
    assert models["markov"].transitions[:, secret].nnz == 0
    assert models["itemknn"].similarity[:, secret].nnz == 0
    # so every held-out item scores at the bottom for every baseline
    for model in models.values():
        out = model.score_histories([data.train_sequence(0)])[0]
        assert out[secret].max() <= np.sort(out[1:])[len(secret) - 1]


def test_itemknn_recent_items_weigh_more():
    data = make_data({f"u{i}": ["p", "q", "r", "s", "x", "x"] for i in range(5)})
    knn = ItemKNNScorer(window=1, decay=0.5).fit(data)
    v = data.vocab.item_index
    out = knn.score_histories([np.array([v("p"), v("r")])])[0]
    assert out[v("s")] > out[v("q")]  # s follows the latest item r, q follows the older p


def test_bad_options_and_empty_training():
    with pytest.raises(InputError, match="window"):
        ItemKNNScorer(window=0)
    with pytest.raises(InputError, match="backoff"):
        MarkovScorer(backoff=2.0)
    # every user has exactly 3 events: one train event each is fine; build a log with only held-out events
    data = make_data({"a": ["x"]})
    data.sequences = [np.zeros(0, dtype=np.int64)]
    with pytest.raises(InputError, match="training events"):
        PopularityScorer().fit(data)

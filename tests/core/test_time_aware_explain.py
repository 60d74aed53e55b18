"""A time-aware SASRec run through every explainer and the modules that call the model directly: attention maps,
long-range stats and the truncation ablation, faithfulness curves, the planted-pair check, attribution time mass,
user vectors and the Explain page's attention cache. Each one must pass the times (no InputError), and attention
and attribution must change when only the times change."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from timed_log import T0, hourly_events, train_timed_run

from seqrec_core.data.sequences import build_sequences
from seqrec_core.errors import InputError
from seqrec_core.explain.attention import attention_batch, get_attention
from seqrec_core.explain.attribution import attribute_batch
from seqrec_core.explain.faithfulness import get_faithfulness, perturbed_histories, perturbed_times
from seqrec_core.explain.longrange import (
    TruncatedScorer,
    attention_distance,
    get_longrange_stats,
    get_truncation_ablation,
)
from seqrec_core.models.time_features import split_times


@pytest.fixture(scope="module")
def data():
    return build_sequences(hourly_events(40, events_per_user=(6, 12)))


@pytest.fixture(scope="module")
def run(tmp_path_factory, data):
    loaded = train_timed_run(data, tmp_path_factory.mktemp("runs") / "timed", epochs=1, max_len=8, num_heads=2)
    torch.manual_seed(0)
    for emb in loaded.model.time_emb.children():  # trained briefly the tables are ~0: make the times matter
        torch.nn.init.normal_(emb.weight, std=0.3)
    assert loaded.model.uses_time
    return loaded


def _history(data, u: int = 0):
    seq = data.sequences[u]
    times = np.concatenate([data.times[u][:-1], [data.times[u][-1]]]).astype(np.int64)  # events + query
    return seq[:-1], times


def test_attention_needs_and_uses_times(run, data) -> None:
    hist, times = _history(data)
    with pytest.raises(InputError):
        get_attention(run.model, hist, run.max_len)
    a = get_attention(run.model, hist, run.max_len, times=times)
    shifted = times + 6 * 3600  # same events, other hours of day
    b = get_attention(run.model, hist, run.max_len, times=shifted)
    assert a.weights.shape == b.weights.shape
    assert np.allclose(a.weights.sum(axis=-1), 1.0, atol=1e-4)
    assert not np.allclose(a.weights, b.weights, atol=1e-5)
    batch = attention_batch(run.model, [hist[-run.max_len:], hist[-3:]],
                            [times[-(min(len(hist), run.max_len) + 1):], times[-4:]])
    assert np.allclose(batch[0], a.weights, atol=1e-5)
    assert batch[1].shape[-1] == 3


def test_attribution_changes_with_times(run, data) -> None:
    hist, times = _history(data)
    target = np.array([int(data.sequences[0][-1])])
    a = attribute_batch(run.model, [hist], target, "ig", steps=8, times=[times])[0]
    b = attribute_batch(run.model, [hist], target, "ig", steps=8, times=[times + 6 * 3600])[0]
    assert np.isfinite(a).all() and not np.allclose(a, b, atol=1e-6)


def test_longrange_and_truncation(run, data) -> None:
    stats = get_longrange_stats(run, data, n_users=6, method="ig", steps=4)
    assert stats.users == 6 and len(stats.attention_distance) == 2
    split = data.split("test")
    hists = list(split.histories[:5])
    dist = attention_distance(run.model, hists, run.max_len, times=split_times(data, split)[:5])
    assert np.isfinite(dist["mean_distance"]).all()
    frame = get_truncation_ablation(run, data, ks=(2, None), max_users=10)
    assert list(frame["k"]) == ["2", "all"] and frame["NDCG@10"].notna().all()


def test_truncated_scorer_cuts_times() -> None:
    seen = {}

    class Inner:
        uses_time = True

        def score_histories(self, histories, times=None):
            seen["h"], seen["t"] = histories, times
            return np.zeros((len(histories), 3), np.float32)

    scorer = TruncatedScorer(Inner(), 2)
    assert scorer.uses_time
    scorer.score_histories([np.array([1, 2, 3, 4])], times=[np.array([10, 20, 30, 40, 50])])
    assert seen["h"][0].tolist() == [3, 4] and seen["t"][0].tolist() == [30, 40, 50]
    assert not TruncatedScorer(SimpleNamespace(score_histories=lambda h: h), 2).uses_time


def test_faithfulness_runs_with_times(run, data) -> None:
    res = get_faithfulness(run, data, n_users=5, max_k=2, steps=4, methods=("ig", "random"))
    assert res.users == 5 and np.isfinite(res.curves["score"]).all()
    window, order = np.array([5, 6, 7]), np.array([1, 0, 2])
    dele, ins = perturbed_histories(window, order, 2)
    dt, it = perturbed_times(np.array([100, 200, 300, 999]), order, 2)
    assert dele[1].tolist() == [5, 7] and dt[1].tolist() == [100, 300, 999]
    assert ins[2].tolist() == [5, 6] and it[2].tolist() == [100, 200, 999]


def test_planted_and_time_mass(run, data) -> None:
    from seqrec_core.explain.planted import get_planted_pair_check
    from seqrec_core.patterns.model_ties import compute_attribution_time_mass

    split = data.split("test")
    vocab = data.vocab
    pairs = [(vocab.item_id(int(h[-1])), vocab.item_id(int(t))) for h, t in zip(split.histories[:5], split.targets[:5],
                                                                                strict=True) if h[-1] != t]
    truth = SimpleNamespace(trigger_response=pairs)
    out = get_planted_pair_check(run, data, truth, top_k=vocab.n_items, steps=4)
    assert len(out) >= 1 and out["trigger_attr_rank"].ge(1).all()
    bursts = pd.DataFrame({"item": ["i01"], "start": [pd.Timestamp(T0, unit="s", tz="UTC")],
                           "end": [pd.Timestamp(T0 + 86_400, unit="s", tz="UTC")]})
    mass = compute_attribution_time_mass(run, data, bursts, n_users=6, steps=4)
    assert (mass["predictions"] > 0).all()


def test_user_vectors_and_page_cache(run, data) -> None:
    from seqrec_core.embeddings import get_user_vectors
    from ui import explain_cache

    vecs = get_user_vectors(run, data)
    assert vecs.shape[0] == len(data.sequences) and np.isfinite(vecs).all()
    user = data.vocab.user_ids[0]
    maps = explain_cache.attention("key", data.fingerprint, user, run, SimpleNamespace(sequences=data))
    hist, times = _history(data)
    assert np.allclose(maps.weights, get_attention(run.model, hist, run.max_len, times=times).weights, atol=1e-5)

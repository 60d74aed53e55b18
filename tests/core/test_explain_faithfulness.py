"""Deletion/insertion curves and AOPC: the formula, the perturbations, the k = 0 anchor, a seeded random
baseline, and on a model trained on a planted log, IG and occlusion beating random order."""
from __future__ import annotations

import numpy as np
import pytest
import torch

# The planted log and its briefly trained model (tests/core is on sys.path: pytest's default import mode).
from test_explain_longrange import MAX_LEN, planted  # noqa: F401

from seqrec_core.errors import InputError
from seqrec_core.explain.faithfulness import (
    FAITH_METHODS,
    aopc,
    get_faithfulness,
    perturbed_histories,
    rank_events,
    score_targets,
)
from seqrec_core.explain.longrange import top_targets


def test_aopc_formula_on_hand_made_curves():
    assert aopc([1.0, 0.5, 0.25], "deletion") == pytest.approx(((1 - 0.5) + (1 - 0.25)) / 2)
    assert aopc([0.0, 0.5, 1.0, 1.0], "insertion") == pytest.approx((0.5 + 1.0 + 1.0) / 3)
    assert aopc([2.0, 3.0], "deletion") == pytest.approx(-1.0)  # a curve that rises scores below zero
    assert np.isnan(aopc([1.0], "deletion"))
    with pytest.raises(ValueError):
        aopc([1.0, 0.0], "sideways")


def test_rank_events_orders_by_signed_value_latest_first_on_ties():
    assert rank_events(np.array([0.1, -2.0, 3.0, 0.1])).tolist() == [2, 3, 0, 1]


def test_perturbed_histories_keep_order_and_saturate():
    window = np.array([11, 12, 13, 14])
    order = np.array([2, 0, 3, 1])
    deletion, insertion = perturbed_histories(window, order, max_k=6)
    assert deletion[0].tolist() == [11, 12, 13, 14] and insertion[0].tolist() == []
    assert deletion[2].tolist() == [12, 14] and insertion[2].tolist() == [11, 13]  # original order kept
    assert deletion[6].tolist() == [] and insertion[6].tolist() == [11, 12, 13, 14]
    assert all(len(d) + len(i) == 4 for d, i in zip(deletion, insertion, strict=True))


def test_deletion_at_k0_is_the_original_score(planted):  # noqa: F811
    from seqrec_core.explain.longrange import heldout_split, sample_rows

    run, data = planted
    faith = get_faithfulness(run, data, n_users=30, max_k=3, methods=("random", "attention"), seed=1)
    split = heldout_split(data)
    rows = sample_rows(len(split.users), 30, 1)
    windows = [split.histories[i][-MAX_LEN:] for i in rows]
    targets = top_targets(run.model, [split.histories[i] for i in rows], MAX_LEN)  # seen = the whole history
    with torch.no_grad():
        full = run.model.score(torch.as_tensor(np.stack(windows)))[torch.arange(30), torch.as_tensor(targets)]
        empty = run.model.score(torch.zeros(1, 1, dtype=torch.long))[0, torch.as_tensor(targets)]
    curves = faith.curves.set_index(["method", "kind", "k"])
    for m in ("random", "attention"):
        assert curves.loc[(m, "deletion", 0), "score"] == pytest.approx(float(full.mean()), rel=1e-5)
        assert curves.loc[(m, "insertion", 0), "score"] == pytest.approx(float(empty.mean()), rel=1e-5)
    assert set(faith.aopc["kind"]) == {"deletion", "insertion"} and faith.users == 30
    assert ((faith.curves["prob"] >= 0) & (faith.curves["prob"] <= 1)).all()


def test_score_targets_matches_a_plain_forward_with_any_padding(planted):  # noqa: F811
    run, data = planted
    hists = [data.sequences[u][:5] for u in range(4)] + [data.sequences[5][:12]]
    tg = np.array([3, 4, 5, 6, 7])
    s, p = score_targets(run.model, hists, tg, MAX_LEN, batch_size=2)
    with torch.no_grad():
        one = [float(run.model.score(torch.as_tensor(h)[None])[0, t]) for h, t in zip(hists, tg, strict=True)]
    assert s == pytest.approx(one, rel=1e-4, abs=1e-5)
    assert ((p > 0) & (p < 1)).all()


def test_random_baseline_is_seeded(planted):  # noqa: F811
    run, data = planted
    a = get_faithfulness(run, data, n_users=25, max_k=4, methods=("random",), seed=3)
    b = get_faithfulness(run, data, n_users=25, max_k=4, methods=("random",), seed=3)
    c = get_faithfulness(run, data, n_users=25, max_k=4, methods=("random",), seed=4)
    assert a.curves.equals(b.curves)
    assert not np.allclose(a.curves["score"], c.curves["score"])


def test_ig_and_occlusion_deletion_beats_random_on_a_planted_log(planted):  # noqa: F811
    run, data = planted
    calls = []
    faith = get_faithfulness(run, data, n_users=80, max_k=5, steps=16, target="heldout",
                             progress=lambda d, t: calls.append((d, t)))
    assert set(faith.aopc["method"]) == set(FAITH_METHODS)
    table = faith.aopc.set_index(["method", "kind"])["aopc"]
    random_deletion = table[("random", "deletion")]
    # measured (2026-12-07): ig 1.71, occlusion 1.89, lime 1.97, kernelshap 1.97, random -0.20
    for method in ("ig", "occlusion", "lime", "kernelshap"):
        assert table[(method, "deletion")] > max(2 * random_deletion, random_deletion + 0.5), method
    assert table[("occlusion", "insertion")] > table[("random", "insertion")]
    # every attributing method once (the registry's in_faithfulness ones; "random" costs nothing) + the re-scoring
    assert calls[-1][0] == calls[-1][1] == 80 * len(FAITH_METHODS)


def test_bad_requests_are_input_errors(planted):  # noqa: F811
    run, data = planted
    with pytest.raises(InputError):
        get_faithfulness(run, data, n_users=5, methods=("ig", "tea leaves"))
    with pytest.raises(InputError):
        get_faithfulness(run, data, n_users=5, max_k=0)


def test_runs_without_attention_get_long_range_stats_and_faithfulness(small_dataset):
    """GRU/LSTM runs return no attention maps: the attention parts are skipped, everything else still runs."""
    from types import SimpleNamespace

    from seqrec_core.explain.attention import has_attention
    from seqrec_core.explain.faithfulness import get_faithfulness
    from seqrec_core.explain.longrange import get_longrange_stats
    from seqrec_core.models import build_model

    data = small_dataset.sequences
    torch.manual_seed(0)
    gru = build_model("gru4rec", data.vocab.n_items, hidden_size=16, max_len=20).eval()
    sasrec = build_model("sasrec", data.vocab.n_items, hidden_size=16, num_layers=1, num_heads=1, max_len=20).eval()
    assert not has_attention(gru) and has_attention(sasrec)
    run = SimpleNamespace(model=gru, vocab=data.vocab, max_len=20)
    stats = get_longrange_stats(run, data, n_users=20, steps=4)
    assert stats.attention_distance.empty and stats.by_lag["share_of_abs_attribution"].sum() == pytest.approx(1.0)
    faith = get_faithfulness(run, data, n_users=10, max_k=3, steps=4)
    assert "attention" not in set(faith.aopc["method"]) and {"ig", "occlusion", "random"} <= set(faith.aopc["method"])

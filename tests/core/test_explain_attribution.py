"""Attributions: IG completeness, agreement with occlusion on a planted A -> B case, attribute() defaults,
one-line InputErrors, counterfactual re-scoring, and that the shared model is never modified."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from seqrec_core.data.sequences import build_sequences
from seqrec_core.errors import InputError
from seqrec_core.explain import METHODS, attribute, attribute_batch, attribute_batch_full, rescore_edited
from seqrec_core.models import build_model, pad_left
from seqrec_core.models.batches import batch_order, iterate_batches, training_windows

N_FILL = 28  # filler items "f03".."f30"; "a" -> "b" is the planted pair
LAGS = (3, 5)  # b follows a 3-5 events later, and never appears otherwise
LAG = 4
LENGTH = 14


def _events(n_users: int = 300, seed: int = 0) -> pd.DataFrame:
    """Random filler histories; in every user's log "a" appears and "b" follows 3-5 events later. For users
    with an odd index the pair ends at the last (held-out) event, so "b" is the held-out item."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        seq = [f"f{k:02d}" for k in rng.integers(3, 3 + N_FILL, LENGTH)]
        lag = int(rng.integers(LAGS[0], LAGS[1] + 1))
        end = LENGTH - 1 if u % 2 else int(rng.integers(lag, LENGTH - 3))
        seq[end - lag], seq[end] = "a", "b"
        start = 1_700_000_000 + u * 10_000
        rows += [(f"u{u:03d}", item, start + 60 * k) for k, item in enumerate(seq)]
    ev = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    ev["timestamp"] = pd.to_datetime(ev["timestamp"], unit="s", utc=True)
    ev["item_title"] = ev["item_id"].map(lambda i: {"a": "Trigger A", "b": "Response B"}.get(i, f"Filler {i}"))
    return ev


def _train(model, data, steps: int = 150) -> None:
    """A fixed number of full-softmax steps on every event (the fixture only needs the A -> B habit).

    One thread: on a busy 2-core machine torch's two threads wait on each other (40x slower steps)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        windows, lengths, masked = training_windows(data.sequences, model.config.max_len)
        opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
        rng = np.random.default_rng(0)
        model.train()
        done = 0
        while done < steps:
            for x, y in iterate_batches(windows, lengths, batch_order(lengths, 64, rng), masked):
                loss = model(x, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                done += 1
    finally:
        torch.set_num_threads(threads)
        model.eval()
    for p in model.parameters():
        p.grad = None


@pytest.fixture(scope="module")
def planted():
    events = _events()
    data = build_sequences(events)
    torch.manual_seed(0)
    model = build_model("sasrec", data.vocab.n_items, hidden_size=16, num_layers=2, num_heads=2, dropout=0.0,
                        max_len=16)
    _train(model, data)
    run = SimpleNamespace(model=model, vocab=data.vocab, max_len=16)  # what attribute() needs of a Run
    return run, data


def _state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _hooks(model) -> dict:
    return {name: (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for name, m in model.named_modules()}


def test_the_fixture_model_learned_the_pair(planted) -> None:
    run, data = planted
    a, b = data.vocab.item_index("a"), data.vocab.item_index("b")
    hist = [data.vocab.item_index(f"f{k:02d}") for k in (3, 4, 5, 6, 7, 8)]
    with_a = hist[:2] + [a] + hist[2:5]  # a is LAG events before the prediction point's next item
    with torch.no_grad():
        s_with = run.model.score(pad_left([np.array(with_a)], 16))[0]
        s_without = run.model.score(pad_left([np.array(hist)], 16))[0]
    assert int(s_with.argmax()) == b
    assert s_with[b] > s_without[b] + 2.0


@pytest.mark.parametrize("positions", ["rotary", "learned"])
@pytest.mark.parametrize("baseline", ["mean", "padding"])
def test_ig_completeness_on_an_untrained_model(positions: str, baseline: str) -> None:
    torch.manual_seed(1)
    model = build_model("sasrec", 40, hidden_size=16, max_len=20, positions=positions).eval()
    hists = [np.array([3, 9, 4, 4, 12, 30]), np.arange(1, 21), np.array([7])]
    res = attribute_batch_full(model, hists, np.array([5, 6, 7]), "ig", steps=100, batch_size=2, baseline=baseline)
    assert [len(s) for s in res.scores] == [6, 20, 1]
    total = np.array([s.sum() for s in res.scores])
    gap = res.target_scores - res.baseline_scores
    np.testing.assert_allclose(total, gap, atol=0.01 * np.abs(gap).max() + 1e-3)
    np.testing.assert_allclose(res.deltas, total - gap, atol=1e-4)  # Captum's delta is the completeness gap
    if positions == "rotary" and baseline == "padding":  # blank events score exactly like an all-padding history
        with torch.no_grad():
            pad = model.score(torch.zeros(3, 6, dtype=torch.long))[:, [5, 6, 7]].diagonal().numpy()
        np.testing.assert_allclose(res.baseline_scores, pad, atol=1e-6)


def _score_with_vectors(model, ids: torch.Tensor, vectors: torch.Tensor, targets) -> np.ndarray:
    """Target scores when the model gets ``vectors`` (B, W, D) instead of its item vectors (mask kept)."""
    from seqrec_core.explain.engines import _view, target_score

    class Fixed(torch.nn.Module):
        weight = model.item_emb.weight

        def forward(self, real):
            return vectors

    with torch.no_grad():
        return target_score(_view(model, Fixed()), ids, torch.as_tensor(targets)).numpy()


def test_ig_completeness_on_the_trained_model(planted) -> None:
    """sum of attributions = score(target | history) - score(target | baseline), on a trained model; for the
    padding baseline that is an all-padding history, and the path is the hard case for the quadrature."""
    run, data = planted
    split = data.split("test")
    n = 8
    hists, targets = split.histories[:n], split.targets[:n]
    ids = pad_left(hists, 16)
    with torch.no_grad():
        rows, cols = torch.arange(n), torch.as_tensor(targets)
        full = run.model.score(ids)[rows, cols].numpy()
        blank = run.model.score(torch.zeros_like(ids))[rows, cols].numpy()  # all-padding history
    mean_vec = run.model.item_emb.weight[1:].detach().mean(0)
    averaged = _score_with_vectors(run.model, ids, (ids != 0)[..., None] * mean_vec, targets)
    for baseline, steps, expected_base in (("mean", 200, averaged), ("padding", 600, blank)):
        res = attribute_batch_full(run.model, hists, targets, "ig", steps=steps, baseline=baseline)
        np.testing.assert_allclose(res.target_scores, full, atol=1e-4)
        np.testing.assert_allclose(res.baseline_scores, expected_base, atol=1e-4)
        total = np.array([s.sum() for s in res.scores])
        gap = full - expected_base
        np.testing.assert_allclose(total, gap, atol=0.01 * np.abs(gap).max() + 0.01)
        np.testing.assert_allclose(res.deltas, total - gap, atol=1e-3)
    # attribute() refines the steps until the delta is within 1% of the gap
    a = attribute(run, data, "u001", "heldout", steps=50, baseline="padding")
    assert a.steps >= 50 and a.baseline == "padding"
    assert abs(a.convergence_delta) <= 0.01 * (abs(a.target_score - a.baseline_score) + 0.1) or a.steps == 800
    a = attribute(run, data, "u004", "heldout", steps=50)
    assert a.baseline == "mean" and abs(a.convergence_delta) <= 0.01 * (abs(a.target_score - a.baseline_score) + 0.1)


def test_occlusion_agrees_in_sign_with_ig_on_the_planted_case(planted) -> None:
    run, data = planted
    user = "u001"  # odd: its held-out item is "b", with "a" LAG events before it
    ig = attribute(run, data, user, "heldout", "ig")
    occ = attribute(run, data, user, "heldout", "occlusion")
    assert ig.target_item == "b" and ig.target_rank == 1
    a_at = ig.item_ids.index("a")
    assert LAGS[0] <= ig.lags[a_at] <= LAGS[1]
    assert ig.scores[a_at] > 0 and occ.scores[a_at] > 0
    assert int(np.argmax(ig.scores)) == a_at and int(np.argmax(occ.scores)) == a_at
    assert ig.top_lags(1).tolist() == [ig.lags[a_at]]
    # occlusion = the drop when the event is removed, checked against a direct re-score
    without = np.delete(ig.item_index, a_at)
    with torch.no_grad():
        dropped = run.model.score(pad_left([without], 16))[0, ig.target_index].item()
    assert occ.scores[a_at] == pytest.approx(occ.target_score - dropped, abs=1e-4)


def test_every_method_runs_and_attention_is_a_distribution(planted) -> None:
    run, data = planted
    split = data.split("test")
    for method in METHODS:
        out = attribute_batch(run.model, split.histories[:5], split.targets[:5], method, steps=8)
        assert [len(s) for s in out] == [len(h) for h in split.histories[:5]]
        assert all(np.isfinite(s).all() for s in out)
        if method == "attention":
            np.testing.assert_allclose([s.sum() for s in out], 1.0, atol=1e-5)
            assert all((s >= 0).all() for s in out)


def test_batched_attribution_reports_progress_per_group(planted) -> None:
    run, data = planted
    split = data.split("test")
    calls: list[tuple[int, int]] = []
    out = attribute_batch(run.model, split.histories[:7], split.targets[:7], "occlusion", batch_size=3,
                          progress=lambda done, total: calls.append((done, total)))
    assert len(out) == 7 and [c[0] for c in calls] == [3, 6, 7] and {c[1] for c in calls} == {7}


def test_attribute_defaults_and_documents(planted) -> None:
    run, data = planted
    user = "u002"
    a = attribute(run, data, user, steps=8, refine=False)  # target None: the top recommendation, seen items excluded
    hist = data.sequences[data.vocab.user_index(user)][:-1]
    with torch.no_grad():
        scores = run.model.score(pad_left([hist], 16))[0].numpy()
    scores[hist] = -np.inf
    assert a.target_index == int(np.argmax(scores)) and a.target_rank == 1 and a.steps == 8
    assert len(a.scores) == len(hist) == len(a.item_ids) and a.lags.tolist() == list(range(len(hist), 0, -1))
    held = attribute(run, data, user, "heldout", "occlusion")
    assert held.target_item == data.vocab.item_id(int(data.sequences[data.vocab.user_index(user)][-1]))
    assert held.seconds_before[-1] == 60 and held.seconds_before[0] == 60 * len(hist)
    frame = held.to_frame()
    assert list(frame.columns) == ["position", "item_id", "title", "category", "timestamp", "lag",
                                   "seconds_before", "attribution"]
    assert str(frame["timestamp"].dt.tz) == "UTC"
    doc = json.loads(json.dumps(held.to_json()))
    assert {"user", "target", "method", "convergence_delta", "history"} <= set(doc)
    assert set(doc["history"][0]) >= {"position", "item", "timestamp", "lag", "attribution"}
    assert doc["history"][-1]["lag"] == 1 and doc["history"][0]["timestamp"].endswith("Z")
    full = attribute(run, data, user, "b", "attention", holdout=False)
    assert len(full.scores) == len(hist) + 1 and full.seconds_before[-1] == 0
    edited = attribute(run, data, user, "b", steps=8, refine=False, history=hist[:5])
    assert len(edited.scores) == 5 and edited.timestamps is None and edited.to_frame()["timestamp"].isna().all()


@pytest.mark.parametrize("kwargs", [{"user": "nobody"}, {"user": "u001", "target": "zzz"},
                                    {"user": "u001", "method": "shap"}, {"user": "u001", "steps": 0},
                                    {"user": "u001", "history": np.array([0, 1])},
                                    {"user": "u001", "baseline": "zeros"}])
def test_bad_input_is_one_line_input_error(planted, kwargs) -> None:
    run, data = planted
    with pytest.raises(InputError) as err:
        attribute(run, data, **kwargs)
    assert "\n" not in str(err.value)


def test_a_run_from_other_data_is_refused(planted) -> None:
    run, _ = planted
    other = build_sequences(_events(n_users=10).assign(item_id=lambda e: e["item_id"] + "x"))
    with pytest.raises(InputError, match="different catalogue"):
        attribute(run, other, "u001")


def test_deleting_the_trigger_drops_the_target_and_reordering_is_reported(planted) -> None:
    run, data = planted
    user = "u003"
    hist = [data.vocab.item_id(i) for i in data.sequences[data.vocab.user_index(user)][:-1]]
    out = rescore_edited(run, data, user, [i for i in hist if i != "a"], "heldout", k=5)
    assert out["target_item"] == "b" and out["target_rank_before"] == 1
    assert out["target_rank_after"] > 3 and out["target_score_after"] < out["target_score_before"] - 2
    assert list(out["before"].columns) == ["rank", "item_id", "title", "score"] and len(out["after"]) == 5
    assert out["before"]["item_id"].iloc[0] == "b" and "b" not in out["after"]["item_id"].iloc[:1].tolist()
    same = rescore_edited(run, data, user, hist, None)
    assert same["target_rank_before"] == same["target_rank_after"] == 1
    with pytest.raises(InputError):
        rescore_edited(run, data, user, hist + ["nope"], None)


def test_the_shared_model_is_never_modified(planted) -> None:
    run, data = planted
    model = run.model
    before = _state(model)
    hooks_before = _hooks(model)
    split = data.split("test")
    for method in METHODS:
        attribute_batch(model, split.histories[:4], split.targets[:4], method, steps=4)
    attribute(run, data, "u005", "heldout", steps=8)
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert _hooks(model) == hooks_before  # only SASRec's own dropout hooks, nothing of Captum's left behind
    assert model.item_emb is model._modules["item_emb"] and type(model.item_emb).__name__ == "Embedding"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_attributions_on_cuda_match_cpu(planted) -> None:
    """Every method runs on the model's device; forward-only methods agree tightly, path methods within the
    quadrature's error (the GPU's kernels round differently, and this model's score changes sharply)."""
    import copy

    run, data = planted
    split = data.split("test")
    gpu = copy.deepcopy(run.model).to("cuda")
    hists, targets = split.histories[:6], split.targets[:6]
    for method, steps, tol in (("occlusion", 1, 1e-3), ("attention", 1, 1e-4), ("ig", 200, 0.05),
                               ("gradshap", 8, None)):
        a = attribute_batch_full(run.model, hists, targets, method, steps=steps)
        b = attribute_batch_full(gpu, hists, targets, method, steps=steps)
        np.testing.assert_allclose(a.target_scores, b.target_scores, atol=1e-3)
        for x, y in zip(a.scores, b.scores, strict=True):
            assert np.isfinite(y).all() and len(x) == len(y)
            if tol is not None:
                np.testing.assert_allclose(x, y, atol=tol * (np.abs(x).max() + 1))

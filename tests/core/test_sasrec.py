"""SASRec model properties: causality, padding invariance, attention maps, losses, the registry, the scorer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seqrec_core.errors import InputError
from seqrec_core.models import MODEL_FAMILIES, NeuralScorer, SASRec, build_model, pad_left
from seqrec_core.models.batches import batch_order, iterate_batches, training_windows
from seqrec_core.models.neural import full_softmax_cross_entropy

N_ITEMS = 40
POSITIONS = ["rotary", "learned"]


def tiny(positions: str = "rotary", **kw) -> SASRec:
    torch.manual_seed(0)
    opts = {"hidden_size": 16, "num_layers": 2, "num_heads": 2, "max_len": 12, "positions": positions, **kw}
    return build_model("sasrec", N_ITEMS, **opts).eval()


@pytest.mark.parametrize("positions", POSITIONS)
def test_changing_a_later_item_never_changes_earlier_outputs(positions: str) -> None:
    model = tiny(positions)
    x = torch.tensor([[0, 0, 3, 7, 9, 11, 2, 5]])
    y = x.clone()
    y[0, 5:] = torch.tensor([30, 31, 32])
    with torch.no_grad():
        hx, hy = model.forward_hidden(x).hidden, model.forward_hidden(y).hidden
    assert torch.allclose(hx[:, :5], hy[:, :5], atol=1e-6)
    assert not torch.allclose(hx[:, 5:], hy[:, 5:], atol=1e-4)


@pytest.mark.parametrize("positions", POSITIONS)
def test_more_left_padding_gives_the_same_scores(positions: str) -> None:
    model = tiny(positions)
    short = torch.tensor([[0, 4, 8, 15], [0, 0, 0, 16]])
    padded = torch.cat([torch.zeros(2, 5, dtype=torch.long), short], dim=1)
    with torch.no_grad():
        a, b = model.score(short), model.score(padded)
    assert a.shape == (2, N_ITEMS + 1)
    assert torch.isinf(a[:, 0]).all() and (a[:, 0] < 0).all()
    assert torch.allclose(a[:, 1:], b[:, 1:], atol=1e-5)


@pytest.mark.parametrize("positions", POSITIONS)
def test_attention_is_causal_ignores_padding_and_rows_sum_to_one(positions: str) -> None:
    model = tiny(positions)
    x = torch.tensor([[0, 0, 0, 5, 6, 7], [0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        out = model.forward_hidden(x, output_attentions=True)
    assert out.attentions is not None and len(out.attentions) == 2
    assert not torch.isnan(out.hidden).any()  # a fully padded row must not produce NaN
    for att in out.attentions:  # (B, H, T, T)
        assert att.shape == (3, 2, 6, 6)
        assert torch.allclose(att.sum(-1), torch.ones(3, 2, 6), atol=1e-5)
        assert torch.triu(att, diagonal=1).abs().max() == 0  # nothing attends to the future
        real = x != 0
        att_real_rows = att[0][:, real[0]]  # queries at real positions of row 0
        assert att_real_rows[..., ~real[0]].abs().max() == 0  # ... never attend to padding
    # switching back to SDPA afterwards gives the same hidden states as the eager pass
    with torch.no_grad():
        again = model.forward_hidden(x).hidden
    assert torch.allclose(again[:, 3:], out.hidden[:, 3:], atol=1e-5)


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_loss_is_finite_and_backpropagates(loss: str) -> None:
    model = tiny(loss=loss, num_negatives=8).train()
    x = torch.tensor([[0, 0, 1, 2, 3], [4, 5, 6, 7, 8]])
    y = torch.tensor([[0, 0, 2, 3, 4], [5, 6, 7, 8, 9]])
    value = model(x, y)
    value.backward()
    assert torch.isfinite(value)
    assert model.item_emb.weight.grad is not None and model.item_emb.weight.grad.abs().sum() > 0


def test_popularity_negatives_follow_item_counts() -> None:
    model = tiny(loss="sampled", negatives="popularity", num_negatives=4).train()
    counts = torch.zeros(N_ITEMS)
    counts[:3] = 1000.0
    model.set_item_counts(counts)
    x = torch.tensor([[1, 2, 3]])
    assert torch.isfinite(model(x, torch.tensor([[2, 3, 4]])))


def test_chunked_cross_entropy_matches_the_reference() -> None:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(70, 8, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(30, 8, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 30, (70,), generator=g)
    ours = full_softmax_cross_entropy(h, w, y, chunk=16)
    ours.backward()
    gh, gw = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    ref = torch.nn.functional.cross_entropy(h @ w.T, y)
    ref.backward()
    assert abs(ours.item() - ref.item()) < 1e-5
    assert torch.allclose(gh, h.grad, atol=1e-6) and torch.allclose(gw, w.grad, atol=1e-6)


def test_loss_decreases_when_fitting_a_tiny_log() -> None:
    model = tiny(item_dropout=0.0).train()  # a blanked latest item leaves its successor unknowable
    starts = torch.arange(16)[:, None]
    x = (starts + torch.arange(8)[None, :]) % N_ITEMS + 1  # each user walks the catalogue in order
    y = x % N_ITEMS + 1  # ... so the next item is always the successor
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(40):
        loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("options, word", [
    ({"hidden_size": 0}, "hidden_size"), ({"dropout": 1.5}, "dropout"), ({"positions": "sinusoid"}, "positions"),
    ({"num_heads": 3}, "divisible"), ({"colour": "red"}, "unknown option"), ({"hidden_size": "64"}, "hidden_size"),
    ({"item_dropout": 1.0}, "item_dropout"), ({"item_dropout": -0.1}, "item_dropout"),
    ({"item_dropout": True}, "item_dropout"),
])
def test_bad_options_are_input_errors(options: dict, word: str) -> None:
    with pytest.raises(InputError, match=word):
        build_model("sasrec", N_ITEMS, **options)


def test_registry_knows_sasrec_and_refuses_unknown_families() -> None:
    assert set(MODEL_FAMILIES) >= {"sasrec"}
    with pytest.raises(InputError, match="unknown model"):
        build_model("transformer-xl", N_ITEMS)


def test_pad_left_truncates_to_the_latest_events() -> None:
    ids = pad_left([np.array([1, 2, 3, 4, 5]), np.array([7])], max_len=3)
    assert ids.tolist() == [[3, 4, 5], [0, 0, 7]]
    assert pad_left([np.array([1])], max_len=5, width=4).tolist() == [[0, 0, 0, 1]]


def test_training_windows_train_every_event_once_with_enough_context() -> None:
    seqs = [np.arange(1, 31), np.array([5]), np.array([3, 4])]
    windows, lengths, masked = training_windows(seqs, max_len=8)
    assert windows.shape[1] == 9 and (lengths <= 9).all()
    batches = batch_order(lengths, batch_size=2, rng=np.random.default_rng(0))
    assert sorted(int(i) for b in batches for i in b) == list(range(len(windows)))
    trained = []
    for x, y in iterate_batches(windows, lengths, batches, masked):
        assert x.shape == y.shape and (x[:, -1] != 0).all()  # last column is always a real event
        for row_x, row_y in zip(x.numpy(), y.numpy(), strict=True):
            for col in np.flatnonzero(row_y):
                trained.append(int(row_y[col]))
                if row_y[col] >= 6:  # events of the long sequence 1..30 (value = position + 1)
                    # Past the start of the sequence, a target sees at least half a window (4) of context.
                    assert int((row_x[:col + 1] != 0).sum()) >= min(4, int(row_y[col]) - 1)
    assert sorted(trained) == sorted(list(range(2, 31)) + [4])  # each event after the first, exactly once
    unmasked = [int(t) for w in training_windows(seqs, max_len=8, min_context=0)[0] for t in w[1:][w[:-1] != 0]]
    assert sorted(unmasked) == sorted(trained)  # min_context=0: plain cut windows, no overlap


def test_neural_scorer_matches_the_model_and_returns_float32() -> None:
    model = tiny()
    scorer = NeuralScorer(model, max_len=12, batch_size=2)
    rng = np.random.default_rng(0)
    hists = [rng.integers(1, N_ITEMS + 1, size=n) for n in (1, 30, 4, 7, 12)]
    scores = scorer.score_histories(hists)
    assert scores.dtype == np.float32 and scores.shape == (5, N_ITEMS + 1)
    assert np.isneginf(scores[:, 0]).all()
    for row, h in enumerate(hists):
        with torch.no_grad():
            ref = model.score(pad_left([h], 12)).numpy()[0]
        np.testing.assert_allclose(scores[row, 1:], ref[1:], rtol=1e-4, atol=1e-5)
    assert scorer.score_histories([]).shape == (0, N_ITEMS + 1)


def test_scoring_stays_right_while_another_thread_explains() -> None:
    """The dashboard shares one loaded model between sessions: eager explanations must not corrupt scoring."""
    import threading

    model = tiny()
    x = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    with torch.no_grad():
        expected = model.score(x)
    errors: list[str] = []

    def explain() -> None:
        for _ in range(30):
            with torch.no_grad():
                if model.forward_hidden(x, output_attentions=True).attentions is None:
                    errors.append("no attentions")

    def score() -> None:
        for _ in range(30):
            with torch.no_grad():
                if not torch.allclose(model.score(x)[:, 1:], expected[:, 1:], atol=1e-5):
                    errors.append("scores changed")

    threads = [threading.Thread(target=explain), threading.Thread(target=score)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

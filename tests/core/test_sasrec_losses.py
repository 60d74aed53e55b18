"""SASRec's sampled softmax, BCE and gBCE losses: gSASRec's beta, the closed form against PyTorch's BCE,
gBCE(t=0) = BCE on the same negatives, each position's own negatives, accidental hits, and that the losses fall on a
tiny log."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from successor_log import fit_successor, successor_ranks

from seqrec_core.errors import InputError
from seqrec_core.models import build_model
from seqrec_core.models.neural import binary_negatives_loss, gbce_beta, sample_negative_pool

N_ITEMS = 40


def tiny(**kw):
    torch.manual_seed(0)
    opts = {"hidden_size": 16, "num_layers": 1, "num_heads": 1, "max_len": 12, "dropout": 0.0, "item_dropout": 0.0,
            **kw}  # no randomness in the body: the losses are compared exactly
    return build_model("sasrec", N_ITEMS, **opts)


def test_beta_follows_the_paper() -> None:
    k, n = 256, 3417  # gSASRec on ML-1M: 256 negatives, 3416 other items
    alpha = k / (n - 1)
    assert gbce_beta(k, n, 0.0) == pytest.approx(1.0)  # t = 0: plain BCE
    assert gbce_beta(k, n, 1.0) == pytest.approx(alpha)  # t = 1: fully calibrated
    assert gbce_beta(k, n, 0.75) == pytest.approx(alpha * (0.75 * (1 - 1 / alpha) + 1 / alpha))
    assert gbce_beta(k, n, 0.5) < 1.0 and gbce_beta(n, n, 0.9) == pytest.approx(1.0)  # every item sampled: no change


def test_closed_form_equals_bce_with_the_transformed_positive_logit() -> None:
    torch.manual_seed(1)
    pos, neg = torch.randn(7) * 3, torch.randn(7, 5) * 3
    beta = 0.3
    # gSASRec's implementation: the positive logit becomes log(1 / (sigmoid(s)^-beta - 1)), then BCE with logits.
    p = torch.sigmoid(pos.double())
    transformed = torch.log(1.0 / (p.pow(-beta) - 1.0))
    logits = torch.cat([transformed[:, None], neg.double()], 1)
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1.0
    expected = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(-1).mean()
    assert binary_negatives_loss(pos, neg, beta).item() == pytest.approx(expected.item(), rel=1e-5)
    plain = F.binary_cross_entropy_with_logits(torch.cat([pos[:, None], neg], 1), labels.float())
    assert binary_negatives_loss(pos, neg, 1.0).item() == pytest.approx(plain.item(), rel=1e-5)
    # A negative that is really the positive (accidental hit) contributes nothing.
    valid = torch.ones(7, 5, dtype=torch.bool)
    valid[:, 2] = False
    masked = binary_negatives_loss(pos, neg, 1.0, valid) * 6 - binary_negatives_loss(pos, neg[:, [0, 1, 3, 4]], 1.0) * 5
    assert masked.item() == pytest.approx(0.0, abs=1e-5)


def test_negatives_are_drawn_from_the_catalogue() -> None:
    torch.manual_seed(0)
    pool, pick = sample_negative_pool(N_ITEMS, 50, 7, None, torch.device("cpu"))
    assert pick.shape == (50, 7) and pool.min() >= 1 and pool.max() <= N_ITEMS
    probs = torch.zeros(N_ITEMS)
    probs[4] = 1.0
    pool, _ = sample_negative_pool(N_ITEMS, 3, 2, probs, torch.device("cpu"))
    assert (pool == 5).all()  # popularity sampler: item index = row + 1


def test_gbce_with_t_zero_and_one_negative_is_bce() -> None:
    x = torch.tensor([[0, 3, 7, 9, 11, 2], [0, 0, 0, 4, 8, 15]])
    y = torch.tensor([[0, 7, 9, 11, 2, 5], [0, 0, 0, 8, 15, 16]])
    bce, gbce = tiny(loss="bce"), tiny(loss="gbce", num_negatives=1, gbce_t=0.0)
    gbce.load_state_dict(bce.state_dict())
    torch.manual_seed(5)
    a = bce(x, y)
    torch.manual_seed(5)
    b = gbce(x, y)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)
    calibrated = tiny(loss="gbce", num_negatives=1, gbce_t=1.0)
    calibrated.load_state_dict(bce.state_dict())
    torch.manual_seed(5)
    assert calibrated(x, y).item() < a.item()  # beta < 1 shrinks the positive term on the same negatives


def test_sampled_softmax_is_a_softmax_over_each_positions_own_negatives() -> None:
    """Each position gets its own k negatives (as the binary losses: picks from a per-step pool) and an accidental
    hit of the position's target is no negative; uniform negatives need no log-q correction."""
    model = tiny(loss="sampled", num_negatives=6).eval()
    h = torch.randn(9, 16, dtype=torch.float32)  # (N, D) hidden states of 9 positions
    y = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9])  # (N,)
    torch.manual_seed(3)
    pool, pick = sample_negative_pool(N_ITEMS, 9, 6, None, torch.device("cpu"))
    neg = pool[pick]  # (N, K)
    assert len({tuple(row.tolist()) for row in neg}) > 1  # positions do not share one set of negatives
    w = model.output_weights()
    expected = []
    for i in range(9):
        kept = neg[i][neg[i] != y[i]]
        logits = torch.cat([(h[i] * w[y[i]]).sum()[None], w[kept] @ h[i]])
        expected.append(-torch.log_softmax(logits, 0)[0])
    torch.manual_seed(3)
    ours = model._sampled_loss(h, y)
    assert ours.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)


@pytest.mark.parametrize("loss", ["bce", "gbce"])
def test_losses_fall_on_a_tiny_log(loss: str) -> None:
    model = tiny(loss=loss, num_negatives=16)
    losses = fit_successor(model, epochs=40)
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])
    ranks = successor_ranks(model)
    assert ranks.float().mean() <= 2.5 and ranks.max() <= 5  # the successor, of 40 items, is (near) the top


def test_bad_options_are_refused() -> None:
    with pytest.raises(InputError, match="gbce_t"):
        tiny(loss="gbce", gbce_t=1.5)
    with pytest.raises(InputError, match="loss"):
        tiny(loss="hinge")
    with pytest.raises(InputError, match="time_features"):
        tiny(time_features="yes")


def test_label_smoothing_is_the_smoothed_cross_entropy_and_only_for_the_full_softmax() -> None:
    smoothed, plain = tiny(label_smoothing=0.1), tiny()
    ids = torch.randint(1, N_ITEMS + 1, (6, 12), generator=torch.Generator().manual_seed(1))
    targets = torch.randint(1, N_ITEMS + 1, (6, 12), generator=torch.Generator().manual_seed(2))
    hidden = plain.forward_hidden(ids).hidden.reshape(-1, 16)  # (72, D): same weights in both models
    logits = hidden @ plain.output_weights()[1:].T  # (72, V)
    ref = torch.nn.functional.cross_entropy(logits, targets.reshape(-1) - 1, label_smoothing=0.1)
    torch.testing.assert_close(smoothed(ids, targets), ref)
    assert not torch.isclose(plain(ids, targets), ref)
    for bad in ({"label_smoothing": 1.0}, {"label_smoothing": -0.1}, {"label_smoothing": 0.1, "loss": "gbce"}):
        with pytest.raises(InputError, match="label_smoothing"):
            tiny(**bad)

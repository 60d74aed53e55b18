"""The options the Train page disables for a loss really do nothing with that loss: same seed, same batch, any
value of them, the same training loss (so disabling them hides no real choice)."""
from __future__ import annotations

import pytest
import torch

from seqrec_core.models import build_model, inactive_options

LOSSES = ("full", "sampled", "bce", "gbce")
# A value unlike the default for each option that a loss may ignore (500 items: 256 negatives are a sample)
OTHER_VALUE = {"num_negatives": 7, "negatives": "popularity", "gbce_t": 0.2, "label_smoothing": 0.3}


def training_loss(options: dict) -> float:
    torch.manual_seed(0)
    model = build_model("sasrec", 500, hidden_size=16, num_heads=2, num_layers=1, max_len=8, dropout=0.0,
                        item_dropout=0.0, **options)
    model.set_item_counts(torch.arange(1, 501, dtype=torch.float32) ** 2)  # a skewed popularity to sample by
    gen = torch.Generator().manual_seed(1)
    inputs = torch.randint(1, 501, (4, 8), generator=gen)  # (B, W)
    targets = torch.randint(1, 501, (4, 8), generator=gen)  # (B, W)
    model.train()
    torch.manual_seed(2)  # the same negatives drawn, where any are
    return float(model(inputs, targets).detach())


@pytest.mark.parametrize("loss", LOSSES)
def test_disabled_options_leave_the_loss_unchanged(loss):
    inactive = inactive_options("sasrec", {"loss": loss})
    base = training_loss({"loss": loss})
    for name in inactive:
        if name == "label_smoothing":  # refused outright for the other losses: it cannot slip through
            with pytest.raises(Exception, match="full softmax only"):
                training_loss({"loss": loss, name: OTHER_VALUE[name]})
            continue
        assert training_loss({"loss": loss, name: OTHER_VALUE[name]}) == pytest.approx(base, abs=1e-6), name
    for name in set(OTHER_VALUE) - set(inactive):  # and every option left enabled does change something
        assert training_loss({"loss": loss, name: OTHER_VALUE[name]}) != pytest.approx(base, abs=1e-6), name


def test_families_without_rules_have_no_inactive_options():
    assert inactive_options("gru4rec", {"loss": "bce"}) == {}
    assert set(inactive_options("sasrec", {})) == {"num_negatives", "negatives", "gbce_t"}  # the default loss: full

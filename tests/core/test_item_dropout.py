"""Item dropout (``seqrec_core.models.neural.item_dropout``) in every family that has it: whole input items are
blanked in training only, and evaluation is the same model as without the option."""
from __future__ import annotations

import pytest
import torch

from seqrec_core.models import build_model

N_ITEMS = 40
VARIANTS = {"sasrec rotary": ("sasrec", {"positions": "rotary", "num_heads": 2}),
            "sasrec learned": ("sasrec", {"positions": "learned", "num_heads": 2}),
            "gru4rec": ("gru4rec", {}), "lstm": ("lstm", {}), "lsi": ("lsi", {"short_window": 3})}


def tiny(variant: str, **kw) -> torch.nn.Module:
    family, extra = VARIANTS[variant]
    torch.manual_seed(0)
    return build_model(family, N_ITEMS, hidden_size=16, num_layers=2, max_len=12, dropout=0.0, **extra, **kw).eval()


@pytest.mark.parametrize("variant", VARIANTS)
def test_item_dropout_blanks_whole_items_in_training_only(variant: str) -> None:
    """With every item blanked, two histories of the same length look alike (only positions remain); in
    evaluation nothing is blanked and the model equals the same weights without the option."""
    model = tiny(variant, item_dropout=0.999)
    plain = tiny(variant, item_dropout=0.0)
    plain.load_state_dict(model.state_dict())
    a, b = torch.tensor([[0, 3, 7, 9]]), torch.tensor([[0, 30, 1, 22]])
    with torch.no_grad():
        model.train()
        torch.manual_seed(1)  # rand >= 0.999 for none of the 4 events
        ha = model.forward_hidden(a).hidden
        torch.manual_seed(1)
        torch.testing.assert_close(ha, model.forward_hidden(b).hidden)
        model.eval()
        ea, eb = model.forward_hidden(a).hidden, model.forward_hidden(b).hidden
        assert (ea - eb).abs().max() > 1e-3
        torch.testing.assert_close(ea, plain.forward_hidden(a).hidden)
    half = tiny(variant, item_dropout=0.5).train()
    torch.manual_seed(0)
    seen = {tuple(half.forward_hidden(a).hidden[0, -1].detach().round(decimals=4).tolist()) for _ in range(8)}
    assert len(seen) > 1  # a different share of the history is blanked from call to call

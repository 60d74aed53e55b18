"""Precision: auto picks bf16 only where the CPU multiplies bf16 natively, the choice is reported, a bf16 training
keeps fp32 weights and learns, the loss kernel stays fp32 under autocast, and the CLI offers exactly the choices."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from seqrec_core.cli.train import PRECISION_CHOICES
from seqrec_core.data import build_sequences
from seqrec_core.errors import InputError
from seqrec_core.models import build_model
from seqrec_core.models.neural import full_softmax_cross_entropy
from seqrec_core.training import TrainConfig, train_model
from seqrec_core.training import config as config_module
from seqrec_core.training.config import PRECISIONS, resolve_precision


def test_the_cli_offers_exactly_the_configs_precisions() -> None:
    assert PRECISION_CHOICES == PRECISIONS


def test_a_bad_precision_is_one_input_error() -> None:
    with pytest.raises(InputError, match="precision='fp8' is not one of auto, fp32, bf16"):
        TrainConfig(precision="fp8")


@pytest.mark.parametrize(("fast", "asked", "used"), [(True, "auto", "bf16"), (False, "auto", "fp32"),
                                                      (False, "bf16", "bf16"), (True, "fp32", "fp32")])
def test_auto_uses_bf16_only_where_the_cpu_has_it(monkeypatch, fast, asked, used) -> None:
    monkeypatch.setattr(config_module, "cpu_has_fast_bf16", lambda: fast)
    assert resolve_precision(torch.device("cpu"), TrainConfig(precision=asked)) == used


def test_mps_and_cuda_without_amp_train_in_fp32() -> None:
    assert resolve_precision(torch.device("mps"), TrainConfig(precision="bf16")) == "fp32"
    assert resolve_precision(torch.device("cuda"), TrainConfig(amp=False)) == "fp32"
    assert resolve_precision(torch.device("cuda"), TrainConfig(precision="fp32")) == "fp32"


def test_the_loss_kernel_computes_in_fp32_under_bf16_autocast() -> None:
    g = torch.Generator().manual_seed(0)
    h, w = torch.randn(40, 16, generator=g), torch.randn(30, 16, generator=g)
    targets = torch.randint(1, 30, (40,), generator=g)
    plain = full_softmax_cross_entropy(h, w, targets, first_column=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = full_softmax_cross_entropy(h, w, targets, first_column=1)
    assert under.dtype == torch.float32
    torch.testing.assert_close(under, plain)  # bf16 products would be off by ~1e-2


def test_a_bf16_training_keeps_fp32_weights_learns_and_says_so(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):  # every user walks the catalogue in order: the next item is learnable
        start = int(rng.integers(0, 16))
        rows += [(f"u{u}", f"i{(start + t) % 16:02d}", t) for t in range(8)]
    data = build_sequences(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))
    torch.manual_seed(0)
    model = build_model("sasrec", data.vocab.n_items, hidden_size=16, num_layers=1, num_heads=1, max_len=8)
    events: list[dict] = []
    result = train_model(model, data, TrainConfig(epochs=6, batch_size=16, lr=5e-3, max_len=8, device="cpu",
                                                  precision="bf16"), on_event=events.append)
    assert events[0]["precision"] == "bf16"
    assert all(p.dtype == torch.float32 for p in result.model.parameters())  # the master weights
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.best_val > 0.3

"""The moving average of the weights: exact per-step arithmetic, weights restored after a swap, and in the
trainer it changes what is validated and kept but never what is trained."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from seqrec_core.errors import InputError
from seqrec_core.evaluation import evaluate
from seqrec_core.models import NeuralScorer
from seqrec_core.training import TrainConfig, train_model
from seqrec_core.training.weight_average import WeightAverage
from tests.core.test_training import cfg, data, fresh_model  # noqa: F401 - data is a fixture


def test_average_follows_the_warmed_up_decay_step_by_step() -> None:
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    average = WeightAverage(layer, decay=0.6)
    expected = torch.ones(1, 2)
    for step, value in enumerate([3.0, -1.0, 5.0, 0.5, 2.0], start=1):
        with torch.no_grad():
            layer.weight.fill_(value)
        average.update()
        decay = min(0.6, (1 + step) / (10 + step))  # 2/11, 3/12, ... until it reaches 0.6
        expected = decay * expected + (1 - decay) * value
        assert torch.allclose(average.shadow[0], expected)


def test_swapped_in_holds_the_average_and_restores_the_weights_even_on_error() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    average = WeightAverage(model, decay=0.5)
    own = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    average.update()
    moved = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(RuntimeError, match="inside"), average.swapped_in():
        for p, shadow in zip(model.parameters(), average.shadow, strict=True):
            assert torch.equal(p, shadow) and not torch.equal(p, moved[0 if p.dim() == 2 else 1])
        raise RuntimeError("inside")
    for p, before, after in zip(model.parameters(), own, moved, strict=True):
        assert torch.equal(p, after) and not torch.equal(p, before)


def test_trainer_validates_and_keeps_the_average_without_changing_training(data) -> None:  # noqa: F811
    plain = train_model(fresh_model(data), data, cfg(epochs=4, keep="last", patience=50, weight_average=0.0))
    averaged = train_model(fresh_model(data), data, cfg(epochs=4, keep="last", patience=50, weight_average=0.9))
    # the optimiser's trajectory is the same: the average is only swapped in to validate and snapshot
    assert [r["train_loss"] for r in averaged.history] == [r["train_loss"] for r in plain.history]
    assert [r["val_NDCG@10"] for r in averaged.history] != [r["val_NDCG@10"] for r in plain.history]
    kept = evaluate(NeuralScorer(averaged.model, 10), data, "val").metrics["NDCG@10"]
    assert kept == pytest.approx(averaged.history[-1]["val_NDCG@10"], abs=1e-6)
    pairs = zip(plain.model.parameters(), averaged.model.parameters(), strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs)


@pytest.mark.parametrize("decay", [1.0, -0.1, True, "0.9", float("nan")])
def test_bad_decay_is_an_input_error(decay) -> None:
    with pytest.raises(InputError, match="weight_average"):
        TrainConfig(weight_average=decay)

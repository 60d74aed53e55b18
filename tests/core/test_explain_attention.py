"""Attention maps: causal, row-stochastic over the real events, views consistent, the model left untouched."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seqrec_core.errors import InputError
from seqrec_core.explain.attention import AttentionMaps, get_attention, mean_attention_distance, rollout
from seqrec_core.models import build_model

N_ITEMS = 40


def tiny(positions: str = "rotary", max_len: int = 12):
    torch.manual_seed(0)
    return build_model("sasrec", N_ITEMS, hidden_size=16, num_layers=2, num_heads=2, max_len=max_len,
                       positions=positions).eval()


@pytest.fixture(scope="module", params=["rotary", "learned"])
def maps(request) -> AttentionMaps:
    return get_attention(tiny(request.param), np.array([3, 7, 9, 11, 2, 5, 5, 30]))


def test_shape_and_items_without_padding(maps: AttentionMaps) -> None:
    assert maps.weights.shape == (2, 2, 8, 8)
    assert maps.weights.dtype == np.float32
    assert maps.items.tolist() == [3, 7, 9, 11, 2, 5, 5, 30]


def test_rows_sum_to_one_and_nothing_attends_to_the_future(maps: AttentionMaps) -> None:
    np.testing.assert_allclose(maps.weights.sum(-1), 1.0, atol=1e-5)
    assert np.abs(np.triu(maps.weights, k=1)).max() == 0.0
    assert (maps.weights >= 0).all()
    np.testing.assert_allclose(maps.weights[..., 0, 0], 1.0, atol=1e-6)  # the oldest event sees only itself


def test_mean_rollout_and_last_row_views_are_stochastic_and_causal(maps: AttentionMaps) -> None:
    for view in (maps.mean(), maps.rollout(), maps.layer_map(0), maps.layer_map(1, head=1)):
        assert view.shape == (8, 8)
        np.testing.assert_allclose(view.sum(-1), 1.0, atol=1e-5)
        assert np.abs(np.triu(view, k=1)).max() < 1e-7
    np.testing.assert_allclose(maps.last_row("mean"), maps.mean()[-1])
    np.testing.assert_allclose(maps.last_row("rollout"), maps.rollout()[-1])
    np.testing.assert_allclose(maps.last_row("layer", layer=0, head=1), maps.weights[0, 1, -1])
    np.testing.assert_allclose(maps.last_row("layer", layer=1), maps.weights[1].mean(0)[-1], atol=1e-7)
    for bad in ({"view": "sideways"}, {"view": "layer", "layer": 5}, {"view": "layer", "layer": 0, "head": 9}):
        with pytest.raises(InputError):
            maps.last_row(**bad)


def test_rollout_of_identity_attention_is_identity_and_mixing_spreads_mass() -> None:
    eye = np.broadcast_to(np.eye(4, dtype=np.float32), (1, 3, 2, 4, 4))
    np.testing.assert_allclose(rollout(eye)[0], np.eye(4), atol=1e-6)
    uniform = np.tril(np.ones((4, 4), dtype=np.float32))
    uniform /= uniform.sum(-1, keepdims=True)
    r = rollout(np.broadcast_to(uniform, (1, 2, 1, 4, 4)))[0]
    assert r[-1, 0] > 0.1 and np.isclose(r[-1].sum(), 1.0, atol=1e-6)


def test_mean_attention_distance_is_the_expected_lag() -> None:
    t = 6
    prev = np.zeros((t, t), dtype=np.float32)  # every query attends to the event right before it
    prev[0, 0] = 1.0
    prev[np.arange(1, t), np.arange(t - 1)] = 1.0
    first = np.zeros((t, t), dtype=np.float32)  # every query attends to the oldest event
    first[:, 0] = 1.0
    maps = AttentionMaps(items=np.arange(1, t + 1), weights=np.stack([np.stack([prev, first])]))
    dist = mean_attention_distance(maps)
    assert dist.shape == (1, 2)
    np.testing.assert_allclose(dist[0], [1.0, np.mean(np.arange(1, t))])


def test_long_history_is_cut_to_the_model_window_and_the_model_is_untouched() -> None:
    model = tiny(max_len=12)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    maps = get_attention(model, np.arange(1, 31))
    assert maps.items.tolist() == list(range(19, 31))
    assert maps.weights.shape[-1] == 12
    assert get_attention(model, np.arange(1, 31), max_len=5).weights.shape[-1] == 5
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.item_emb._forward_hooks and not model._forward_hooks
    # ... and the next plain forward still uses fast attention with the boolean mask
    with torch.no_grad():
        assert torch.isfinite(model.score(torch.tensor([[1, 2, 3]]))[:, 1:]).all()
    with pytest.raises(InputError):
        get_attention(model, np.array([], dtype=np.int64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_attention_on_cuda_matches_cpu() -> None:
    model = tiny()
    cpu = get_attention(model, np.array([3, 7, 9, 11])).weights
    gpu = get_attention(model.to("cuda"), np.array([3, 7, 9, 11])).weights
    np.testing.assert_allclose(cpu, gpu, atol=1e-4)

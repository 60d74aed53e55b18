"""The CPU speed paths compute what the plain torch / transformers code computes: the dropout mask, the chunked
full-softmax loss and the attention function used for training with dropout."""
from __future__ import annotations

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

import seqrec_core.models.neural as neural
from seqrec_core.models.fast_attention import attention_forward
from seqrec_core.models.neural import dense_cross_entropy, fast_dropout, full_softmax_cross_entropy, keep_mask

CPU = torch.device("cpu")


@pytest.mark.parametrize("p", [0.1, 0.4, 0.75])
def test_keep_mask_keeps_one_minus_p_in_every_16_bit_lane(p: float) -> None:
    torch.manual_seed(0)
    mask = keep_mask((997, 401), p, CPU)  # odd sizes: the last 64-bit draw is cut
    assert mask.shape == (997, 401) and mask.dtype == torch.bool
    flat = mask.flatten().float()
    for lane in range(4):  # each quarter of a 64-bit draw is its own uniform: no lane is biased
        assert abs(flat[lane::4].mean().item() - (1 - p)) < 0.006
    # neighbours are independent: the share of kept pairs is (1 - p)^2
    assert abs((flat[:-1] * flat[1:]).mean().item() - (1 - p) ** 2) < 0.006


def test_keep_mask_follows_the_global_seed() -> None:
    torch.manual_seed(7)
    a = keep_mask((50, 3), 0.5, CPU)
    torch.manual_seed(7)
    assert torch.equal(a, keep_mask((50, 3), 0.5, CPU))
    assert not torch.equal(a, keep_mask((50, 3), 0.5, CPU))


def test_fast_dropout_scales_kept_values_and_their_gradient() -> None:
    torch.manual_seed(0)
    x = torch.full((20_000,), 2.0, requires_grad=True)
    y = fast_dropout(x, 0.25, training=True)
    kept = y != 0
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 2.0 / 0.75))
    assert abs(kept.float().mean().item() - 0.75) < 0.01
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.75)
    assert fast_dropout(x, 0.25, training=False) is x and fast_dropout(x, 0.0, training=True) is x


@pytest.mark.parametrize("first_column", [0, 1])
@pytest.mark.parametrize("loss_scale", [1.0, 3.0])
@pytest.mark.parametrize("size", [0.5, 8.0])  # |h||w| bound ~8: exp without the max shift; ~2000: softmax path
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_chunked_loss_matches_cross_entropy_with_and_without_the_padding_row(first_column: int, loss_scale: float,
                                                                              size: float, smoothing: float) -> None:
    torch.manual_seed(0)
    weight = (torch.randn(301, 16) * size).requires_grad_()  # row 0 = padding
    h = (torch.randn(700, 16) * size).requires_grad_()
    y = torch.randint(1, 301, (700,))  # 1-based item ids
    ref = torch.nn.functional.cross_entropy(h @ weight[1:].T, y - 1, label_smoothing=smoothing)
    ref_h, ref_w = torch.autograd.grad(loss_scale * ref, (h, weight))
    if first_column:
        loss = full_softmax_cross_entropy(h, weight, y, chunk=64, first_column=1, label_smoothing=smoothing)
    else:
        loss = full_softmax_cross_entropy(h, weight[1:], y - 1, chunk=64, label_smoothing=smoothing)
    got_h, got_w = torch.autograd.grad(loss_scale * loss, (h, weight))
    if size < 1:
        torch.testing.assert_close(loss, ref.detach())
    else:  # targets a thousand logits below the top: the reported loss clamps p at 1e-45; gradients stay exact
        assert torch.isfinite(loss) and loss <= ref
    torch.testing.assert_close(got_h, ref_h, atol=1e-5 * size, rtol=1e-4)
    torch.testing.assert_close(got_w, ref_w, atol=1e-5 * size, rtol=1e-4)
    assert got_w[0].abs().max() == 0  # the padding row is never a candidate


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_the_gpu_form_of_the_loss_skips_the_padding_row_too(smoothing: float) -> None:
    """The non-CPU path (whole logits + F.cross_entropy), run here on CPU tensors: same loss and gradients."""
    torch.manual_seed(0)
    weight = torch.randn(51, 8, requires_grad=True)
    h = torch.randn(40, 8, requires_grad=True)
    y = torch.randint(1, 51, (40,))
    ref = torch.nn.functional.cross_entropy(h @ weight[1:].T, y - 1, label_smoothing=smoothing)
    got = dense_cross_entropy(h, weight, y, first_column=1, label_smoothing=smoothing)
    torch.testing.assert_close(got, ref)
    for a, b in zip(torch.autograd.grad(got, (h, weight)), torch.autograd.grad(ref, (h, weight)), strict=True):
        torch.testing.assert_close(a, b)


class _Attn(torch.nn.Module):
    is_causal = True
    num_key_value_groups = 1


def _attention_inputs(b: int = 6, h: int = 2, t: int = 9, d: int = 8):
    torch.manual_seed(0)
    q, k, v = (torch.randn(b, h, t, d, requires_grad=True) for _ in range(3))
    real = torch.ones(b, t, dtype=torch.bool)
    real[:, :3] = False  # left padding
    idx = torch.arange(t)
    allowed = (idx[None, :] <= idx[:, None])[None] & (real[:, None, :] | torch.eye(t, dtype=torch.bool)[None])
    mask = torch.zeros(b, t, t).masked_fill_(~allowed, torch.finfo(torch.float32).min)[:, None]  # (B, 1, T, T)
    return q, k, v, mask


def test_attention_without_dropout_is_transformers_sdpa() -> None:
    q, k, v, mask = _attention_inputs()
    ours, _ = attention_forward(_Attn(), q, k, v, mask, dropout=0.0, scaling=0.3)
    ref, _ = sdpa_attention_forward(_Attn(), q, k, v, mask, dropout=0.0, scaling=0.3)
    assert torch.equal(ours, ref)


def test_attention_with_dropout_is_sdpa_on_the_kept_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    q, k, v, mask = _attention_inputs()
    ref, _ = sdpa_attention_forward(_Attn(), q, k, v, mask, dropout=0.0, scaling=0.3)  # (B, T, H, Dh)
    monkeypatch.setattr(neural, "keep_mask", lambda shape, p, device: torch.ones(shape, dtype=torch.bool))
    ours, _ = attention_forward(_Attn(), q, k, v, mask, dropout=0.3, scaling=0.3)
    torch.testing.assert_close(ours * 0.7, ref)  # everything kept: only the 1 / (1 - p) scale differs


def test_attention_dropout_never_lets_masked_keys_in_and_is_unbiased() -> None:
    q, k, v, mask = _attention_inputs()
    ref, _ = sdpa_attention_forward(_Attn(), q, k, v, mask, dropout=0.0, scaling=0.3)
    torch.manual_seed(1)
    draws = [attention_forward(_Attn(), q, k, v, mask, dropout=0.3, scaling=0.3)[0] for _ in range(600)]
    mean = torch.stack(draws).mean(0)
    assert (mean - ref).abs().mean() < 0.03 * ref.abs().mean()  # E[dropout(w)] = w
    out, _ = attention_forward(_Attn(), q, k, v, mask, dropout=0.3, scaling=0.3)
    (grad_v,) = torch.autograd.grad(out[:, 3:].sum(), v)  # real queries only
    assert grad_v[:, :, :3].abs().max() == 0  # padded keys get no weight from any real query

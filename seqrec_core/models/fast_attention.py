"""The attention function our Transformer bodies train with: transformers' SDPA, except for dropout on a CPU.

Why: on a CPU, ``scaled_dot_product_attention`` with dropout falls back to its math path and draws the dropout
mask with ``bernoulli_`` (~10 ns an element: 6 ms a layer for a batch of 128 x 50 events, a fifth of SASRec's
forward pass). :func:`attention_forward` does the same math with the mask from
:func:`seqrec_core.models.neural.keep_mask`. Everything else (GPUs, inference, no dropout, no mask) goes to
transformers' own SDPA function unchanged, so scores and explanations do not depend on this module.

The function is registered with transformers' ``AttentionInterface`` under :data:`ATTENTION` when this module is
imported; a model selects it with ``config._attn_implementation = ATTENTION`` (or ``set_attn_implementation``).
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from seqrec_core.models.neural import fast_dropout

ATTENTION = "seqrec_sdpa"


def attention_forward(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                      **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' attention-function contract: q (B, H, T, Dh), k/v (B, Hkv, S, Dh), additive or None mask
    (B, 1, T, S); returns (B, T, H, Dh) and no weights."""
    if dropout <= 0.0 or query.device.type != "cpu" or attention_mask is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)  # (B, H, S, Dh)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scale  # (B, H, T, S)
    if attention_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)  # (B, H, T, S)
    else:
        scores = scores + attention_mask  # (B, H, T, S)
    probs = fast_dropout(torch.softmax(scores, dim=-1), dropout, True)  # (B, H, T, S)
    out = torch.matmul(probs, value)  # (B, H, T, Dh)
    return out.transpose(1, 2).contiguous(), None  # (B, T, H, Dh)


AttentionInterface.register(ATTENTION, attention_forward)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)  # masks built by transformers (we pass our own) as for SDPA

"""Attention maps of a causal sequence model over one user's history, as data (figures live in viz/).

Why a typed result: the Explain page shows one map per layer and head, their mean, the rollout and the
prediction point's row; all of them are views of the same ``(L, H, T, T)`` array taken from
``model.forward_hidden(..., output_attentions=True)`` (eager attention for that call only). Only the real
events are kept (left padding removed), so row q is the attention of event q over events 0..q and sums to 1.
A time-aware model (``uses_time``) gets the history's times (events then query time) too, as when it scores.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from seqrec_core.errors import InputError
from seqrec_core.models.base import uses_time
from seqrec_core.models.neural import pad_left
from seqrec_core.models.time_features import check_times, pad_times_left

VIEWS = ("mean", "rollout", "layer")


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's weights: every tensor an explanation makes goes there."""
    return next(model.parameters()).device


def window(model: nn.Module, history: np.ndarray, max_len: int | None = None) -> np.ndarray:
    """The events the model actually sees: the last ``max_len`` (default: the model's) of ``history``."""
    limit = int(max_len or model.config.max_len)
    limit = min(limit, int(model.config.max_len))
    return np.asarray(history, dtype=np.int64)[-limit:]


@dataclass
class AttentionMaps:
    """Attention of every layer and head over the events the model saw (oldest -> latest)."""

    items: np.ndarray  # (T,) item indices, no padding
    weights: np.ndarray  # (L, H, T + E, T + E) float32; rows sum to 1; zero above the diagonal if causal
    appended: int = 0  # E: tokens the model appends after the history (BERT4Rec's mask, the prediction point)

    def prediction_row(self, matrix: np.ndarray) -> np.ndarray:
        """(T,) the prediction point's row of a (T + E, T + E) view over the T events; with an appended token
        its weight on itself is left out and the rest renormalised to sum to 1."""
        row = np.asarray(matrix, dtype=np.float64)[-1, :len(self.items)]
        if self.appended:
            row = row / max(row.sum(), 1e-12)
        return row.astype(np.float32)

    def mean(self) -> np.ndarray:
        """(T, T) plain average over layers and heads."""
        return self.weights.mean(axis=(0, 1))

    def rollout(self) -> np.ndarray:
        """(T, T) attention rollout (Abnar & Zuidema 2020): how much each event flows into each position
        through all layers, counting the residual path as half of every layer (0.5*A + 0.5*I, head mean)."""
        return rollout(self.weights[None])[0]

    def last_row(self, view: str = "mean", layer: int | None = None, head: int | None = None) -> np.ndarray:
        """(T,) attention of the prediction point (the latest event) over the history."""
        if view == "mean":
            return self.mean()[-1]
        if view == "rollout":
            return self.rollout()[-1]
        if view == "layer":
            return self.layer_map(layer if layer is not None else self.weights.shape[0] - 1, head)[-1]
        raise InputError(f"attention view '{view}' is unknown; use one of {list(VIEWS)}")

    def layer_map(self, layer: int, head: int | None = None) -> np.ndarray:
        """(T, T) one layer's map: one head, or the mean over its heads when ``head`` is None."""
        n_layers, n_heads = self.weights.shape[:2]
        if not 0 <= int(layer) < n_layers:
            raise InputError(f"layer {layer} does not exist; the model has layers 0..{n_layers - 1}")
        if head is None:
            return self.weights[int(layer)].mean(axis=0)
        if not 0 <= int(head) < n_heads:
            raise InputError(f"head {head} does not exist; each layer has heads 0..{n_heads - 1}")
        return self.weights[int(layer), int(head)]


def rollout(weights: np.ndarray) -> np.ndarray:
    """Batched rollout: weights (B, L, H, T, T) -> (B, T, T); row-stochastic in, row-stochastic out."""
    a = weights.mean(axis=2)  # (B, L, T, T) head mean
    eye = np.eye(a.shape[-1], dtype=np.float64)
    out = np.broadcast_to(eye, (a.shape[0],) + eye.shape).copy()  # (B, T, T)
    for layer in range(a.shape[1]):
        step = 0.5 * a[:, layer].astype(np.float64) + 0.5 * eye  # (B, T, T)
        step /= step.sum(axis=-1, keepdims=True)
        out = step @ out  # later layers act on what earlier layers already mixed
    return out.astype(np.float32)


def has_attention(model: nn.Module) -> bool:
    """Whether the model returns attention maps (SASRec, BERT4Rec, LSI's short-term attention; not GRU/LSTM)."""
    if not hasattr(model, "forward_hidden"):
        return False
    with torch.no_grad():
        probe = torch.ones(1, 1, dtype=torch.long, device=model_device(model))  # (1, 1) one real event
        return bool(model.forward_hidden(probe, output_attentions=True).attentions)


@torch.no_grad()
def attention_batch(model: nn.Module, histories: list[np.ndarray],
                    times: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """(L, H, T_i + E, T_i + E) float32 per history, from one left-padded forward pass on the model's device;
    E = ``model.appended_tokens`` (default 0) tokens the model appends after the history, e.g. BERT4Rec's mask
    token, whose row is then the prediction point's. ``times`` (required by a time-aware model, ignored by the
    others): per history its events' unix seconds followed by the query time."""
    max_len = int(model.config.max_len)
    ids = pad_left(histories, max_len).to(model_device(model))  # (B, W)
    if uses_time(model):
        checked = check_times(histories, times, f"model '{type(model).__name__}'")
        tt = pad_times_left(checked, max_len, ids.shape[1]).to(ids.device)  # (B, W + 1)
        out = model.forward_hidden(ids, output_attentions=True, times=tt)
    else:
        out = model.forward_hidden(ids, output_attentions=True)
    if not out.attentions:
        raise InputError(f"model '{type(model).__name__}' returns no attention maps; attention views need a "
                         "run with attention: sasrec, bert4rec or lsi")
    att = torch.stack(out.attentions, dim=1).detach().float().cpu().numpy()  # (B, L, H, W, W)
    width = ids.shape[1]
    maps = []
    for row, h in enumerate(histories):
        n = min(len(h), max_len)
        maps.append(np.ascontiguousarray(att[row, :, :, width - n:, width - n:]))  # (L, H, n, n)
    return maps


def get_attention(model: nn.Module, history: np.ndarray, max_len: int | None = None,
                  times: np.ndarray | None = None) -> AttentionMaps:
    """Attention maps of ``model`` for one history (item indices, oldest first; the last max_len are used).
    ``times`` (len(history) + 1,): the events' unix seconds then the query time; required by a time-aware model."""
    items = window(model, history, max_len)
    if len(items) == 0:
        raise InputError("the history is empty, so there is no attention to show; pick a user with events")
    cut = None
    if uses_time(model):
        (full,) = check_times([np.asarray(history)], None if times is None else [times],
                              f"model '{type(model).__name__}'")
        cut = [full[-(len(items) + 1):]]  # (T + 1,) the window's times and the query time
    weights = attention_batch(model, [items], cut)[0]  # (L, H, T + E, T + E)
    return AttentionMaps(items=items, weights=weights, appended=weights.shape[-1] - len(items))


def mean_attention_distance(maps: AttentionMaps) -> np.ndarray:
    """(L, H): expected |q - k| (in events) under each head's attention, averaged over query positions.

    Why: a head whose mean distance is 1-2 looks at the last few events; one with 15+ carries long-range
    context. Query 0 (which can only see itself) is left out, as its distance is 0 by construction.
    """
    t = maps.weights.shape[-1]
    idx = np.arange(t)
    dist = np.abs(idx[:, None] - idx[None, :]).astype(np.float64)  # (T, T)
    per_query = (maps.weights.astype(np.float64) * dist).sum(axis=-1)  # (L, H, T)
    if t <= 1:
        return np.zeros(maps.weights.shape[:2])
    return per_query[..., 1:].mean(axis=-1)

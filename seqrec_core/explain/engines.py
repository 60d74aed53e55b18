"""The batched attribution engines under :func:`seqrec_core.explain.attribution.attribute_batch`.

Each engine takes left-padded item ids ``(B, W)`` and target item indices ``(B,)`` on the model's device and
returns one attribution per column. Why Captum's hooks never touch the shared (cached) model: the engines run
on a *view* of it (same weights, same backbone) whose item-embedding entry is a small proxy module; Captum
hooks the proxy, so a dashboard session scoring with the model at the same moment is unaffected.

IG baselines (``IG_BASELINES``), both keeping the history's mask and positions (only event vectors move):
- ``"mean"`` (default): every event replaced by the catalogue's average item vector. The path stays among
  inputs the model was trained on, so IG credits *which* item sat where. Plain Gauss-Legendre path.
- ``"padding"``: every event replaced by the padding vector (zeros); for the rotary model this scores exactly
  like an all-padding history (no biases, RMSNorm(0) = 0). Near zero, RMSNorm (eps 1e-6, scale-invariant)
  switches on layer by layer, so the score swings between s ~ 1e-10 and 1e-3 of the way along the path; the
  path is therefore walked in two segments, the near one timed log-uniformly (see ``_EmbeddingProxy``).
  Measured on a model that learned 20-40-step trigger -> response pairs (tests/core/test_explain_planted.py's
  log, 100 correctly predicted responses): the trigger is among the 3 highest events for 93% with "mean" (20
  or 50 steps), 47% with "padding" (which credits the first and latest events: the attention sink and the
  query), occlusion 87%, GradientShap ("mean") 54% with 50 samples and 85% with 200, attention rollout 59%.

Time-aware models (``model.uses_time``): every engine also takes the (B, W + 1) times tensor and passes it
unchanged to every forward, so IG, GradientShap and occlusion attribute the ITEM embeddings with the time
features held fixed (an event's hour, weekday, gap and query-time embeddings never move along the path).
Occlusion then blanks the event's item vector (the zero padding vector) in place instead of removing the event:
the event keeps its position and its time slot, so only its item is taken away.
"""
from __future__ import annotations

import math
import threading
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqrec_core.explain.attention import attention_batch, rollout

IG_BASELINES = ("mean", "padding")
NEAR_DECADES = 10.0  # padding baseline: the near segment is timed log-uniformly over this many decades
NEAR_END = 1e-2  # ... ending at s = NEAR_END; the far segment runs linearly from there to the real history
NEAR_SHARE = 0.7  # share of the steps spent on the near segment
NEAR_METHOD = "riemann_middle"  # nodes evenly spread over the decades (Gauss-Legendre crowds the ends)
POSITION_BUDGET = 12_288  # (rows x positions) per forward/backward chunk: keeps CPU caches warm, GPU busy
MEAN_ID = -1  # the baseline's "average item" in the path ids

_NUMPY_RNG_LOCK = threading.Lock()  # guards numpy's global generator while GradientSHAP uses it


class _Lookup(nn.Module):
    """Item-vector lookup (id -1 = the catalogue's mean vector); the layer Captum attributes to."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        object.__setattr__(self, "weight", weight)  # a reference, not a registered parameter
        self.mean = weight[1:].detach().mean(0)  # (D,)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()  # GradientShap's noise tunnel hands the ids over as floats
        out = F.embedding(ids.clamp_min(0), self.weight, padding_idx=0)  # (N, W, D)
        return torch.where((ids == MEAN_ID)[..., None], self.mean, out)  # (N, W, D)


class _EmbeddingProxy(nn.Module):
    """Stands in for ``model.item_emb`` in a view of the model; feeds the model the current path point.

    The mask and positions always come from the real history (``real``, what the model is called with), while
    the vectors come from ``self.path`` (what Captum feeds: the real ids, or the baseline's ids), so Captum's
    convergence delta is exact for any position scheme. For the padding baseline the proxy re-times the path:
    Captum moves the lookup's output along u = a * e (a in [0, 1]); the proxy hands the model s(a) * e, with a
    "near" segment s in [0, NEAR_END] spread evenly in log(s) and a "far" one from NEAR_END to 1. Per event,
    sum_d u_d * dF/du_d over a is exactly the straight-line IG over that segment (substitution s = s(a)).
    """

    def __init__(self, weight: torch.Tensor, baseline: str = "mean") -> None:
        super().__init__()
        object.__setattr__(self, "weight", weight)  # a reference, not a registered parameter
        self.lookup = _Lookup(weight)
        self.baseline = baseline
        self.path: torch.Tensor | None = None  # (N, W) ids whose vectors the model gets
        self.far = False  # padding baseline: which segment Captum is walking

    def forward(self, real: torch.Tensor) -> torch.Tensor:
        if self.path is None:
            return self.lookup(real)  # (N, W, D)
        u = self.lookup(self.path)  # (N, W, D) replaced by Captum with the path point
        if self.baseline == "mean":
            return u
        e = F.embedding(real, self.weight, padding_idx=0).detach()  # (N, W, D) each event's own vector
        a = ((u * e).sum(-1, keepdim=True) / (e * e).sum(-1, keepdim=True).clamp_min(1e-30)).clamp(0.0, 1.0)
        if self.far:
            return e * (NEAR_END + (1.0 - NEAR_END) * a)  # (N, W, D)
        k = NEAR_DECADES * math.log(10.0)
        return e * (NEAR_END * torch.expm1(k * a) / math.expm1(k))  # (N, W, D)


def _view(model: nn.Module, embedding: nn.Module) -> nn.Module:
    """A shallow twin of ``model`` sharing every weight and submodule except its item-embedding entry."""
    twin = object.__new__(type(model))
    twin.__dict__.update(model.__dict__)
    twin.__dict__["_modules"] = dict(model._modules)  # own registry: replacing an entry leaves the model alone
    twin._modules["item_emb"] = embedding
    return twin


def target_score(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor,
                 times: torch.Tensor | None = None) -> torch.Tensor:
    """Score of each row's target item after its last column: (N, W), (N,) -> (N,); ``times`` (N, W + 1) only
    for a time-aware model."""
    if times is None:
        hidden = model.forward_hidden(ids).hidden[:, -1]  # (N, D)
    else:
        hidden = model.forward_hidden(ids, times=times).hidden[:, -1]  # (N, D)
    # The output layer, not item_emb: untied models score with their own table, and in a view item_emb is the proxy.
    return (hidden * model.output_weights()[targets]).sum(-1)  # (N,) == score(ids)[n, targets[n]]


def _path_forward(view: nn.Module, proxy: _EmbeddingProxy):
    """Captum's forward: x = path ids (the real ids, or the baseline's), then each row's target, real ids and
    times (None unless the model is time-aware; held fixed along the path)."""
    def forward(x: torch.Tensor, targets: torch.Tensor, real: torch.Tensor,
                times: torch.Tensor | None = None) -> torch.Tensor:
        proxy.path = x
        try:
            return target_score(view, real, targets, times)  # (N,)
        finally:
            proxy.path = None
    return forward


def baseline_ids(ids: torch.Tensor, baseline: str) -> torch.Tensor:
    """(B, W) path ids of the baseline: pads stay pads, events become the mean item or padding."""
    return torch.where(ids == 0, ids, torch.full_like(ids, MEAN_ID if baseline == "mean" else 0))


def _compact(ids: torch.Tensor) -> torch.Tensor:
    """Move padding to the left, keeping event order: an event replaced by 0 becomes an event removed."""
    order = torch.argsort((ids != 0).to(torch.int8), dim=1, stable=True)  # (N, W) pads first
    return ids.gather(1, order)  # (N, W)


class Engine(NamedTuple):
    scores: torch.Tensor  # (B, W) attribution per column
    target: torch.Tensor  # (B,) target score with the history
    baseline: torch.Tensor | None  # (B,) target score at the IG baseline
    delta: torch.Tensor | None  # (B,) convergence delta


def _segments(steps: int, baseline: str) -> list[tuple[bool, int, str]]:
    """(far, points, Captum method) per path segment; the segments' points add up to ``steps``."""
    if baseline == "mean":
        return [(True, max(1, steps), "gausslegendre")]
    near = max(2, round(steps * NEAR_SHARE))
    return [(False, near, NEAR_METHOD), (True, max(2, steps - near), "gausslegendre")]


def _extra(targets: torch.Tensor, ids: torch.Tensor, times: torch.Tensor | None) -> tuple:
    """Captum's additional forward args: times only for a time-aware model (the others' calls stay as before)."""
    return (targets, ids) if times is None else (targets, ids, times)


def _scores_and_baseline(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor, baseline: str,
                         times: torch.Tensor | None = None):
    proxy = _EmbeddingProxy(model.item_emb.weight, baseline)
    with torch.no_grad():
        target = target_score(model, ids, targets, times)  # (B,)
        base = _path_forward(_view(model, proxy), proxy)(baseline_ids(ids, baseline), targets, ids, times)  # (B,)
    return target, base


def run_ig(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor, steps: int, baseline: str,
           times: torch.Tensor | None = None) -> Engine:
    from captum.attr import LayerIntegratedGradients

    proxy = _EmbeddingProxy(model.item_emb.weight, baseline)
    lig = LayerIntegratedGradients(_path_forward(_view(model, proxy), proxy), proxy.lookup)
    b = ids.shape[0]
    chunk = max(b, (POSITION_BUDGET // max(ids.shape[1], 1)) // b * b)  # rows per pass: whole multiples of b
    base_ids = baseline_ids(ids, baseline)
    scores, delta = 0.0, 0.0
    with torch.enable_grad():
        for far, n_steps, method in _segments(steps, baseline):
            proxy.far = far
            attr, d = lig.attribute(ids, baselines=base_ids, additional_forward_args=_extra(targets, ids, times),
                                    n_steps=n_steps,
                                    method=method, internal_batch_size=min(chunk, b * n_steps),
                                    return_convergence_delta=True)
            scores = scores + attr.detach().sum(-1)  # (B, W) per event: summed over the embedding dimension
            delta = delta + d.detach().reshape(-1)  # (B,) Captum's delta, per segment, added
    target, base = _scores_and_baseline(model, ids, targets, baseline, times)
    return Engine(scores, target, base, delta)


def run_gradshap(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor, steps: int, baseline: str,
                 times: torch.Tensor | None = None) -> Engine:
    from captum.attr import LayerGradientShap

    proxy = _EmbeddingProxy(model.item_emb.weight, baseline)
    gs = LayerGradientShap(_path_forward(_view(model, proxy), proxy), proxy.lookup)
    devices = [ids.device] if ids.device.type == "cuda" else []
    scores = 0.0
    # Captum draws GradientSHAP's path points from numpy's global generator, so seeding torch alone left two calls
    # different (max difference 4.7 measured); the lock keeps concurrent sessions from interleaving that state.
    with _NUMPY_RNG_LOCK, torch.random.fork_rng(devices=devices), torch.enable_grad():
        numpy_state = np.random.get_state()
        np.random.seed(0)  # the same explanation every time it is asked for
        torch.manual_seed(0)
        try:
            for far, n_samples, _ in _segments(steps, baseline):
                proxy.far = far
                # one baseline row for every history: its vectors at padding positions never reach the prediction
                base_row = torch.full_like(ids[:1], MEAN_ID if baseline == "mean" else 0)  # (1, W)
                attr = gs.attribute(ids, baselines=base_row, n_samples=n_samples, stdevs=0.0,
                                    additional_forward_args=_extra(targets, ids, times))
                scores = scores + attr.detach().sum(-1)  # (B, W)
        finally:
            np.random.set_state(numpy_state)
    target, base = _scores_and_baseline(model, ids, targets, baseline, times)
    return Engine(scores, target, base, scores.sum(1) - (target - base))


@torch.no_grad()
def run_occlusion(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor,
                  times: torch.Tensor | None = None) -> Engine:
    from captum.attr import FeatureAblation

    b, w = ids.shape
    per_eval = min(w, max(1, 4 * POSITION_BUDGET // (b * w)))  # forward only: 4x the rows of a gradient pass
    if times is None:  # the event is removed (history compacted)
        fa = FeatureAblation(lambda x, t: target_score(model, _compact(x), t))
        attr = fa.attribute(ids, baselines=0, additional_forward_args=(targets,), perturbations_per_eval=per_eval)
    else:  # time-aware: the item vector is blanked in place; position, mask and time slot stay
        proxy = _EmbeddingProxy(model.item_emb.weight, "mean")
        fa = FeatureAblation(_path_forward(_view(model, proxy), proxy))
        attr = fa.attribute(ids, baselines=0, additional_forward_args=_extra(targets, ids, times),
                            perturbations_per_eval=per_eval)
    return Engine(attr * (ids != 0), target_score(model, ids, targets, times), None, None)  # padding: nothing


def _attention_maps(model: nn.Module, ids: torch.Tensor, hists: list[np.ndarray],
                    times: torch.Tensor | None) -> list[np.ndarray]:
    if times is None:
        return attention_batch(model, hists)
    out = model.forward_hidden(ids, output_attentions=True, times=times)  # time-aware: the real times
    att = torch.stack(out.attentions, dim=1).detach().float().cpu().numpy()  # (B, L, H, W, W)
    return [np.ascontiguousarray(att[r, :, :, ids.shape[1] - len(h):, ids.shape[1] - len(h):])
            for r, h in enumerate(hists)]  # (L, H, n, n) each


@torch.no_grad()
def run_attention(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor,
                  times: torch.Tensor | None = None) -> Engine:
    hists = [row[row != 0].cpu().numpy() for row in ids]
    w = ids.shape[1]
    scores = torch.zeros(ids.shape, dtype=torch.float32)  # (B, W)
    for r, att in enumerate(_attention_maps(model, ids, hists, times)):  # (L, H, n + E, n + E) each
        n = len(hists[r])
        if n:
            row = np.asarray(rollout(att[None])[0][-1], dtype=np.float64)[:n]  # prediction point over the events
            if att.shape[-1] > n:  # an appended prediction token (BERT4Rec's mask): its self-weight is no event
                row = row / max(row.sum(), 1e-12)
            scores[r, w - n:] = torch.from_numpy(row.astype(np.float32))
    return Engine(scores, target_score(model, ids, targets, times), None, None)


class EngineOptions(NamedTuple):
    """What an engine may be asked for; each uses only its own knob (see ``seqrec_core.explain_methods``)."""

    steps: int = 20  # IG path points / GradientSHAP samples
    samples: int | None = None  # LIME / Kernel SHAP perturbed histories (None: the method's default)
    baseline: str = "mean"  # IG / GradientSHAP baseline (IG_BASELINES)
    seed: int = 0  # sampling methods: the same explanation every time it is asked for


# The registry's engines: one signature, engine(model, ids, targets, options, times) -> Engine.
def ig_engine(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor, options: EngineOptions,
              times: torch.Tensor | None = None) -> Engine:
    return run_ig(model, ids, targets, options.steps, options.baseline, times)


def gradshap_engine(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor, options: EngineOptions,
                    times: torch.Tensor | None = None) -> Engine:
    return run_gradshap(model, ids, targets, options.steps, options.baseline, times)


def attention_engine(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor, options: EngineOptions,
                     times: torch.Tensor | None = None) -> Engine:
    return run_attention(model, ids, targets, times)


def run_engine(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor, method: str, steps: int,
               baseline: str = "mean", times: torch.Tensor | None = None, samples: int | None = None) -> Engine:
    """The registered engine of ``method`` (:mod:`seqrec_core.explain_methods`); ``times`` (B, W + 1): only for a
    time-aware model, held fixed by every method."""
    from seqrec_core.explain_methods import by_key

    return by_key(method).load_engine()(model, ids, targets, EngineOptions(int(steps), samples, baseline), times)

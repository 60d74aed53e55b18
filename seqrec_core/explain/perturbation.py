"""Perturbation explanations: occlusion, LIME and Kernel SHAP over history positions, for every model.

They only ever re-score histories, so they need no gradients and no embedding layer: the same engines explain a
neural model and the Markov / item-kNN baselines (:mod:`seqrec_core.models.baselines`), which is how a person can
ask "why does the Markov baseline recommend X" with the same verb.

The interpretable features are the history's events, one per position: present or removed (the padding item).
For a neural model a removed event's item vector becomes the padding vector IN PLACE: the other events keep their
positions (and, for a time-aware model, their time slots), as occlusion does for time-aware runs. Why not compact
the history as occlusion does for the others: a sample removes many events at once, so compacting moves every
older event closer to the prediction point and the trigger of a long-range pair lands at a distance the model never
learned it at. On the demo run (60 planted cases, 200 samples) the trigger was in the top 3 for 45% (LIME) and 57%
(Kernel SHAP) with compaction and 97% / 83% in place. The baselines have no positions, so for them a removed event
is simply left out (a shorter history). Captum's ``Lime`` fits a weighted ridge regression of the target score on
the presence vector (events removed with probability 1/2, Captum's default; sample weights from an exponential
kernel on the cosine distance to the full history, LIME's text default); ``KernelShap`` fits the Shapley kernel's
regression, so its values are Shapley estimates. Both draw their samples from torch's generator, seeded per
history, so the same question gives the same answer.

Each history is explained on its own (Captum's LIME/Kernel SHAP fit one regression per example), but all of one
history's samples go through the model in as few forwards as the position budget allows.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from seqrec_core.explain.engines import (
    POSITION_BUDGET,
    Engine,
    EngineOptions,
    _EmbeddingProxy,
    _path_forward,
    _view,
    run_occlusion,
)

KERNEL_WIDTH = 0.25  # LIME's text default: exp(-(100 d)^2 / 25^2) on the cosine distance d
RIDGE_ALPHA = 1.0  # LIME's regression: ridge, so no event's weight is zeroed outright (Lasso ties events at 0)
FALLBACK_SAMPLES = 300


def is_baseline_scorer(model) -> bool:  # noqa: ANN001 - nn.Module | a fitted baseline
    """A fitted Markov / item-kNN scorer (scores histories with numpy, no torch module)."""
    return not isinstance(model, nn.Module) and hasattr(model, "score_histories")


def _row_scorer(model, real: torch.Tensor, target: torch.Tensor, times: torch.Tensor | None):  # noqa: ANN001, ANN202
    """score(x): the target's score for each perturbed copy x (k, n) of one history ``real`` (1, n), where
    x == 0 marks a removed event (neural: blanked in place; baseline: left out). ``times`` (1, n + 1) only for a
    time-aware model."""
    if is_baseline_scorer(model):
        def score(x: torch.Tensor) -> torch.Tensor:
            rows = x.cpu().numpy()
            histories = [row[row != 0] for row in rows]
            out = np.asarray(model.score_histories(histories))[:, int(target[0])]  # (k,)
            return torch.from_numpy(np.nan_to_num(out, neginf=0.0).astype(np.float32))
        return score
    proxy = _EmbeddingProxy(model.item_emb.weight, "mean")
    forward = _path_forward(_view(model, proxy), proxy)

    def score(x: torch.Tensor) -> torch.Tensor:  # items blanked in place; positions, mask and time slots kept
        k = len(x)
        return forward(x, target.expand(k), real.expand(k, -1), None if times is None else times.expand(k, -1))
    return score


def _presence_similarity(original, perturbed, interpretable, **kwargs) -> float:  # noqa: ANN001
    """LIME's sample weight from the presence vector alone (the item ids' values mean nothing as numbers)."""
    z = interpretable.float()
    n, kept = z.numel(), float(z.sum())
    distance = 1.0 - math.sqrt(kept / n) if n else 0.0  # cosine distance between all-present and z
    return math.exp(-(distance ** 2) / KERNEL_WIDTH ** 2)


def _explainer(kind: str, score):  # noqa: ANN001, ANN202
    from captum.attr import KernelShap, Lime

    if kind == "kernelshap":
        return KernelShap(score)
    from captum._utils.models.linear_model import SkLearnRidge

    return Lime(score, interpretable_model=SkLearnRidge(alpha=RIDGE_ALPHA), similarity_func=_presence_similarity)


def _sampled(kind: str, model, ids: torch.Tensor, targets: torch.Tensor, options: EngineOptions,  # noqa: ANN001
             times: torch.Tensor | None) -> Engine:
    b, w = ids.shape
    samples = int(options.samples or FALLBACK_SAMPLES)
    scores = torch.zeros((b, w), dtype=torch.float32)
    target = torch.zeros(b, dtype=torch.float32)
    devices = [ids.device] if ids.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        for r in range(b):
            n = int((ids[r] != 0).sum())
            if n == 0:
                continue
            real = ids[r:r + 1, w - n:]  # (1, n) the events (histories are padded on the left)
            row_times = None if times is None else times[r:r + 1, w - n:]  # (1, n + 1) events then query time
            score = _row_scorer(model, real, targets[r:r + 1], row_times)
            target[r] = score(real)[0].float().cpu()
            torch.manual_seed(int(options.seed))  # per history, so a batch and a single call agree
            mask = torch.arange(n, device=ids.device)[None]  # (1, n) one feature per event
            per_eval = max(1, min(samples, 4 * POSITION_BUDGET // n))
            attr = _explainer(kind, score).attribute(real, baselines=0, feature_mask=mask, n_samples=samples,
                                                     perturbations_per_eval=per_eval)  # (1, n)
            scores[r, w - n:] = attr[0].detach().float().cpu()
    return Engine(scores, target, None, None)


def lime_engine(model, ids: torch.Tensor, targets: torch.Tensor, options: EngineOptions,  # noqa: ANN001
                times: torch.Tensor | None = None) -> Engine:
    return _sampled("lime", model, ids, targets, options, times)


def kernelshap_engine(model, ids: torch.Tensor, targets: torch.Tensor, options: EngineOptions,  # noqa: ANN001
                      times: torch.Tensor | None = None) -> Engine:
    return _sampled("kernelshap", model, ids, targets, options, times)


@torch.no_grad()
def occlusion_engine(model, ids: torch.Tensor, targets: torch.Tensor, options: EngineOptions,  # noqa: ANN001
                     times: torch.Tensor | None = None) -> Engine:
    """Score drop when each event is removed; a neural model in batched forwards (engines.run_occlusion), a
    baseline scorer one history at a time."""
    if not is_baseline_scorer(model):
        return run_occlusion(model, ids, targets, times)
    from captum.attr import FeatureAblation

    b, w = ids.shape
    scores = torch.zeros((b, w), dtype=torch.float32)
    target = torch.zeros(b, dtype=torch.float32)
    for r in range(b):
        n = int((ids[r] != 0).sum())
        if n == 0:
            continue
        real = ids[r:r + 1, w - n:]  # (1, n)
        score = _row_scorer(model, real, targets[r:r + 1], None)
        target[r] = score(real)[0]
        scores[r, w - n:] = FeatureAblation(score).attribute(real, baselines=0, perturbations_per_eval=n)[0].float()
    return Engine(scores, target, None, None)

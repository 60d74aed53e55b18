"""Which past events drive a recommendation: Captum attributions per history event, behind one verb.

Methods (``METHODS``):
- ``ig``: Captum ``LayerIntegratedGradients`` on the item-embedding layer. The baseline puts the padding
  embedding (all zeros) at every real position while keeping the sequence's mask and positions, so the path runs
  from "events present but blank" to the real history. For the rotary model that baseline scores exactly like an
  all-padding history (every layer maps a zero input to zero: no biases, RMSNorm(0) = 0), so completeness reads
  ``sum(attributions) = score(target | history) - score(target | all padding)``. The path is walked in two
  segments with re-timed nodes (see ``_EmbeddingProxy``) because a pre-norm Transformer's score swings wildly in
  the first 1e-3 of the path; Captum's convergence delta of both segments is added up. :func:`attribute`
  doubles the steps (up to ``MAX_REFINED_STEPS``) while the delta exceeds 1% of the score gap, and reports the
  steps it used.
- ``occlusion``: Captum ``FeatureAblation``: each event is replaced by padding and the sequence is compacted, so
  the variant is the history with that event *removed* (a real, shorter history the model was trained on). For
  this model padding and removal agree except at the latest event, where padding would leave no prediction point.
  Attribution = score drop (positive = the event raised the target's score). All variants run in few forwards.
- ``gradshap``: Captum ``LayerGradientShap`` on the embedding layer (baseline: padding; ``steps`` random points
  on the path, fixed seed): a Monte-Carlo cousin of IG.
- ``attention``: the prediction point's row of the attention rollout (all layers, residual counted); >= 0.

Why Captum's hooks never touch the shared model: the engines run on a *view* of the model (same weights, same
backbone) whose item-embedding entry is a small proxy module. Captum registers its hooks on the proxy, so a
dashboard session scoring with the cached model at the same moment is unaffected and nothing is left behind.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from seqrec_core.data.sequences import SequenceData, Vocab
from seqrec_core.errors import InputError
from seqrec_core.explain.attention import attention_batch, model_device, rollout, window
from seqrec_core.models.neural import pad_left

log = logging.getLogger(__name__)

METHODS = ("ig", "occlusion", "gradshap", "attention")
NEAR_DECADES = 10.0  # the near-baseline segment of the IG path is timed log-uniformly over this many decades
NEAR_END = 1e-2  # ... and ends at s = NEAR_END; the far segment runs linearly from there to the real history
NEAR_SHARE = 0.7  # share of the IG steps spent on the near segment
NEAR_METHOD = "riemann_middle"  # nodes evenly spread over the decades (Gauss-Legendre crowds the ends)
REFINE_TOLERANCE = 0.01  # attribute(): double IG steps while |delta| > this share of |score gap| + 0.1
MAX_REFINED_STEPS = 800
POSITION_BUDGET = 12_288  # (rows x positions) per forward/backward chunk: keeps CPU caches warm, GPU busy


def _timing(a: torch.Tensor, far: bool) -> torch.Tensor:
    """Path fraction s(a): near segment 0 -> NEAR_END (log-timed), far segment NEAR_END -> 1 (linear)."""
    if far:
        return NEAR_END + (1.0 - NEAR_END) * a
    k = NEAR_DECADES * math.log(10.0)
    return NEAR_END * torch.expm1(k * a) / math.expm1(k)


class _Lookup(nn.Module):
    """Plain item-vector lookup; the layer Captum attributes to (its output is the path point)."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        object.__setattr__(self, "weight", weight)  # a reference, not a registered parameter

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids.long(), self.weight, padding_idx=0)  # (N, W, D)


class _EmbeddingProxy(nn.Module):
    """Stands in for ``model.item_emb`` in a view of the model, so Captum hooks this, never the shared model.

    Why the path is split and re-timed: RMSNorm is scale-invariant with eps 1e-6, so close to the blank
    baseline each norm switches on at its own scale and the score swings between s ~ 1e-10 and 1e-3 of the way
    along the path before it settles; Captum's nodes, uniform in s, miss that and leave a convergence delta as
    large as the score itself. So every history is attributed twice in one Captum call: a "near" row whose
    path s runs from 0 to NEAR_END with nodes spread evenly in log(s), and a "far" row from NEAR_END to 1
    (linear). Captum moves the lookup's output along u = a * e (a in [0, 1]); the proxy hands the model
    s(a) * e. Per event, sum_d u_d * dF/du_d over a is then exactly the straight-line IG over that segment
    (substitution s = s(a)), and near + far = IG over the whole path. The mask and positions always come
    from the real history (``real``), so the baseline keeps the sequence's shape, for any position scheme,
    and Captum's own convergence delta is valid for each row.
    """

    def __init__(self, weight: torch.Tensor, blank: bool = False) -> None:
        super().__init__()
        object.__setattr__(self, "weight", weight)  # a reference, not a registered parameter
        self.lookup = _Lookup(weight)
        self.blank = blank
        self.path: torch.Tensor | None = None  # (N, W) what Captum feeds: the real ids or the baseline's zeros
        self.far = False  # which segment of the path Captum is walking

    def forward(self, real: torch.Tensor) -> torch.Tensor:
        if self.blank:  # the IG baseline: the padding vector (zeros) at every position
            return self.weight.new_zeros(real.shape + (self.weight.shape[1],))  # (N, W, D)
        if self.path is None:
            return self.lookup(real)
        u = self.lookup(self.path)  # (N, W, D) replaced by Captum with the path point a * e
        e = F.embedding(real, self.weight, padding_idx=0).detach()  # (N, W, D) each event's own vector
        a = (u * e).sum(-1, keepdim=True) / (e * e).sum(-1, keepdim=True).clamp_min(1e-30)  # (N, W, 1)
        return e * _timing(a.clamp(0.0, 1.0), self.far)  # (N, W, D)


def _path_forward(view: nn.Module, proxy: _EmbeddingProxy):
    """Captum's forward: x = path ids (the real ids, or the baseline's zeros), then each row's target and ids."""
    def forward(x: torch.Tensor, targets: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        proxy.path = x
        try:
            return _target_score(view, real, targets)  # (N,)
        finally:
            proxy.path = None
    return forward


def _view(model: nn.Module, embedding: nn.Module) -> nn.Module:
    """A shallow twin of ``model`` sharing every weight and submodule except its item-embedding entry."""
    twin = object.__new__(type(model))
    twin.__dict__.update(model.__dict__)
    twin.__dict__["_modules"] = dict(model._modules)  # own registry: replacing an entry leaves the model alone
    twin._modules["item_emb"] = embedding
    return twin


def _target_score(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Score of each row's target item after its last column: (N, W), (N,) -> (N,)."""
    hidden = model.forward_hidden(ids).hidden[:, -1]  # (N, D)
    return (hidden * model.item_emb.weight[targets]).sum(-1)  # (N,) == score(ids)[n, targets[n]]


def _compact(ids: torch.Tensor) -> torch.Tensor:
    """Move padding to the left, keeping event order: an event replaced by 0 becomes an event removed."""
    order = torch.argsort((ids != 0).to(torch.int8), dim=1, stable=True)  # (N, W) pads first
    return ids.gather(1, order)  # (N, W)


class _Engine(NamedTuple):
    scores: torch.Tensor  # (B, W) attribution per column
    target: torch.Tensor  # (B,) target score with the history
    baseline: torch.Tensor | None  # (B,) target score at the baseline
    delta: torch.Tensor | None  # (B,) convergence delta


def _split_steps(steps: int) -> tuple[int, int]:
    """Path points for the near and far segments; together ``steps``."""
    near = max(2, round(steps * NEAR_SHARE))
    return near, max(2, steps - near)


def _finish(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor, parts: list[torch.Tensor],
            deltas: list[torch.Tensor] | None) -> _Engine:
    scores = sum(p.detach().sum(-1) for p in parts)  # (B, W) per event: summed over the embedding, both segments
    blank = _view(model, _EmbeddingProxy(model.item_emb.weight, blank=True))
    with torch.no_grad():
        target = _target_score(model, ids, targets)  # (B,)
        baseline = _target_score(blank, ids, targets)  # (B,) blank events, real mask and positions
    if deltas is None:
        delta = scores.sum(1) - (target - baseline)
    else:
        delta = sum(d.detach().reshape(-1) for d in deltas)  # (B,) Captum's, per segment, added
    return _Engine(scores, target, baseline, delta)


def _run_ig(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor, steps: int) -> _Engine:
    from captum.attr import LayerIntegratedGradients

    proxy = _EmbeddingProxy(model.item_emb.weight)
    lig = LayerIntegratedGradients(_path_forward(_view(model, proxy), proxy), proxy.lookup)
    b = ids.shape[0]
    chunk = max(b, (POSITION_BUDGET // max(ids.shape[1], 1)) // b * b)  # rows per pass: whole multiples of b
    parts, deltas = [], []
    with torch.enable_grad():
        for far, n_steps in zip((False, True), _split_steps(steps), strict=True):
            proxy.far = far
            attr, delta = lig.attribute(ids, baselines=torch.zeros_like(ids), additional_forward_args=(targets, ids),
                                        n_steps=n_steps, internal_batch_size=min(chunk, b * n_steps),
                                        method="gausslegendre" if far else NEAR_METHOD,
                                        return_convergence_delta=True)
            parts.append(attr)
            deltas.append(delta)
    return _finish(model, ids, targets, parts, deltas)


def _run_gradshap(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor, steps: int) -> _Engine:
    from captum.attr import LayerGradientShap

    proxy = _EmbeddingProxy(model.item_emb.weight)
    gs = LayerGradientShap(_path_forward(_view(model, proxy), proxy), proxy.lookup)
    devices = [ids.device] if ids.device.type == "cuda" else []
    parts = []
    with torch.random.fork_rng(devices=devices), torch.enable_grad():
        torch.manual_seed(0)  # the same explanation every time it is asked for
        for far, n_samples in zip((False, True), _split_steps(steps), strict=True):
            proxy.far = far
            parts.append(gs.attribute(ids, baselines=torch.zeros_like(ids[:1]), n_samples=n_samples, stdevs=0.0,
                                      additional_forward_args=(targets, ids)))
    return _finish(model, ids, targets, parts, None)


@torch.no_grad()
def _run_occlusion(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor) -> _Engine:
    from captum.attr import FeatureAblation

    fa = FeatureAblation(lambda x, t: _target_score(model, _compact(x), t))
    b, w = ids.shape
    per_eval = min(w, max(1, 4 * POSITION_BUDGET // (b * w)))  # forward only: 4x the rows of a gradient chunk
    attr = fa.attribute(ids, baselines=0, additional_forward_args=(targets,), perturbations_per_eval=per_eval)
    scores = attr * (ids != 0)  # (B, W) padding columns explain nothing
    return _Engine(scores, _target_score(model, ids, targets), None, None)


@torch.no_grad()
def _run_attention(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor) -> _Engine:
    hists = [row[row != 0].cpu().numpy() for row in ids]
    w = ids.shape[1]
    scores = torch.zeros(ids.shape, dtype=torch.float32)  # (B, W)
    for r, att in enumerate(attention_batch(model, hists)):  # (L, H, n, n) each
        if att.shape[-1]:
            scores[r, w - att.shape[-1]:] = torch.from_numpy(rollout(att[None])[0][-1])
    return _Engine(scores, _target_score(model, ids, targets), None, None)


def _engine(model: nn.Module, ids: torch.Tensor, targets: torch.Tensor, method: str, steps: int) -> _Engine:
    if method == "ig":
        return _run_ig(model, ids, targets, steps)
    if method == "gradshap":
        return _run_gradshap(model, ids, targets, steps)
    if method == "occlusion":
        return _run_occlusion(model, ids, targets)
    return _run_attention(model, ids, targets)


def _check_method(method: str, steps: int) -> None:
    if method not in METHODS:
        raise InputError(f"attribution method '{method}' is unknown; use one of {list(METHODS)}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= 10_000:
        raise InputError(f"steps {steps!r} is out of range; use a whole number from 1 to 10000, e.g. 50")


class BatchResult(NamedTuple):
    """Everything the batched engine measures; :func:`attribute_batch` returns only ``scores``."""

    scores: list[np.ndarray]  # per history (len truncated to max_len,)
    target_scores: np.ndarray  # (N,)
    baseline_scores: np.ndarray | None  # (N,) IG/gradshap only
    deltas: np.ndarray | None  # (N,) IG/gradshap only


def attribute_batch_full(model: nn.Module, histories: list[np.ndarray], targets: np.ndarray, method: str = "ig",
                         *, steps: int = 20, batch_size: int = 64) -> BatchResult:
    """The batched engine: histories grouped by length (little padding), each group one Captum call."""
    _check_method(method, steps)
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    if len(targets) != len(histories):
        raise InputError(f"{len(histories)} histories but {len(targets)} targets; give one target per history")
    n_items = int(model.config.n_items)
    if len(targets) and (targets.min() < 1 or targets.max() > n_items):
        raise InputError(f"target item indices must lie in 1..{n_items} (0 is padding)")
    max_len, dev = int(model.config.max_len), model_device(model)
    kept = [np.asarray(h, dtype=np.int64)[-max_len:] for h in histories]
    out: list[np.ndarray] = [np.zeros(len(h), dtype=np.float32) for h in kept]
    tgt, base, delta = (np.full(len(kept), np.nan) for _ in range(3))
    live = [i for i, h in enumerate(kept) if len(h)]
    order = sorted(live, key=lambda i: len(kept[i]))
    step_rows = max(1, int(batch_size))
    for start in range(0, len(order), step_rows):
        rows = order[start:start + step_rows]
        ids = pad_left([kept[i] for i in rows], max_len).to(dev)  # (b, W)
        t = torch.as_tensor(targets[rows], device=dev)  # (b,)
        res = _engine(model, ids, t, method, int(steps))
        scores = res.scores.float().cpu().numpy()  # (b, W)
        for j, i in enumerate(rows):
            out[i] = scores[j, scores.shape[1] - len(kept[i]):].astype(np.float32)
        tgt[rows] = res.target.float().cpu().numpy()
        if res.baseline is not None:
            base[rows] = res.baseline.float().cpu().numpy()
            delta[rows] = res.delta.float().cpu().numpy()
    has_base = method in ("ig", "gradshap")
    return BatchResult(out, tgt, base if has_base else None, delta if has_base else None)


def attribute_batch(model: nn.Module, histories: list[np.ndarray], targets: np.ndarray, method: str = "ig", *,
                    steps: int = 20, batch_size: int = 64) -> list[np.ndarray]:
    """One attribution array (len(history_i) truncated to max_len,) per history, oldest -> latest event.

    ``targets`` are item indices (1..n_items). Runs on the model's device; the model is not modified.
    """
    return attribute_batch_full(model, histories, targets, method, steps=steps, batch_size=batch_size).scores


# ------------------------------------------------------------------------------------------ one explanation
@dataclass
class Attribution:
    """How much each event of one user's history moved one target item's score (the Explain page's data)."""

    user: str
    method: str
    target_item: str
    target_title: str | None
    target_index: int
    item_index: np.ndarray  # (T,) history events the model saw, oldest -> latest
    item_ids: list[str]
    titles: list[str | None]
    categories: list[str | None]
    lags: np.ndarray  # (T,) steps back from the prediction point, 1 = latest event
    timestamps: np.ndarray | None  # (T,) int64 unix seconds, None when the log has no time
    seconds_before: np.ndarray | None  # (T,) prediction time minus event time
    scores: np.ndarray  # (T,) attribution per event (signed; for "attention": rollout last-row weights)
    target_score: float
    baseline_score: float | None
    convergence_delta: float | None
    steps: int | None = None  # IG / GradientShap path points
    target_rank: int | None = None  # rank of the target for this history (seen items excluded, except itself)

    def to_frame(self) -> pd.DataFrame:
        """position, item_id, title, category, timestamp (UTC or NaT), lag, seconds_before, attribution."""
        n = len(self.scores)
        stamps = (pd.to_datetime(np.asarray(self.timestamps, dtype=np.int64), unit="s", utc=True)
                  if self.timestamps is not None else pd.to_datetime(pd.Series([pd.NaT] * n), utc=True))
        before = (np.asarray(self.seconds_before, dtype=np.float64) if self.seconds_before is not None
                  else np.full(n, np.nan))
        return pd.DataFrame({"position": np.arange(1, n + 1), "item_id": self.item_ids, "title": self.titles,
                             "category": self.categories, "timestamp": pd.Series(stamps).reset_index(drop=True),
                             "lag": self.lags.astype(np.int64), "seconds_before": before,
                             "attribution": self.scores.astype(np.float64)})

    def to_json(self) -> dict:
        """The CLI's ``explain`` document (original ids, ISO-8601 UTC times, lag 1 = latest event)."""
        stamps = ([pd.Timestamp(int(t), unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ") for t in self.timestamps]
                  if self.timestamps is not None else [None] * len(self.scores))
        return {"user": self.user, "target": self.target_item, "target_title": self.target_title,
                "method": self.method, "steps": self.steps, "target_score": _num(self.target_score),
                "baseline_score": _num(self.baseline_score), "convergence_delta": _num(self.convergence_delta),
                "target_rank": self.target_rank,
                "history": [{"position": i + 1, "item": item, "timestamp": stamps[i], "lag": int(self.lags[i]),
                             "attribution": _num(self.scores[i])} for i, item in enumerate(self.item_ids)]}

    def top_lags(self, k: int = 3) -> np.ndarray:
        """Lags of the k most-attributed events (by signed value, descending; ties: the more recent first)."""
        order = np.lexsort((self.lags, -self.scores))
        return self.lags[order[:max(0, int(k))]]


def _num(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def check_same_catalogue(run_vocab: Vocab, data: SequenceData) -> None:
    """Refuse a run and a log whose item indices do not mean the same items."""
    if run_vocab.n_items != data.vocab.n_items or run_vocab.item_ids != data.vocab.item_ids:
        raise InputError(f"the run was trained on a different catalogue ({run_vocab.n_items} items) than this log "
                         f"({data.vocab.n_items} items); pick the run trained on this data")


def user_history(data: SequenceData, user: str, holdout: bool) -> tuple[int, np.ndarray, np.ndarray]:
    """(user row, history, its times); with ``holdout`` the last (test) event is left out."""
    u = data.vocab.user_index(user)
    seq, times = data.sequences[u], data.times[u]
    if holdout:
        if len(seq) < 2:
            raise InputError(f"user '{user}' has only {len(seq)} event(s), so none can be held out; use holdout=False")
        return u, seq[:-1], times[:-1]
    return u, seq, times


def resolve_target(data: SequenceData, u: int, target: str | None, scores: np.ndarray, seen: np.ndarray) -> int:
    """Item index of the target: None = top recommendation (seen excluded), "heldout" = the user's last event."""
    if target is None:
        s = scores.copy()  # (V + 1,)
        s[0] = -np.inf
        s[np.asarray(seen, dtype=np.int64)] = -np.inf
        if not np.isfinite(s).any():
            s = scores.copy()
            s[0] = -np.inf
        return int(np.argmax(s))
    if target == "heldout":
        return int(data.sequences[u][-1])
    return data.vocab.item_index(str(target))


def target_rank(scores: np.ndarray, target: int, seen: np.ndarray) -> int:
    """1-based rank of ``target`` among all items, items in ``seen`` left out (except the target itself)."""
    s = scores.astype(np.float64).copy()  # (V + 1,)
    s[0] = -np.inf
    s[np.asarray(seen, dtype=np.int64)] = -np.inf
    s[target] = scores[target]
    return int((s > s[target]).sum()) + 1


@torch.no_grad()
def score_history(model: nn.Module, history: np.ndarray) -> np.ndarray:
    """(V + 1,) float32 scores for one history on the model's device (column 0 = -inf)."""
    ids = pad_left([history], int(model.config.max_len)).to(model_device(model))  # (1, T)
    return model.score(ids)[0].float().cpu().numpy()


def attribute(run, data: SequenceData, user: str, target: str | None = None, method: str = "ig", *,
              steps: int = 50, holdout: bool = True, history: np.ndarray | None = None,
              refine: bool = True) -> Attribution:
    """Explain one recommendation: attribution of each history event to the target item's score.

    target None -> the model's top recommendation (seen items excluded); "heldout" -> the held-out test item;
    otherwise an original item id. ``holdout`` hides the last event (so it can be the explained target);
    ``history`` (item indices) replaces the user's history (the counterfactual editor; no timestamps then).
    ``refine`` (IG only): double the steps while |convergence delta| > 1% of |target - baseline| (+0.1), up
    to MAX_REFINED_STEPS; ``Attribution.steps`` says how many were used.
    """
    _check_method(method, steps)
    check_same_catalogue(run.vocab, data)
    model = run.model
    u, hist, times = user_history(data, user, holdout or target == "heldout")
    pred_time = int(data.times[u][-1]) if len(data.times[u]) else None
    if history is not None:
        hist = np.asarray(history, dtype=np.int64).reshape(-1)
        if len(hist) and (hist.min() < 1 or hist.max() > data.vocab.n_items):
            raise InputError(f"edited history has item indices outside 1..{data.vocab.n_items}")
        times = None
    if len(hist) == 0:
        raise InputError(f"user '{user}' has no events before the prediction point; nothing to explain")
    full = score_history(model, hist)  # (V + 1,)
    t_idx = resolve_target(data, u, target, full, hist)
    res = attribute_batch_full(model, [hist], np.array([t_idx]), method, steps=steps, batch_size=1)
    used = int(steps)
    while (refine and method == "ig" and used * 2 <= max(MAX_REFINED_STEPS, used)
           and abs(res.deltas[0]) > REFINE_TOLERANCE * (abs(res.target_scores[0] - res.baseline_scores[0]) + 0.1)):
        used *= 2
        res = attribute_batch_full(model, [hist], np.array([t_idx]), method, steps=used, batch_size=1)
    scores = res.scores[0]
    kept = window(model, hist)
    n = len(kept)
    stamps = None
    before = None
    if times is not None and data.has_time:
        stamps = np.asarray(times, dtype=np.int64)[-n:]
        before = (pred_time - stamps) if pred_time is not None else None
    vocab = data.vocab
    ids = [vocab.item_id(i) for i in kept]
    t_id = vocab.item_id(t_idx)
    return Attribution(
        user=str(user), method=method, target_item=t_id, target_title=vocab.title(t_id), target_index=t_idx,
        item_index=kept, item_ids=ids, titles=[vocab.title(i) for i in ids],
        categories=[vocab.category(i) for i in ids], lags=np.arange(n, 0, -1, dtype=np.int64), timestamps=stamps,
        seconds_before=before, scores=scores, target_score=float(full[t_idx]),
        baseline_score=None if res.baseline_scores is None else float(res.baseline_scores[0]),
        convergence_delta=None if res.deltas is None else float(res.deltas[0]),
        steps=used if method in ("ig", "gradshap") else None, target_rank=target_rank(full, t_idx, hist))

"""Which past events drive a recommendation: Captum attributions per history event, behind one verb.

Methods (``METHODS``); the engines live in :mod:`seqrec_core.explain.engines`:
- ``ig``: Captum ``LayerIntegratedGradients`` on the item-embedding layer, target = the target item's score at
  the prediction point, one value per event (summed over the embedding). Baseline (``IG_BASELINES``): by default
  every event becomes the catalogue's average item vector ("mean"); "padding" puts the padding vector (zeros)
  there instead, which for the rotary model scores like an all-padding history. Both keep the history's mask and
  positions. Completeness: ``sum(attributions) = target_score - baseline_score`` up to Captum's convergence
  delta; :func:`attribute` doubles the steps (up to ``MAX_REFINED_STEPS``) while the delta exceeds 1% of the
  score gap, and reports the steps it used. Why "mean" is the default: see the engines module (with "padding",
  a pre-norm Transformer's blank path credits the attention sink and the query, not the planted trigger).
- ``occlusion``: Captum ``FeatureAblation``: each event is replaced by padding and the sequence is compacted, so
  the variant is the history with that event *removed* (a real, shorter history the model was trained on). For
  this model padding and removal agree except at the latest event, where padding would leave no prediction point.
  Attribution = score drop (positive = the event raised the target's score). All variants run in few forwards.
- ``gradshap``: Captum ``LayerGradientShap`` on the embedding layer (same baseline as IG; ``steps`` random
  points on the path, fixed seed): a Monte-Carlo cousin of IG.
- ``attention``: the prediction point's row of the attention rollout (all layers, residual counted); >= 0.
- ``lime`` / ``kernelshap``: Captum ``Lime`` / ``KernelShap`` over history positions (event present or removed;
  for a neural model a removed event is blanked in place, the others keep their positions; for a baseline it is
  left out); ``samples`` perturbed histories, seeded. Why in place: :mod:`seqrec_core.explain.perturbation`.

Which methods exist, their names, colours and what they need: :mod:`seqrec_core.explain_methods` (the registry).
The Markov and item-kNN baselines are explained through the same verb (``model="markov"`` / ``"itemknn"``) by the
methods that only re-score histories (occlusion, LIME, Kernel SHAP); they see the last ``BASELINE_WINDOW`` events.

Time-aware runs (``model.uses_time``): the engines get each history's times (events, then the query time) and
hold them fixed, so IG, GradientShap and occlusion attribute the ITEM embeddings only: an event's hour, weekday,
gap and query-time embeddings stay as they are along the path (IG completeness then holds for the item part:
sum = score - score with every item at the baseline and the same times). Occlusion blanks an event's item in
place and keeps its time slot. :attr:`Attribution.note` says so in the output ("time features held fixed").
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from seqrec_core import explain_methods as registry
from seqrec_core.data.sequences import SequenceData, Vocab
from seqrec_core.errors import InputError
from seqrec_core.explain.attention import model_device, window
from seqrec_core.explain.engines import IG_BASELINES, run_engine
from seqrec_core.explain.perturbation import is_baseline_scorer
from seqrec_core.models.base import uses_time
from seqrec_core.models.neural import pad_left
from seqrec_core.models.time_features import check_times, pad_times_left, require_time, with_query

log = logging.getLogger(__name__)

METHODS = registry.method_keys()  # the methods registered at import; the live list is registry.method_keys()
BASELINE_WINDOW = 200  # a baseline scorer is explained over its last this-many events (Markov reads 1, kNN 10)
REFINE_TOLERANCE = 0.01  # attribute(): double IG steps while |delta| > this share of |score gap| + 0.1
MAX_REFINED_STEPS = 800


def _check_method(method: str, steps: int, baseline: str = "mean", samples: int | None = None) -> None:
    if method not in registry.method_keys():
        raise InputError(f"attribution method '{method}' is unknown; use one of {list(registry.method_keys())}")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, (int, np.integer))
                                or not 10 <= samples <= 100_000):
        raise InputError(f"samples {samples!r} is out of range; use a whole number from 10 to 100000, e.g. 300")
    if baseline not in IG_BASELINES:
        raise InputError(f"IG baseline '{baseline}' is unknown; use one of {list(IG_BASELINES)}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= 10_000:
        raise InputError(f"steps {steps!r} is out of range; use a whole number from 1 to 10000, e.g. 50")


class BatchResult(NamedTuple):
    """Everything the batched engine measures; :func:`attribute_batch` returns only ``scores``."""

    scores: list[np.ndarray]  # per history (len truncated to max_len,)
    target_scores: np.ndarray  # (N,)
    baseline_scores: np.ndarray | None  # (N,) IG/gradshap only
    deltas: np.ndarray | None  # (N,) IG/gradshap only


TIME_NOTE = "time features held fixed: only the items are attributed"


def attribute_batch_full(model: nn.Module, histories: list[np.ndarray], targets: np.ndarray, method: str = "ig",
                         *, steps: int = 20, batch_size: int = 64, baseline: str = "mean",
                         progress: Callable[[int, int], None] | None = None,
                         times: list[np.ndarray] | None = None, samples: int | None = None) -> BatchResult:
    """The batched engine: histories grouped by length (little padding), each group one Captum call;
    ``progress(done, total)`` after each group. ``times`` (time-aware models only, required there): per history
    its events' unix seconds followed by the query time; held fixed by every method. ``samples``: LIME / Kernel
    SHAP perturbed histories (None = the method's default). ``model`` may be a fitted Markov / item-kNN scorer."""
    _check_method(method, steps, baseline, samples)
    spec = registry.by_key(method)
    baseline_model = is_baseline_scorer(model)
    if baseline_model and not spec.works_for_baselines:
        raise InputError(f"{spec.label} needs a neural model; the {model.name} baseline can be explained with "
                         f"{', '.join(registry.applicable(model.name))}")
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    if len(targets) != len(histories):
        raise InputError(f"{len(histories)} histories but {len(targets)} targets; give one target per history")
    n_items = int(model.n_items if baseline_model else model.config.n_items)
    if len(targets) and (targets.min() < 1 or targets.max() > n_items):
        raise InputError(f"target item indices must lie in 1..{n_items} (0 is padding)")
    max_len = BASELINE_WINDOW if baseline_model else int(model.config.max_len)
    dev = torch.device("cpu") if baseline_model else model_device(model)
    samples = samples or spec.default_samples
    timed = check_times(histories, times, f"model '{type(model).__name__}'") if uses_time(model) else None
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
        tt = None if timed is None else pad_times_left([timed[i] for i in rows], max_len, ids.shape[1]).to(dev)
        res = run_engine(model, ids, t, method, int(steps), baseline, tt, samples)  # tt (b, W + 1) or None
        scores = res.scores.float().cpu().numpy()  # (b, W)
        for j, i in enumerate(rows):
            out[i] = scores[j, scores.shape[1] - len(kept[i]):].astype(np.float32)
        tgt[rows] = res.target.float().cpu().numpy()
        if res.baseline is not None:
            base[rows] = res.baseline.float().cpu().numpy()
            delta[rows] = res.delta.float().cpu().numpy()
        if progress is not None:  # empty histories count as done from the start
            progress(len(kept) - len(order) + start + len(rows), len(kept))
    has_base = spec.has_baseline
    return BatchResult(out, tgt, base if has_base else None, delta if has_base else None)


def attribute_batch(model: nn.Module, histories: list[np.ndarray], targets: np.ndarray, method: str = "ig", *,
                    steps: int = 20, batch_size: int = 64, baseline: str = "mean",
                    progress: Callable[[int, int], None] | None = None,
                    times: list[np.ndarray] | None = None, samples: int | None = None) -> list[np.ndarray]:
    """One attribution array (len(history_i) truncated to max_len,) per history, oldest -> latest event.

    ``targets`` are item indices (1..n_items). Runs on the model's device; the model is not modified.
    ``times``: required for a time-aware model (see :func:`attribute_batch_full`).
    """
    return attribute_batch_full(model, histories, targets, method, steps=steps, batch_size=batch_size,
                                baseline=baseline, progress=progress, times=times, samples=samples).scores


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
    baseline: str | None = None  # IG / GradientShap baseline: "mean" or "padding"
    target_rank: int | None = None  # rank of the target for this history (seen items excluded, except itself)
    note: str | None = None  # e.g. TIME_NOTE for a time-aware run
    query_time: int | None = None  # time-aware runs: the request time the prediction was made for (unix s)
    samples: int | None = None  # LIME / Kernel SHAP perturbed histories
    model: str = "run"  # what was explained: the run's model, or the "markov" / "itemknn" baseline

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
                "method": self.method, "model": self.model, "steps": self.steps, "samples": self.samples,
                "baseline": self.baseline,
                "target_score": _num(self.target_score),
                "baseline_score": _num(self.baseline_score), "convergence_delta": _num(self.convergence_delta),
                "target_rank": self.target_rank, "note": self.note,
                "query_time": (None if self.query_time is None else
                               pd.Timestamp(int(self.query_time), unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")),
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
def score_history(model: nn.Module, history: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
    """(V + 1,) float32 scores for one history on the model's device (column 0 = -inf); ``times`` (len + 1,)
    events then query time, required by a time-aware model."""
    max_len = int(model.config.max_len)
    ids = pad_left([history], max_len).to(model_device(model))  # (1, T)
    if not uses_time(model):
        return model.score(ids)[0].float().cpu().numpy()
    (t,) = check_times([history], None if times is None else [times], f"model '{type(model).__name__}'")
    tt = pad_times_left([t], max_len, ids.shape[1]).to(ids.device)  # (1, T + 1)
    return model.score(ids, times=tt)[0].float().cpu().numpy()


def history_query_times(data: SequenceData, u: int, n_events: int, holdout: bool,
                        query_time: int | None = None) -> np.ndarray:
    """Times of the first ``n_events`` of user row ``u`` plus the query time: by default the held-out event's
    time with ``holdout`` (as evaluation), else the last event's time plus the user's median gap."""
    require_time(data, "this run (trained with time features)")
    if query_time is None and holdout:
        query_time = int(data.times[u][n_events])
    return with_query(data.times[u][:n_events], query_time)


def explained_model(run, data: SequenceData, model: str | object = "run"):  # noqa: ANN001, ANN201
    """What :func:`attribute` explains: "run" = the run's neural model; "markov" / "itemknn" = that baseline, fit
    on ``data``'s training events now; or an already fitted baseline scorer (a batch fits it once)."""
    if not isinstance(model, str):
        return model
    if model == "run":
        return run.model
    from seqrec_core.models.baselines import explainable_baseline

    return explainable_baseline(model, data)


def attribute(run, data: SequenceData, user: str, target: str | None = None, method: str = "ig", *,
              steps: int = 50, holdout: bool = True, history: np.ndarray | None = None,
              refine: bool = True, baseline: str = "mean", history_times: np.ndarray | None = None,
              query_time: int | None = None, samples: int | None = None,
              model: str | object = "run") -> Attribution:
    """Explain one recommendation: attribution of each history event to the target item's score.

    target None -> the model's top recommendation (seen items excluded); "heldout" -> the held-out test item;
    otherwise an original item id. ``holdout`` hides the last event (so it can be the explained target);
    ``history`` (item indices) replaces the user's history (the counterfactual editor; no timestamps then unless
    ``history_times`` is given).
    ``baseline`` ("mean" or "padding"): what IG and GradientShap put in place of every event.
    ``refine`` (IG only): double the steps while |convergence delta| > 1% of |target - baseline| (+0.1), up
    to MAX_REFINED_STEPS; ``Attribution.steps`` says how many were used.
    ``samples``: LIME / Kernel SHAP perturbed histories (None = the method's default in the registry).
    ``model``: "run" (default), or "markov" / "itemknn" to explain that baseline (see :func:`explained_model`).
    Time-aware runs: ``history_times`` (len(history),) gives an edited history's event times (see
    :func:`seqrec_core.explain.counterfactual.edited_times`); ``query_time`` the request time (default: the
    held-out event's time with ``holdout``, else last event + median gap); time features are held fixed.
    """
    _check_method(method, steps, baseline, samples)
    spec = registry.by_key(method)
    check_same_catalogue(run.vocab, data)
    if isinstance(model, str) and model not in ("run", *registry.BASELINE_MODELS):
        raise InputError(f"model '{model}' cannot be explained; use run, {' or '.join(registry.BASELINE_MODELS)}")
    explained = explained_model(run, data, model)
    baseline_model = is_baseline_scorer(explained)
    if baseline_model and not spec.works_for_baselines:
        raise InputError(f"{spec.label} needs a neural model's item embeddings; the {explained.name} baseline can be "
                         f"explained with {', '.join(registry.applicable(explained.name))}")
    u, hist, times = user_history(data, user, holdout or target == "heldout")
    pred_time = int(data.times[u][-1]) if len(data.times[u]) else None
    if history is not None:
        hist = np.asarray(history, dtype=np.int64).reshape(-1)
        if len(hist) and (hist.min() < 1 or hist.max() > data.vocab.n_items):
            raise InputError(f"edited history has item indices outside 1..{data.vocab.n_items}")
        times = None if history_times is None else np.asarray(history_times, dtype=np.int64).reshape(-1)
    if len(hist) == 0:
        raise InputError(f"user '{user}' has no events before the prediction point; nothing to explain")
    timed = None
    if uses_time(explained):
        held = holdout or target == "heldout"
        if history is None:
            timed = history_query_times(data, u, len(hist), held, query_time)
        else:
            if history_times is None or len(history_times) != len(hist):
                raise InputError("a time-aware run needs the edited history's event times (history_times, one per "
                                 "event); counterfactual.edited_times derives them from the edit")
            if query_time is None and held:
                query_time = int(data.times[u][-1])  # the held-out event's time, as in evaluation
            timed = with_query(np.asarray(history_times, dtype=np.int64), query_time)
        pred_time = int(timed[-1])
    if baseline_model:
        full = np.asarray(explained.score_histories([hist])[0], dtype=np.float32)  # (V + 1,)
    else:
        full = score_history(explained, hist, timed)  # (V + 1,)
    t_idx = resolve_target(data, u, target, full, hist)
    tlist = None if timed is None else [timed]
    res = attribute_batch_full(explained, [hist], np.array([t_idx]), method, steps=steps, batch_size=1,
                               baseline=baseline, times=tlist, samples=samples)
    used = int(steps)
    while (refine and spec.has_convergence_delta and method == "ig" and used * 2 <= max(MAX_REFINED_STEPS, used)
           and abs(res.deltas[0]) > REFINE_TOLERANCE * (abs(res.target_scores[0] - res.baseline_scores[0]) + 0.1)):
        used *= 2
        res = attribute_batch_full(explained, [hist], np.array([t_idx]), method, steps=used, batch_size=1,
                                   baseline=baseline, times=tlist)
    scores = res.scores[0]
    kept = np.asarray(hist, dtype=np.int64)[-BASELINE_WINDOW:] if baseline_model else window(explained, hist)
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
        steps=used if spec.knob == "steps" else None,
        baseline=baseline if spec.has_baseline else None, target_rank=target_rank(full, t_idx, hist),
        note=TIME_NOTE if timed is not None and method != "attention" else None,
        query_time=None if timed is None else int(timed[-1]),
        samples=int(samples or spec.default_samples) if spec.knob == "samples" else None,
        model=explained.name if baseline_model else "run")

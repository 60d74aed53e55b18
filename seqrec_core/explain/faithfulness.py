"""Can an explanation be trusted? Deletion and insertion curves and their area (AOPC) per method.

An attribution is faithful when the events it ranks highest really carry the prediction: removing them first
should make the target's score fall faster than removing events in random order (deletion), and giving the
model only those events, in their original order, should bring the score back faster (insertion). AOPC
(Samek et al. 2017) is the mean gap to the starting point over k = 1..K; larger is better for both kinds.

All curves use the window the model really sees (the last max_len events of the holdout history), so no
older event slides into view when events are removed. Every variant of a user (each method, kind and k) is
re-scored in the same forward pass. A time-aware model gets each variant's times: a removed event drops its
time (as :func:`seqrec_core.explain.counterfactual.edited_times`), the query time (the held-out event's) stays.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from seqrec_core.data.sequences import SequenceData
from seqrec_core.errors import InputError
from seqrec_core.explain.attention import has_attention, uses_time
from seqrec_core.explain.longrange import (
    Progress,
    heldout_split,
    heldout_times,
    model_device,
    model_max_len,
    prediction_targets,
    sample_rows,
)

log = logging.getLogger(__name__)

def faith_methods() -> tuple[str, ...]:
    """The registry's methods that take part (``in_faithfulness``), then the random order they must beat."""
    from seqrec_core.explain_methods import faithfulness_keys

    return (*faithfulness_keys(), "random")


FAITH_METHODS = faith_methods()  # as registered at import; get_faithfulness reads the registry when called
KINDS = ("deletion", "insertion")


@dataclass
class Faithfulness:
    """Mean deletion/insertion curves over ``users`` predictions and their AOPC per method and kind."""

    curves: pd.DataFrame  # method, kind, k, score (mean target score), prob (mean target softmax probability)
    aopc: pd.DataFrame  # method, kind, aopc (on scores), aopc_prob (on probabilities)
    users: int
    max_k: int = 10
    steps: int = 20
    samples: int | None = None  # LIME / Kernel SHAP samples (None: the registry's defaults)


def aopc(curve: Sequence[float], kind: str) -> float:
    """Area over the perturbation curve: mean over k = 1..K of score(0) - score(k) (deletion) or
    score(k) - score(0) (insertion), where ``curve[k]`` is the score after k removals / additions."""
    c = np.asarray(curve, dtype=np.float64)
    if len(c) < 2:
        return float("nan")
    if kind == "deletion":
        return float(np.mean(c[0] - c[1:]))
    if kind == "insertion":
        return float(np.mean(c[1:] - c[0]))
    raise ValueError(f"kind {kind!r} is not one of {KINDS}")


def rank_events(scores: np.ndarray) -> np.ndarray:
    """Positions ordered from the most to the least attributed (signed value; ties: the later event first)."""
    s = np.asarray(scores, dtype=np.float64)
    return (len(s) - 1 - np.argsort(-s[::-1], kind="stable")).astype(np.int64)


def perturbed_histories(window: np.ndarray, order: np.ndarray, max_k: int) -> tuple[list[np.ndarray],
                                                                                      list[np.ndarray]]:
    """(deletion, insertion) variants for k = 0..max_k: drop / keep only the first k positions of ``order``.

    Both keep the events' original order. When k exceeds the history, the last variant repeats (all removed /
    all present).
    """
    deletion, insertion = [], []
    n = len(window)
    for k in range(max_k + 1):
        top = np.zeros(n, dtype=bool)
        top[order[:min(k, n)]] = True
        deletion.append(window[~top])
        insertion.append(window[top])
    return deletion, insertion


def perturbed_times(times: np.ndarray, order: np.ndarray, max_k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The times of :func:`perturbed_histories`' variants: ``times`` is the window's event times followed by the
    query time; every variant keeps the times of the events it keeps, then the unchanged query time."""
    t = np.asarray(times, dtype=np.int64)
    events, query = t[:-1], t[-1:]
    deletion, insertion = [], []
    for k in range(max_k + 1):
        top = np.zeros(len(events), dtype=bool)
        top[order[:min(k, len(events))]] = True
        deletion.append(np.concatenate([events[~top], query]))
        insertion.append(np.concatenate([events[top], query]))
    return deletion, insertion


@torch.no_grad()
def score_targets(model: nn.Module, histories: Sequence[np.ndarray], targets: np.ndarray, max_len: int,
                  batch_size: int = 1024, times: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(score, softmax probability) of ``targets[i]`` after ``histories[i]``, in batched forwards; ``times``
    (events' times then the query time, per history) is required by a time-aware model."""
    from seqrec_core.models.neural import pad_left
    from seqrec_core.models.time_features import check_times, pad_times_left

    timed = uses_time(model)
    if timed:
        times = check_times(histories, times, f"model '{type(model).__name__}'")

    dev = model_device(model)
    scores = np.empty(len(histories), dtype=np.float64)
    probs = np.empty(len(histories), dtype=np.float64)
    for start in range(0, len(histories), batch_size):
        ids = pad_left(list(histories[start:start + batch_size]), max_len).to(dev)  # (b, W)
        if timed:
            tt = pad_times_left(times[start:start + batch_size], max_len, ids.shape[1]).to(dev)  # (b, W + 1)
            out = model.score(ids, times=tt).float()  # (b, V + 1)
        else:
            out = model.score(ids).float()  # (b, V + 1)
        tgt = torch.as_tensor(np.asarray(targets[start:start + batch_size], dtype=np.int64), device=dev)  # (b,)
        rows = torch.arange(len(tgt), device=dev)
        scores[start:start + len(tgt)] = out[rows, tgt].cpu().numpy()
        probs[start:start + len(tgt)] = torch.log_softmax(out, dim=1)[rows, tgt].exp().cpu().numpy()
    return scores, probs


def method_scores(model: nn.Module, windows: list[np.ndarray], targets: np.ndarray, method: str, *, steps: int,
                  rng: np.random.Generator, batch_size: int = 64,
                  times: list[np.ndarray] | None = None, samples: int | None = None) -> list[np.ndarray]:
    """Per-event ranking scores of one method; "random" draws a seeded random order. ``times``: per window its
    events' times then the query time (time-aware models)."""
    if method == "random":
        return [rng.random(len(w)) for w in windows]
    from seqrec_core.explain import attribution

    return [np.asarray(a, dtype=np.float64) for a in
            attribution.attribute_batch(model, windows, targets, method, steps=steps, batch_size=batch_size,
                                        samples=samples, **({} if times is None else {"times": times}))]


def get_faithfulness(run, data: SequenceData, *, n_users: int = 200, max_k: int = 10,
                     methods: Sequence[str] | None = None, steps: int = 20, seed: int = 0,
                     progress: Progress | None = None, target: str = "top", batch_size: int = 64,
                     samples: int | None = None) -> Faithfulness:
    """Deletion and insertion curves (k = 0..max_k) and AOPC for each method over seeded test users.

    The target is the model's top unseen recommendation from the full holdout history (``target="heldout"``:
    the true test item). ``seed`` fixes both the users and the random order. ``methods`` None: every registered
    method with ``in_faithfulness`` that applies to the model, and "random"; ``samples``: LIME / Kernel SHAP's.
    ``progress(done, total)`` counts users once per attributing method and once more for the re-scoring.
    """
    from seqrec_core.explain_methods import describe, method_keys

    if methods is None or methods is FAITH_METHODS:  # GRU/LSTM runs have no attention to test
        attention = has_attention(run.model)
        methods = [m for m in faith_methods() if m == "random" or describe(m).applies_to(None, attention)]
    methods = list(dict.fromkeys(methods))
    allowed = (*method_keys(), "random")
    bad = [m for m in methods if m not in allowed]
    if bad or not methods:
        raise InputError(f"faithfulness method(s) {bad or methods} not known; choose from {list(allowed)}")
    if isinstance(max_k, bool) or not isinstance(max_k, (int, np.integer)) or max_k < 1:
        raise InputError(f"max_k {max_k!r} is invalid; use a whole number >= 1 (events removed or added)")
    split = heldout_split(data)
    rows = sample_rows(len(split.users), n_users, seed)
    max_len = model_max_len(run)
    windows = [np.asarray(split.histories[i][-max_len:], dtype=np.int64) for i in rows]
    full_times = heldout_times(run, data, split, rows)  # None unless the model is time-aware
    targets = prediction_targets(run, split, rows, target, full_times)
    win_times = None if full_times is None else [t[-(len(w) + 1):] for w, t in zip(windows, full_times, strict=True)]
    n = len(rows)
    total = n * (sum(m != "random" for m in methods) + 1)
    done = 0
    rng = np.random.default_rng(seed)
    orders: dict[str, list[np.ndarray]] = {}
    for m in methods:
        ranked = []
        for start in range(0, n, batch_size):
            chunk = slice(start, start + batch_size)
            chunk_times = None if win_times is None else win_times[chunk]
            ranked.extend(rank_events(s) for s in method_scores(run.model, windows[chunk], targets[chunk], m,
                                                                 steps=steps, rng=rng, batch_size=batch_size,
                                                                 times=chunk_times, samples=samples))
            if m != "random":
                done += len(windows[chunk])
                if progress is not None:
                    progress(done, total)
        orders[m] = ranked

    per_user = 2 * len(methods) * (max_k + 1)  # variants of one user, scored in one forward
    users_per_batch = max(1, 1024 // per_user)
    score_sum = np.zeros((len(methods), 2, max_k + 1))
    prob_sum = np.zeros_like(score_sum)
    for start in range(0, n, users_per_batch):
        hists: list[np.ndarray] = []
        hist_times: list[np.ndarray] = []
        tgts: list[int] = []
        for i in range(start, min(start + users_per_batch, n)):
            for m in methods:
                deletion, insertion = perturbed_histories(windows[i], orders[m][i], max_k)
                hists.extend(deletion + insertion)
                if win_times is not None:
                    del_t, ins_t = perturbed_times(win_times[i], orders[m][i], max_k)
                    hist_times.extend(del_t + ins_t)
            tgts.extend([int(targets[i])] * per_user)
        s, p = score_targets(run.model, hists, np.asarray(tgts), max_len, batch_size=len(hists),
                             times=hist_times if win_times is not None else None)
        shape = (-1, len(methods), 2, max_k + 1)
        score_sum += s.reshape(shape).sum(axis=0)
        prob_sum += p.reshape(shape).sum(axis=0)
        done += min(users_per_batch, n - start)
        if progress is not None:
            progress(done, total)
    score_mean, prob_mean = score_sum / n, prob_sum / n

    curve_rows, aopc_rows = [], []
    for a, m in enumerate(methods):
        for b, kind in enumerate(KINDS):
            for k in range(max_k + 1):
                curve_rows.append({"method": m, "kind": kind, "k": k, "score": score_mean[a, b, k],
                                   "prob": prob_mean[a, b, k]})
            aopc_rows.append({"method": m, "kind": kind, "aopc": aopc(score_mean[a, b], kind),
                              "aopc_prob": aopc(prob_mean[a, b], kind)})
    result = Faithfulness(curves=pd.DataFrame(curve_rows), aopc=pd.DataFrame(aopc_rows), users=n, max_k=int(max_k),
                          steps=steps, samples=samples)
    log.info("faithfulness over %d users: %s", n, ", ".join(
        f"{r['method']}/{r['kind']} {r['aopc']:.3f}" for r in aopc_rows))
    return result

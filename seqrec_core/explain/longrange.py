"""How far back does the model look? Attribution mass by lag and time gap, and a history-truncation ablation.

Two complementary answers over many users. Attributions say where, inside the window the model sees, the
evidence for each prediction sits (lag buckets, time-gap buckets, how often the single strongest event is 20+
steps back; attention distance per head says where the heads look). The truncation ablation says what the far
context is worth: the same model, the same test users, but it may see only its last k events; the drop of
NDCG@10 from "all" to small k is the value of long-range context, measured directly rather than explained.

Shares are computed per prediction first (each user's |attribution| normalised to 1) and then averaged, so a
user whose scores are large in absolute terms does not outweigh the others.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from seqrec_core.data.sequences import SequenceData, Split
from seqrec_core.errors import InputError
from seqrec_core.explain.attention import has_attention, model_device, uses_time
from seqrec_core.models.time_features import split_times

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

LAG_BUCKETS = ("1", "2-5", "6-20", "21-50", ">50")
LAG_EDGES = (1, 2, 6, 21, 51)  # bucket i holds lags in [LAG_EDGES[i], LAG_EDGES[i + 1]); the last is open
TIME_BUCKETS = ("<1 h", "1 h-1 d", "1-7 d", "7-30 d", ">30 d")
TIME_EDGES = (0, 3600, 86400, 7 * 86400, 30 * 86400)  # seconds; bucket i = [TIME_EDGES[i], TIME_EDGES[i + 1])
FAR_LAG = 20  # "long range": the most-attributed event is at least this many steps back
TRUNCATION_KS = (1, 2, 5, 10, 20, 50, None)


@dataclass
class LongRangeStats:
    """Where the evidence for predictions sits, over ``users`` predictions explained with ``method``."""

    by_lag: pd.DataFrame  # bucket, share_of_abs_attribution, events, share_of_events
    by_time_gap: pd.DataFrame  # bucket, share_of_abs_attribution, events, share_of_events (empty if no time)
    share_top_ge20: float  # share of predictions whose most-attributed event is >= 20 steps back
    attention_distance: pd.DataFrame  # layer, head, mean_distance (events); empty for models without attention
    users: int
    method: str
    seconds: float
    steps: int = 20
    target: str = "top"


# --------------------------------------------------------------------------------------------- buckets
def lag_bucket(lags: np.ndarray) -> np.ndarray:
    """Index into :data:`LAG_BUCKETS` for each lag (1 = the latest event)."""
    lags = np.asarray(lags)
    if lags.size and lags.min() < 1:
        raise ValueError("lags count steps back from the prediction point and start at 1")
    return np.searchsorted(LAG_EDGES, lags, side="right") - 1


def time_gap_bucket(seconds: np.ndarray) -> np.ndarray:
    """Index into :data:`TIME_BUCKETS` for each gap in seconds (negative gaps, i.e. ties, count as "<1 h")."""
    seconds = np.maximum(np.asarray(seconds), 0)
    return np.searchsorted(TIME_EDGES, seconds, side="right") - 1


def bucket_shares(attributions: Sequence[np.ndarray], buckets: Sequence[np.ndarray],
                  labels: Sequence[str]) -> pd.DataFrame:
    """Mean over predictions of the share of |attribution| per bucket (each prediction sums to 1).

    ``buckets[i]`` holds the bucket index of every event of prediction i. Predictions whose attributions are
    all zero carry no evidence and are skipped. ``share_of_events`` is the same average of event counts: what
    the share would be if every event got equal attribution, the yardstick for the first column.
    """
    n_b = len(labels)
    mass = np.zeros(n_b)
    ev_share = np.zeros(n_b)
    events = np.zeros(n_b, dtype=np.int64)
    used = 0
    for attr, b in zip(attributions, buckets, strict=True):
        a = np.abs(np.asarray(attr, dtype=np.float64))
        b = np.asarray(b, dtype=np.int64)
        counts = np.bincount(b, minlength=n_b)
        events += counts
        total = a.sum()
        if not np.isfinite(total) or total <= 0:
            continue
        mass += np.bincount(b, weights=a, minlength=n_b) / total
        ev_share += counts / len(b)
        used += 1
    denom = max(used, 1)
    return pd.DataFrame({"bucket": pd.Categorical(list(labels), categories=list(labels), ordered=True),
                         "share_of_abs_attribution": mass / denom, "events": events,
                         "share_of_events": ev_share / denom})


def lags_of(length: int) -> np.ndarray:
    """Lags of a window of ``length`` events, oldest first: [length, ..., 2, 1]."""
    return np.arange(length, 0, -1, dtype=np.int64)


def share_top_far(attributions: Sequence[np.ndarray], min_lag: int = FAR_LAG) -> float:
    """Share of predictions whose most-attributed event (largest signed value) is >= ``min_lag`` steps back."""
    tops = [len(a) - int(np.argmax(a)) for a in attributions if len(a)]
    return float(np.mean(np.asarray(tops) >= min_lag)) if tops else float("nan")


# ------------------------------------------------------------------------------------------ helpers
def model_max_len(run) -> int:
    return int(getattr(getattr(run.model, "config", None), "max_len", 0) or run.max_len)


def sample_rows(n_total: int, n: int | None, seed: int) -> np.ndarray:
    """A sorted, seeded subsample of ``n`` of ``n_total`` rows (all when n is None or larger)."""
    if n is not None and n < 1:
        raise InputError(f"the number of users must be >= 1 (got {n})")
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def heldout_split(data: SequenceData) -> Split:
    split = data.split("test")
    if len(split.users) == 0:
        raise InputError("no user has at least 3 events, so there is no held-out prediction to explain; "
                         "load a longer log")
    return split


@torch.no_grad()
def top_targets(model: nn.Module, histories: Sequence[np.ndarray], max_len: int, *, exclude_seen: bool = True,
                batch_size: int = 256, times: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """The model's top recommendation (item index) after each history; items already seen are skipped.
    ``times``: per history its events' times then the query time (required by a time-aware model)."""
    from seqrec_core.models.neural import NeuralScorer

    scorer = NeuralScorer(model, max_len, model_device(model), batch_size=batch_size, output="torch")
    out = np.empty(len(histories), dtype=np.int64)
    for start in range(0, len(histories), batch_size):
        hists = list(histories[start:start + batch_size])
        chunk_times = None if times is None else list(times[start:start + batch_size])
        scores = scorer.score_histories(hists, times=chunk_times).clone()  # (b, V + 1) on the model's device
        if exclude_seen:
            for row, h in enumerate(hists):
                if len(h):
                    scores[row, torch.as_tensor(np.asarray(h, dtype=np.int64), device=scores.device)] = -torch.inf
        out[start:start + len(hists)] = scores.argmax(dim=1).cpu().numpy()
    return out


def heldout_times(run, data: SequenceData, split: Split, rows: np.ndarray) -> list[np.ndarray] | None:
    """Times of the sampled holdout histories (query time = the held-out event's, as evaluation) for a
    time-aware model; None for the others, which take no times."""
    if not uses_time(run.model):
        return None
    return split_times(data, split, rows)


def prediction_targets(run, split: Split, rows: np.ndarray, target: str,
                       times: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Targets to explain: "top" = the model's top unseen recommendation, "heldout" = the true test item."""
    if target == "heldout":
        return split.targets[rows]
    if target != "top":
        raise InputError(f"target '{target}' is not one of ['top', 'heldout']")
    return top_targets(run.model, [split.histories[i] for i in rows], model_max_len(run), times=times)


# ----------------------------------------------------------------------------------------- statistics
def get_longrange_stats(run, data: SequenceData, *, n_users: int = 1000, method: str = "ig", steps: int = 20,
                        seed: int = 0, progress: Progress | None = None, target: str = "top",
                        batch_size: int = 64) -> LongRangeStats:
    """Attribution mass by lag bucket and time gap, far-top share and attention distance over many users.

    Each sampled test user's prediction from its holdout history (all but the held-out event) is explained
    with ``method`` via the batched engine (``attribute_batch``, on the model's device). ``target`` "top"
    explains the model's top unseen recommendation, "heldout" the true test item. Time gaps run from each
    event to the held-out event's time (the prediction point). ``progress(done, total)`` counts users,
    first through the attributions, then through the attention maps.
    """
    from seqrec_core.explain import attribution
    from seqrec_core.explain_methods import method_keys

    if method not in method_keys():
        raise InputError(f"method '{method}' is not one of {list(method_keys())}")
    started = time.perf_counter()
    split = heldout_split(data)
    rows = sample_rows(len(split.users), n_users, seed)
    n_att = len(rows) if has_attention(run.model) else 0  # GRU/LSTM runs: no attention distance
    total = len(rows) + n_att
    max_len = model_max_len(run)
    histories = [split.histories[i] for i in rows]
    times = heldout_times(run, data, split, rows)
    targets = prediction_targets(run, split, rows, target, times)
    on_batch = None if progress is None else (lambda done, _n: progress(done, total))
    timed = {} if times is None else {"times": times}  # untimed models: the call exactly as before
    attrs = [np.asarray(a, dtype=np.float64) for a in
             attribution.attribute_batch(run.model, histories, targets, method, steps=steps, batch_size=batch_size,
                                         progress=on_batch, **timed)]
    by_lag = bucket_shares(attrs, [lag_bucket(lags_of(len(a))) for a in attrs], LAG_BUCKETS)
    if data.has_time:
        gaps = []
        for a, i in zip(attrs, rows, strict=True):
            u = split.users[i]
            event_times = data.times[u][:-1][len(split.histories[i]) - len(a):]  # (T,) the window's times
            gaps.append(time_gap_bucket(split.target_times[i] - event_times))
        by_time = bucket_shares(attrs, gaps, TIME_BUCKETS)
    else:
        by_time = bucket_shares([], [], TIME_BUCKETS).iloc[0:0]
    distance = attention_distance(run.model, histories[:n_att], max_len, times=None if times is None else times[:n_att],
                                  progress=(lambda d, _t: progress(len(rows) + d, total)) if progress else None)
    seconds = time.perf_counter() - started
    log.info("long-range stats (%s, %d steps) over %d users in %.1f s", method, steps, len(rows), seconds)
    return LongRangeStats(by_lag=by_lag, by_time_gap=by_time, share_top_ge20=share_top_far(attrs),
                          attention_distance=distance, users=len(rows), method=method, seconds=seconds,
                          steps=steps, target=target)


def attention_distance(model: nn.Module, histories: Sequence[np.ndarray], max_len: int,
                       progress: Progress | None = None, batch_size: int = 64,
                       times: Sequence[np.ndarray] | None = None) -> pd.DataFrame:
    """Mean attention distance (events) per layer and head, averaged over users (attention.py's measure).
    ``times`` (per history: events' times then the query time) is required by a time-aware model."""
    from seqrec_core.explain.attention import AttentionMaps, attention_batch, mean_attention_distance

    timed = uses_time(model)
    per_user = []
    for start in range(0, len(histories), batch_size):
        stop = min(start + batch_size, len(histories))
        keep = [i for i in range(start, stop) if min(len(histories[i]), max_len) >= 2]  # one event: no distance
        if keep:
            chunk = [np.asarray(histories[i], dtype=np.int64)[-max_len:] for i in keep]
            chunk_times = None
            if timed and times is not None:  # the window's times and the query time
                chunk_times = [np.asarray(times[i], dtype=np.int64)[-(len(h) + 1):]
                               for i, h in zip(keep, chunk, strict=True)]
            for h, w in zip(chunk, attention_batch(model, chunk, chunk_times), strict=True):
                per_user.append(mean_attention_distance(AttentionMaps(items=h, weights=w)))  # (L, H)
        if progress is not None:
            progress(min(start + batch_size, len(histories)), len(histories))
    if not per_user:
        return pd.DataFrame({"layer": pd.Series(dtype="int64"), "head": pd.Series(dtype="int64"),
                             "mean_distance": pd.Series(dtype="float64")})
    mean = np.mean(np.stack(per_user), axis=0)  # (L, H)
    layer, head = np.meshgrid(np.arange(mean.shape[0]), np.arange(mean.shape[1]), indexing="ij")
    return pd.DataFrame({"layer": layer.ravel(), "head": head.ravel(), "mean_distance": mean.ravel()})


# ------------------------------------------------------------------------------------------ truncation
class TruncatedScorer:
    """A Scorer that shows the wrapped model only the last ``k`` events of each history (k None = all); the
    times of a time-aware model are cut the same way (the kept events' times and the query time)."""

    def __init__(self, inner, k: int | None) -> None:
        if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
            raise InputError(f"truncation length {k!r} is invalid; use a whole number >= 1 or None for all")
        self.inner = inner
        self.k = None if k is None else int(k)
        self.name = f"{getattr(inner, 'name', 'model')} (last {'all' if k is None else k})"

    @property
    def uses_time(self) -> bool:
        """Whether the wrapped scorer needs times (evaluation then passes them)."""
        return bool(getattr(self.inner, "uses_time", False))

    def score_histories(self, histories: list[np.ndarray], times: list[np.ndarray] | None = None):
        if not self.uses_time:
            times = None  # plain scorers take no times
        if self.k is None:
            return self.inner.score_histories(histories) if times is None else \
                self.inner.score_histories(histories, times=times)
        cut = [h[-self.k:] for h in histories]
        if times is None:
            return self.inner.score_histories(cut)
        return self.inner.score_histories(cut, times=[np.asarray(t)[-(len(h) + 1):] for h, t in
                                                     zip(cut, times, strict=True)])


def get_truncation_ablation(run, data: SequenceData, ks: Sequence[int | None] = TRUNCATION_KS, *,
                            exclude_seen: bool = False, max_users: int | None = None, seed: int = 0,
                            progress: Progress | None = None) -> pd.DataFrame:
    """Test NDCG@10 / HR@10 when the model may see only its last k events, for each k (None = "all").

    The metric code is :func:`seqrec_core.evaluation.evaluate` itself; only the histories handed to the model
    are cut. ``exclude_seen`` still excludes the whole history (what the person has seen does not change when
    the model is shown less of it). ``mean_events_seen`` is what the model actually saw on average (also capped
    by its max_len, so k beyond max_len equals "all").
    """
    from seqrec_core.evaluation import evaluate
    from seqrec_core.models.neural import NeuralScorer

    ks = list(ks)
    if not ks:
        raise InputError("give at least one truncation length k")
    max_len = model_max_len(run)
    inner = NeuralScorer(run.model, max_len, model_device(run.model), batch_size=512, output="torch",
                         name=run.path.name if getattr(run, "path", None) else None)
    split = heldout_split(data)
    n = len(split.users) if max_users is None else min(max_users, len(split.users))
    rows = []
    for j, k in enumerate(ks):
        scorer = TruncatedScorer(inner, k)
        step = (lambda d, t, j=j: progress(j * t + d, len(ks) * t)) if progress is not None else None
        res = evaluate(scorer, data, "test", exclude_seen=exclude_seen, batch_size=512, max_users=max_users,
                       seed=seed, progress=step)
        cap = max_len if k is None else min(int(k), max_len)
        rows.append({"k": "all" if k is None else str(int(k)), "NDCG@10": res.metrics["NDCG@10"],
                     "HR@10": res.metrics["HR@10"], "users": int(len(res.ranks)),
                     "mean_events_seen": float(np.minimum(res.history_len, cap).mean())})
    log.info("truncation ablation over %d users: %s", n,
             ", ".join(f"k={r['k']}: {r['NDCG@10']:.4f}" for r in rows))
    return pd.DataFrame(rows, columns=["k", "NDCG@10", "HR@10", "users", "mean_events_seen"])

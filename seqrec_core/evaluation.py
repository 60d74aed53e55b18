"""Full-ranking evaluation: every model and baseline ranks the whole catalogue for each held-out event.

Why full ranking: sampled-negative metrics (rank among 100 random items) reorder models and flatter weak ones,
so the design forbids them by default. Ranks are pessimistic under ties (a model that scores everything the same
ranks the target last, not first), so a degenerate model can never look good. AUC and GAUC come from the same
pass: besides the rank, the ranking counts the target's ties and its candidates, so the AUC is exact (a tie counts
half, as in scikit-learn's ``roc_auc_score``) and costs nothing extra.

The scorer's output may be a numpy array or a torch tensor (possibly on a GPU): ranking runs where the scores
already are, batch by batch, so a users x items matrix never exists in memory.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seqrec_core.data.sequences import SequenceData
from seqrec_core.errors import InputError

if TYPE_CHECKING:  # importing the models package would pull in torch; evaluation needs only the protocol
    from seqrec_core.models.base import Scorer

log = logging.getLogger(__name__)

KS = (1, 5, 10, 20)
METRICS = ("HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR")  # from the rank alone
AUC_METRICS = ("AUC", "GAUC")  # need the candidate and tie counts too (results stored before 2026-12 lack them)
ALL_METRICS = (*METRICS, *AUC_METRICS)
AUC_HELP = ("AUC: the share of the catalogue the model ranks below the item the user really took next, averaged over "
            "users; 0.5 = random, 1 = always first. GAUC: the same, each user weighted by the number of events "
            "before the held-out one, so heavy users count more.")
HISTORY_EDGES = (1, 5, 10, 20, 50, 100, math.inf)


REPEAT_SHARE_FOR_EXCLUDING = 0.01  # below this share of repeat events, seen items are excluded by default


def repeat_share(data: SequenceData) -> float:
    """Share of training events whose item the same user already had earlier (repeat consumption)."""
    repeats = total = 0
    for u in range(data.n_users):
        seq = data.train_sequence(u)
        total += len(seq)
        repeats += len(seq) - len(np.unique(seq))
    return repeats / total if total else 0.0


def default_exclude_seen(data: SequenceData) -> bool:
    """Whether to rank only unseen items when nobody asked: yes when users (almost) never repeat an item.

    Why: in a log without repeats an already-seen item can never be the next one, so ranking it is a free
    mistake that deployed recommenders never make, and the published full-ranking protocol on such logs
    (S3-Rec's, used for SASRec on Amazon Beauty) excludes the history too. With repeat consumption (music,
    groceries, the demo log) seen items stay rankable. The choice is always reported next to the numbers.
    """
    return repeat_share(data) < REPEAT_SHARE_FOR_EXCLUDING


def metric_values(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Per-user value of one metric from 1-based ranks (one relevant item per user, so IDCG = 1)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if metric == "MRR":
        return 1.0 / ranks
    name, _, k_text = metric.partition("@")
    if not k_text.isdigit() or name not in ("HR", "NDCG"):
        raise ValueError(f"unknown metric {metric!r}; use HR@K, NDCG@K or MRR")
    hit = ranks <= int(k_text)
    if name == "HR":
        return hit.astype(np.float64)
    return np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0)


def auc_values(ranks: np.ndarray, n_candidates: np.ndarray, ties: np.ndarray) -> np.ndarray:
    """Per-user AUC of the held-out item against its ``n_candidates`` other rankable items.

    = (#candidates scored below + half the #tied) / #candidates, exactly scikit-learn's ``roc_auc_score`` with the
    target as the one positive. From the pessimistic rank: rank - 1 = #above + #tied. A user with no other
    candidate (nothing to rank against) counts as 0.5, chance, rather than NaN that would poison the mean.
    """
    n = np.asarray(n_candidates, dtype=np.float64)
    below = n - (np.asarray(ranks, dtype=np.float64) - 1.0) + 0.5 * np.asarray(ties, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, below / np.maximum(n, 1.0), 0.5)


def compute_metrics(ranks: np.ndarray, metrics: Sequence[str] = METRICS) -> dict[str, float]:
    """Means over users; NaN when there are no users."""
    if len(ranks) == 0:
        return {m: float("nan") for m in metrics}
    return {m: float(metric_values(ranks, m).mean()) for m in metrics}


@dataclass
class EvalResult:
    """Ranks of the held-out item for every evaluated user; metrics and plots all derive from them."""

    name: str
    part: str
    exclude_seen: bool
    users: np.ndarray  # (U,) user rows into data.vocab.user_ids
    ranks: np.ndarray  # (U,) 1-based pessimistic rank of the target among all rankable items
    history_len: np.ndarray  # (U,) length of the history the scorer saw
    metrics: dict[str, float]
    n_candidates: np.ndarray | None = None  # (U,) other items the target was ranked against; None: stored before AUC
    ties: np.ndarray | None = None  # (U,) of those, how many scored exactly as the target

    @property
    def has_auc(self) -> bool:
        return self.n_candidates is not None and self.ties is not None

    def per_user(self, metric: str) -> np.ndarray:
        """Per-user values of HR@K / NDCG@K / MRR / AUC, aligned with ``users`` (GAUC: the per-user AUC, which
        :meth:`weights` turns into the weighted mean)."""
        if metric not in AUC_METRICS:
            return metric_values(self.ranks, metric)
        if self.n_candidates is None or self.ties is None:
            raise InputError(f"'{self.name}' was evaluated without candidate counts (stored before AUC existed), so "
                             f"{metric} is unknown; compute the evaluation again")
        return auc_values(self.ranks, self.n_candidates, self.ties)

    def weights(self, metric: str) -> np.ndarray | None:
        """Per-user weights of a metric's mean; None = plain mean. GAUC weights each user's AUC by the events before
        the held-out one (the history the model saw): the usual group AUC weights users by their activity, and this
        count is stored with every result (on the test split it is the training events plus the validation one)."""
        return self.history_len.astype(np.float64) if metric == "GAUC" else None

    def mean(self, metric: str) -> float:
        """The metric over these users (weighted for GAUC); NaN when there are none."""
        if len(self.ranks) == 0:
            return float("nan")
        w = self.weights(metric)
        values = self.per_user(metric)
        return float(values.mean()) if w is None else float((values * w).sum() / w.sum())

    def all_metrics(self) -> dict[str, float]:
        """Every metric this result can give: the rank metrics, and AUC / GAUC when the counts are known."""
        return {m: self.mean(m) for m in (ALL_METRICS if self.has_auc else METRICS)}

    def subset(self, mask: np.ndarray, name: str | None = None) -> EvalResult:
        """The same evaluation restricted to some users (``mask`` over ``users``); metrics recomputed."""
        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[mask]

        sub = EvalResult(name=self.name if name is None else name, part=self.part, exclude_seen=self.exclude_seen,
                         users=self.users[mask], ranks=self.ranks[mask], history_len=self.history_len[mask],
                         metrics={}, n_candidates=cut(self.n_candidates), ties=cut(self.ties))
        sub.metrics = sub.all_metrics()
        return sub


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _check_shape(shape: tuple, n_rows: int, n_cols: int) -> None:
    if len(shape) != 2 or shape[0] != n_rows or shape[1] != n_cols:
        raise InputError(
            f"the model returned scores of shape {tuple(shape)} but this data needs ({n_rows}, {n_cols}) "
            f"(catalogue of {n_cols - 1} items); evaluate a run on the same data it was trained on")


def compute_ranks(scores: Any, histories: Sequence[np.ndarray], targets: np.ndarray,
                  exclude_seen: bool = False) -> np.ndarray:
    """1-based pessimistic ranks of ``targets`` in each row of ``scores``; see :func:`rank_counts`."""
    return rank_counts(scores, histories, targets, exclude_seen)[0]


def rank_counts(scores: Any, histories: Sequence[np.ndarray], targets: np.ndarray,
                exclude_seen: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ranks, ties, candidates) of ``targets`` in each row of ``scores`` (numpy or torch, any device).

    rank = 1 + #{items j != target, j != 0, j not excluded : score_j >= score_target}. NaN scores are treated
    as ties with everything (pessimistic); a NaN or -inf target ranks last among the rankable items.
    With ``exclude_seen`` the history items are removed from the ranking, except the target itself: when the
    held-out item is a repeat of something in the history it stays rankable (otherwise a repeat could never be
    hit and the metric would punish the model for the data's repeat rate). ``ties`` counts the other rankable items
    scored exactly as the target (already inside the rank), ``candidates`` the other rankable items; both feed the
    exact AUC (a NaN-scored item counts there as above the target, not as half a tie). Returns three int64 (B,).
    """
    targets = np.asarray(targets, dtype=np.int64)
    n_rows = len(targets)
    if len(scores.shape) != 2 or scores.shape[0] != n_rows:
        raise ValueError(f"scores of shape {tuple(scores.shape)} do not match {n_rows} targets")
    if n_rows == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if exclude_seen:
        lens = np.array([len(h) for h in histories], dtype=np.int64)
        seen_rows = np.repeat(np.arange(n_rows), lens)
        seen_cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories]) if lens.sum() else \
            np.zeros(0, dtype=np.int64)
    candidates = _candidates(scores.shape[1], targets, seen_rows, seen_cols) if exclude_seen else \
        np.full(n_rows, scores.shape[1] - 2, dtype=np.int64)  # every item but the padding and the target
    if _is_torch(scores):
        import torch

        dev = scores.device
        s = scores.detach().to(torch.float32).clone()  # (B, N+1), ours to mutate
        rows = torch.arange(n_rows, device=dev)
        tgt = torch.as_tensor(targets, device=dev)
        t = s[rows, tgt].clone()  # (B,)
        t = torch.where(torch.isnan(t), torch.full_like(t, -math.inf), t)
        s = torch.nan_to_num(s, nan=math.inf, posinf=math.inf, neginf=-math.inf)
        s[:, 0] = math.nan  # padding is never rankable; NaN compares False
        if exclude_seen and len(seen_cols):
            s[torch.as_tensor(seen_rows, device=dev), torch.as_tensor(seen_cols, device=dev)] = math.nan
        s[rows, tgt] = t
        counts = torch.stack([(s >= t[:, None]).sum(dim=1),  # (B,) counts the target itself, hence 1 + others
                              (s == t[:, None]).sum(dim=1) - 1])  # (2, B)
        ranks, ties = counts.cpu().numpy().astype(np.int64)
        return ranks, ties, candidates
    s = np.array(scores, dtype=np.float32, copy=True)  # (B, N+1), ours to mutate
    rows = np.arange(n_rows)
    t = s[rows, targets].copy()  # (B,)
    if np.isnan(t).any() or np.isnan(s).any():
        t[np.isnan(t)] = -np.inf
        s[np.isnan(s)] = np.inf
    s[:, 0] = np.nan
    if exclude_seen and len(seen_cols):
        s[seen_rows, seen_cols] = np.nan
    s[rows, targets] = t
    with np.errstate(invalid="ignore"):
        ranks = np.count_nonzero(s >= t[:, None], axis=1).astype(np.int64)
        ties = np.count_nonzero(s == t[:, None], axis=1).astype(np.int64) - 1
    return ranks, ties, candidates


def _candidates(n_cols: int, targets: np.ndarray, seen_rows: np.ndarray, seen_cols: np.ndarray) -> np.ndarray:
    """Per row, the items left to rank the target against when seen items are excluded: all but the padding, the
    target and the distinct seen items (from the histories, not from another pass over the scores)."""
    out = np.full(len(targets), n_cols - 2, dtype=np.int64)
    keep = (seen_cols != 0) & (seen_cols != targets[seen_rows])
    distinct = np.unique(seen_rows[keep] * n_cols + seen_cols[keep])
    return out - np.bincount(distinct // n_cols, minlength=len(targets))


def evaluate(scorer: Scorer, data: SequenceData, part: str = "test", *, exclude_seen: bool = False,
             batch_size: int = 256, max_users: int | None = None, seed: int = 0,
             progress: Callable[[int, int], None] | None = None) -> EvalResult:
    """Rank each user's held-out ``part`` item ("val" or "test") against the full catalogue.

    ``max_users`` evaluates a fixed-seed random subsample (same users for every model with the same seed), which
    is what early stopping wants; reported numbers should use all users. ``progress(done, total)`` is called
    after each batch.

    A time-aware scorer (``uses_time``) also gets each history's times, and as the query time the held-out
    event's timestamp (``Split.target_times``): at serving time "now" is known, so this leaks nothing about which
    item comes next. Other scorers are called exactly as the :class:`Scorer` protocol says.
    """
    if part not in ("val", "test"):
        raise InputError(f"cannot evaluate on part '{part}'; use 'val' or 'test'")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1 (got {batch_size})")
    split = data.split(part)  # type: ignore[arg-type]
    n_total = len(split.users)
    if n_total == 0:
        raise InputError("no user has at least 3 events, so there is nothing to hold out for evaluation; "
                         "load a longer log or relax the filtering")
    idx = np.arange(n_total)
    if max_users is not None and max_users < n_total:
        if max_users < 1:
            raise InputError(f"max_users must be >= 1 (got {max_users})")
        idx = np.sort(np.random.default_rng(seed).choice(n_total, size=max_users, replace=False))
    n_cols = data.vocab.n_items + 1
    ranks, ties, candidates = (np.empty(len(idx), dtype=np.int64) for _ in range(3))
    split_times = None
    if getattr(scorer, "uses_time", False):
        from seqrec_core.models.time_features import require_time
        from seqrec_core.models.time_features import split_times as times_of

        require_time(data, f"model '{getattr(scorer, 'name', 'model')}' (trained with time features)")
        split_times = times_of(data, split)
    for start in range(0, len(idx), batch_size):
        batch = idx[start:start + batch_size]
        hists = [split.histories[i] for i in batch]
        if split_times is None:
            scores = scorer.score_histories(hists)
        else:
            scores = scorer.score_histories(hists, times=[split_times[i] for i in batch])
        _check_shape(tuple(scores.shape), len(batch), n_cols)
        done = slice(start, start + len(batch))
        ranks[done], ties[done], candidates[done] = rank_counts(scores, hists, split.targets[batch], exclude_seen)
        if progress is not None:
            progress(min(start + len(batch), len(idx)), len(idx))
    history_len = np.array([len(split.histories[i]) for i in idx], dtype=np.int64)
    result = EvalResult(name=str(getattr(scorer, "name", type(scorer).__name__)), part=part,
                        exclude_seen=exclude_seen, users=split.users[idx], ranks=ranks, history_len=history_len,
                        metrics={}, n_candidates=candidates, ties=ties)
    result.metrics = result.all_metrics()
    log.info("evaluated %s on %s (%d users, exclude_seen=%s): NDCG@10=%.4f HR@10=%.4f AUC=%.4f GAUC=%.4f",
             result.name, part, len(idx), exclude_seen, *map(result.metrics.get, ("NDCG@10", "HR@10", "AUC", "GAUC")))
    return result


def bootstrap_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, M) means of ``values`` (U, M) over users resampled with replacement.

    Resamples as per-user counts so one matrix product serves all metrics; chunked to bound memory.
    """
    n_users = values.shape[0]
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, values.shape[1]), dtype=np.float64)
    chunk = max(1, min(n_boot, 4_000_000 // max(n_users, 1)))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        draws = rng.integers(0, n_users, size=(b, n_users))  # (b, U)
        counts = np.bincount((draws + np.arange(b)[:, None] * n_users).ravel(),
                             minlength=b * n_users).reshape(b, n_users)  # (b, U)
        out[start:start + b] = counts @ values / n_users  # (b, M)
    return out


def bootstrap_weighted_means(values: np.ndarray, weights: np.ndarray | None, n_boot: int, seed: int) -> np.ndarray:
    """:func:`bootstrap_means` where some columns are weighted means (``weights`` (U, M), 1 for plain columns):
    each draw's sum(w * v) / sum(w), from the very same draws (they depend only on the users, seed and n_boot)."""
    if weights is None:
        return bootstrap_means(values, n_boot, seed)
    both = bootstrap_means(np.concatenate([values * weights, weights], axis=1), n_boot, seed)  # (n_boot, 2M)
    m = values.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return both[:, :m] / both[:, m:]


def metric_weights(result: EvalResult, metrics: Sequence[str]) -> np.ndarray | None:
    """(U, M) per-user weights of ``metrics`` (ones for plain means), or None when no metric is weighted."""
    cols = [result.weights(m) for m in metrics]
    if all(w is None for w in cols):
        return None
    ones = np.ones(len(result.ranks), dtype=np.float64)
    return np.stack([ones if w is None else w for w in cols], axis=1)


def bootstrap_intervals(result: EvalResult, metrics: Sequence[str] = METRICS, n_boot: int = 1000,
                        seed: int = 0, level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals over users: how much a metric would move with another draw of users (GAUC
    resamples users with their weights, so its interval is that of the weighted mean)."""
    if not 0 < level < 1:
        raise InputError(f"confidence level must be between 0 and 1 (got {level})")
    if len(result.ranks) == 0 or n_boot < 1:
        return {m: (float("nan"), float("nan")) for m in metrics}
    values = np.stack([result.per_user(m) for m in metrics], axis=1)  # (U, M)
    means = bootstrap_weighted_means(values, metric_weights(result, metrics), n_boot, seed)  # (n_boot, M)
    alpha = (1.0 - level) / 2.0
    lo = np.quantile(means, alpha, axis=0)
    hi = np.quantile(means, 1.0 - alpha, axis=0)
    return {m: (float(lo[i]), float(hi[i])) for i, m in enumerate(metrics)}


def get_metrics_table(results: list[EvalResult], n_boot: int = 1000) -> pd.DataFrame:
    """One row per model: metrics, their 95% bootstrap bounds ("<metric> lo"/"<metric> hi"), users, setting.

    AUC and GAUC (and their bounds) are NaN for a result without candidate counts (stored before AUC existed).
    """
    rows = []
    for res in results:
        known = ALL_METRICS if res.has_auc else METRICS
        ci = bootstrap_intervals(res, metrics=known, n_boot=n_boot)
        row: dict[str, Any] = {"model": res.name, "part": res.part}
        for m in ALL_METRICS:
            row[m] = res.metrics.get(m, float("nan")) if m in known else float("nan")
        for m in ALL_METRICS:
            row[f"{m} lo"], row[f"{m} hi"] = ci.get(m, (float("nan"), float("nan")))
        row["users"] = int(len(res.ranks))
        row["exclude_seen"] = bool(res.exclude_seen)
        rows.append(row)
    return pd.DataFrame(rows)


def get_rank_distribution(results: list[EvalResult]) -> pd.DataFrame:
    """Long form (model, rank): the whole distribution, not just the head that HR@K sees."""
    frames = [pd.DataFrame({"model": res.name, "rank": res.ranks.astype(np.int64)}) for res in results]
    if not frames:
        return pd.DataFrame({"model": pd.Series(dtype="str"), "rank": pd.Series(dtype="int64")})
    return pd.concat(frames, ignore_index=True)


def _bucket_label(lo: float, hi: float) -> str:
    if math.isinf(hi):
        return f"{int(lo)}+"
    if hi - lo == 1:
        return f"{int(lo)}"
    return f"{int(lo)}-{int(hi) - 1}"


def get_metrics_by_history_length(results: list[EvalResult], edges: Sequence[float] = HISTORY_EDGES,
                                  metric: str = "NDCG@10", n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Metric per history-length bucket [edges[i], edges[i+1]) with bootstrap bounds: does more context help?

    Users shorter than ``edges[0]`` get a "<edges[0]>" bucket so the buckets always cover every user; empty
    buckets are left out. ``bucket`` is an ordered categorical (short histories first).
    """
    edges = [float(e) for e in edges]
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise InputError(f"history-length edges must be increasing with at least two values (got {edges})")
    bounds = [(-math.inf, edges[0])] + list(zip(edges[:-1], edges[1:], strict=True))
    if not math.isinf(edges[-1]):
        bounds.append((edges[-1], math.inf))
    labels = [f"<{int(hi)}" if math.isinf(lo) else _bucket_label(lo, hi) for lo, hi in bounds]
    rows = []
    for res in results:
        for (lo, hi), label in zip(bounds, labels, strict=True):
            mask = (res.history_len >= lo) & (res.history_len < hi)
            n = int(mask.sum())
            if n == 0:
                continue
            sub = res.subset(mask)
            means = bootstrap_weighted_means(sub.per_user(metric)[:, None], metric_weights(sub, [metric]), n_boot,
                                             seed)[:, 0]
            rows.append({"model": res.name, "bucket": label, "users": n, "value": sub.mean(metric),
                         "lo": float(np.quantile(means, 0.025)), "hi": float(np.quantile(means, 0.975))})
    frame = pd.DataFrame(rows, columns=["model", "bucket", "users", "value", "lo", "hi"])
    frame["bucket"] = pd.Categorical(frame["bucket"], categories=labels, ordered=True)  # plots keep this order
    return frame

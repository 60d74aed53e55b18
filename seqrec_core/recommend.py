"""Per-user recommendations, the held-out item's rank, and the user's timeline: what the Recommendations page
and the CLI's ``recommend`` show.

Two views of a user: ``holdout=True`` hides the last (test) event, so a reviewer can see whether the model would
have recommended what the user actually did next; ``holdout=False`` uses everything, i.e. what to show the user
now. With ``exclude_seen`` items from the history are left out of the list, except the held-out item itself
(the same rule as :func:`seqrec_core.evaluation.compute_ranks`, so the list and the reported rank agree).

Time-aware runs (``scorer.uses_time``) also need the request time ("now"), which a serving system knows. The
caller passes it as ``query_time`` (unix seconds, UTC); by default the held-out view uses the held-out event's
time (as evaluation does, so the list and the held-out rank agree) and the full-history view assumes the user's
last event time plus their median gap between events. Other scorers never see times.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seqrec_core.data.sequences import MIN_EVAL_EVENTS, SequenceData
from seqrec_core.errors import InputError
from seqrec_core.evaluation import compute_ranks

if TYPE_CHECKING:
    from seqrec_core.models.base import Scorer


def _to_numpy(scores: Any) -> np.ndarray:
    if type(scores).__module__.startswith("torch"):
        scores = scores.detach().float().cpu().numpy()
    out = np.array(scores, dtype=np.float32, copy=True)  # ours to mutate
    out[np.isnan(out)] = -np.inf  # an undefined score is never worth recommending
    return out


def _check_k(k: int) -> None:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a whole number >= 1 (got {k!r}); ask for e.g. k=10 recommendations")


def _mask_seen(scores: np.ndarray, histories: list[np.ndarray], keep: np.ndarray | None = None) -> None:
    """Set history items to -inf in place (row i of ``scores`` belongs to ``histories[i]``), sparing ``keep[i]``."""
    lens = np.array([len(h) for h in histories], dtype=np.int64)
    if lens.sum() == 0:
        return
    rows = np.repeat(np.arange(len(histories)), lens)
    cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
    saved = scores[np.arange(len(keep)), keep].copy() if keep is not None else None
    scores[rows, cols] = -np.inf
    if keep is not None:
        scores[np.arange(len(keep)), keep] = saved


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the k best columns per row, best first (ties: lower item index first)."""
    k = min(k, scores.shape[1] - 1)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (B, k) unordered
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)  # by score desc, then index asc
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(vals, order, axis=1)


def _batch_top_k(scores: Any, hists: list[np.ndarray], k: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of a batch where the scores are: on the GPU only k columns per row travel back to the host."""
    if not type(scores).__module__.startswith("torch"):
        s = _to_numpy(scores)  # (B, N+1)
        if exclude_seen:
            _mask_seen(s, hists)
        return _top_k(s, k)
    import torch

    s = torch.nan_to_num(scores.detach().float(), nan=-math.inf, posinf=math.inf,
                         neginf=-math.inf)  # (B, N+1), a fresh tensor
    if exclude_seen:
        lens = [len(h) for h in hists]
        if sum(lens):
            rows = torch.repeat_interleave(torch.arange(len(hists)), torch.tensor(lens)).to(s.device)
            cols = torch.as_tensor(np.concatenate(hists).astype(np.int64), device=s.device)
            s[rows, cols] = -float("inf")
    vals, idx = torch.topk(s, min(k, s.shape[1] - 1), dim=1)  # (B, k), best first
    return idx.cpu().numpy(), vals.cpu().numpy()


def _user_history(data: SequenceData, user_id: str, holdout: bool) -> tuple[int, np.ndarray, int | None]:
    u = data.vocab.user_index(user_id)
    seq = data.sequences[u]
    if not holdout:
        return u, seq, None
    if len(seq) < 2:
        raise InputError(f"user '{user_id}' has only {len(seq)} event(s), so none can be held out; "
                         f"use holdout=False (show recommendations from the full history)")
    return u, seq[:-1], int(seq[-1])


def _uses_time(scorer: Scorer) -> bool:
    # models.base.uses_time, not imported: any seqrec_core.models import loads torch, which this module avoids
    return bool(getattr(scorer, "uses_time", False))


def _score(scorer: Scorer, data: SequenceData, u: int, history: np.ndarray, query_time: int | None) -> Any:
    """Scores (1, N+1) of one history (a prefix of user row ``u``'s events); times only for time-aware scorers."""
    if not _uses_time(scorer):
        return scorer.score_histories([history])
    from seqrec_core.models.time_features import require_time, with_query

    require_time(data, f"model '{getattr(scorer, 'name', 'model')}' (trained with time features)")
    if query_time is None and len(history) < len(data.sequences[u]):
        query_time = int(data.times[u][len(history)])  # the held-out event's time, as in evaluation
    return scorer.score_histories([history], times=[with_query(data.times[u][:len(history)], query_time)])


def _item_frame(data: SequenceData, idx: np.ndarray) -> dict[str, list]:
    vocab = data.vocab
    ids = [vocab.item_id(i) for i in idx]
    return {"item_id": ids, "title": [vocab.title(i) for i in ids], "category": [vocab.category(i) for i in ids]}


def get_recommendations(scorer: Scorer, data: SequenceData, user_id: str, k: int = 10, *,
                        exclude_seen: bool = True, holdout: bool = True,
                        query_time: int | None = None) -> pd.DataFrame:
    """Top-k items for one user: rank, item_id, title, category, score (best first).
    ``query_time``: the request time for a time-aware run (see the module docstring for the default)."""
    _check_k(k)
    u, history, target = _user_history(data, user_id, holdout)
    scores = _to_numpy(_score(scorer, data, u, history, query_time))  # (1, N+1)
    if exclude_seen:
        _mask_seen(scores, [history], None if target is None else np.array([target]))
    idx, vals = _top_k(scores, k)
    keep = vals[0] > -np.inf  # masked and padding items are never listed
    idx, vals = idx[0][keep], vals[0][keep]
    frame = {"rank": np.arange(1, len(idx) + 1)} | _item_frame(data, idx) | {"score": vals.astype(np.float64)}
    return pd.DataFrame(frame)


def get_heldout_rank(scorer: Scorer, data: SequenceData, user_id: str, *, exclude_seen: bool = True) -> dict:
    """Where the user's actual last item ranks when the model sees everything before it (full catalogue); a
    time-aware run is asked at the held-out event's time, exactly as evaluation does."""
    u, history, target = _user_history(data, user_id, holdout=True)
    scores = _score(scorer, data, u, history, None)
    rank = int(compute_ranks(scores, [history], np.array([target]), exclude_seen=exclude_seen)[0])
    score = float(_to_numpy(scores)[0, target])
    item_id = data.vocab.item_id(target)
    return {"item_id": item_id, "title": data.vocab.title(item_id), "rank": rank, "score": score}


def get_user_timeline(data: SequenceData, user_id: str) -> pd.DataFrame:
    """The user's events in order with their split role; lag counts back from the end (1 = latest)."""
    u = data.vocab.user_index(user_id)
    seq, times = data.sequences[u], data.times[u]
    n = len(seq)
    split = np.full(n, "train", dtype=object)
    if n >= MIN_EVAL_EVENTS:  # the same rule as SequenceData.split / train_sequence
        split[-1], split[-2] = "test", "val"
    if data.has_time:
        stamps = pd.Series(pd.to_datetime(np.asarray(times, dtype=np.int64), unit="s", utc=True))
    else:
        stamps = pd.Series([None] * n, dtype=object)
    frame = {"position": np.arange(1, n + 1)} | _item_frame(data, seq) | {
        "timestamp": stamps, "lag": np.arange(n, 0, -1), "split": split.astype(str)}
    return pd.DataFrame(frame)


def get_all_recommendations(scorer: Scorer, data: SequenceData, k: int = 10, *, exclude_seen: bool = True,
                            batch_size: int = 512, progress: Callable[[int, int], None] | None = None,
                            query_time: int | None = None, users: Sequence[str] | None = None) -> pd.DataFrame:
    """Top-k for every user (or for ``users``, original ids, in that order) from their full history (what to
    show them next): user_id, rank, item_id, title, score. Batched, so memory stays at batch_size x items.
    ``query_time`` (time-aware runs): one request time for everybody; default per user: their last event time
    plus their median gap. A user's list is the one :func:`get_recommendations` gives with ``holdout=False``."""
    _check_k(k)
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1 (got {batch_size})")
    wanted = (np.arange(data.n_users, dtype=np.int64) if users is None
              else np.array([data.vocab.user_index(user) for user in users], dtype=np.int64))  # (U,) user rows
    users_out, ranks, items, scores_out = [], [], [], []
    n = len(wanted)
    use_time = _uses_time(scorer)
    if use_time:
        from seqrec_core.models.time_features import require_time, with_query

        require_time(data, f"model '{getattr(scorer, 'name', 'model')}' (trained with time features)")
    for start in range(0, n, batch_size):
        rows = wanted[start:start + batch_size]
        hists = [data.sequences[u] for u in rows]
        if use_time:
            scores = scorer.score_histories(hists, times=[with_query(data.times[u], query_time) for u in rows])
        else:
            scores = scorer.score_histories(hists)
        idx, vals = _batch_top_k(scores, hists, k, exclude_seen)  # (B, k)
        ok = vals > -np.inf
        users_out.append(np.repeat(rows, ok.sum(axis=1)))
        ranks.append(np.broadcast_to(np.arange(1, idx.shape[1] + 1), idx.shape)[ok])
        items.append(idx[ok])
        scores_out.append(vals[ok])
        if progress is not None:
            progress(start + len(rows), n)
    user_rows = np.concatenate(users_out) if users_out else np.zeros(0, dtype=np.int64)
    item_idx = np.concatenate(items) if items else np.zeros(0, dtype=np.int64)
    user_ids = np.asarray(data.vocab.user_ids, dtype=object)[user_rows]
    item_ids = np.asarray(data.vocab.item_ids, dtype=object)[item_idx - 1]
    titles = data.vocab.item_titles
    return pd.DataFrame({"user_id": user_ids.astype(str), "rank": np.concatenate(ranks) if ranks else [],
                         "item_id": item_ids.astype(str), "title": [titles.get(i) for i in item_ids],
                         "score": np.concatenate(scores_out).astype(np.float64) if scores_out else []})

"""Counterfactual editing: delete, reorder or insert events in a user's history and re-score at once.

Why: an attribution says an event mattered; removing it and watching the target fall in the ranking shows it.
The original is the held-out history (all but the last event), the same one the Explain page attributes.

Time-aware runs also need the edited history's times (:func:`edited_times`): a deleted event drops its time, an
inserted event takes the time of the event before it, and a reorder keeps the time slots (the items move, the
clock does not). The query time stays the held-out event's time, before and after the edit.
"""
from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from seqrec_core.data.sequences import SequenceData
from seqrec_core.errors import InputError
from seqrec_core.explain.attribution import (
    check_same_catalogue,
    history_query_times,
    resolve_target,
    score_history,
    target_rank,
    user_history,
    uses_time,
)
from seqrec_core.models.time_features import with_query


def edited_times(original: np.ndarray, times: np.ndarray, edited: np.ndarray) -> np.ndarray:
    """(len(edited),) int64 event times for an edited history, from the original's items and times.

    Same items in another order (or a same-length substitution): every slot keeps its time. Otherwise the edit is
    aligned with the original (difflib): kept events keep their times, deleted ones drop theirs, inserted ones take
    the time of the event before them (the first original time at the very start)."""
    original = np.asarray(original, dtype=np.int64)
    times = np.asarray(times, dtype=np.int64)
    edited = np.asarray(edited, dtype=np.int64)
    if len(original) != len(times):
        raise InputError(f"{len(original)} events but {len(times)} times; give one time per event")
    if len(edited) == len(original):
        return times.copy()  # reorder / substitution: the slots keep their times
    out: list[int] = []
    first = int(times[0]) if len(times) else 0
    ops = difflib.SequenceMatcher(a=original.tolist(), b=edited.tolist(), autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            out.extend(int(t) for t in times[i1:i2])
        elif tag in ("insert", "replace"):
            out.extend([out[-1] if out else first] * (j2 - j1))
        # "delete": the removed events' times go with them
    return np.asarray(out, dtype=np.int64)


def _top_frame(data: SequenceData, scores: np.ndarray, seen: np.ndarray, k: int, exclude_seen: bool) -> pd.DataFrame:
    s = scores.astype(np.float64).copy()  # (V + 1,)
    s[0] = -np.inf
    if exclude_seen and len(seen):
        s[np.asarray(seen, dtype=np.int64)] = -np.inf
    k = min(int(k), len(s) - 1)
    idx = np.argpartition(-s, k - 1)[:k]
    idx = idx[np.lexsort((idx, -s[idx]))]  # by score desc, ties: lower index first
    idx = idx[np.isfinite(s[idx])]
    ids = [data.vocab.item_id(i) for i in idx]
    return pd.DataFrame({"rank": np.arange(1, len(idx) + 1), "item_id": ids,
                         "title": [data.vocab.title(i) for i in ids], "score": s[idx]})


def rescore_edited(run, data: SequenceData, user: str, edited_items: list[str], target: str | None, k: int = 10,
                   exclude_seen: bool = True) -> dict:
    """Top-k and the target's rank and score before (held-out history) and after the edit.

    ``edited_items``: the new history as original item ids, oldest first. ``target`` None = the original top
    recommendation (so its fall can be followed), "heldout" = the held-out item, else an item id.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a whole number >= 1 (got {k!r}); ask for e.g. k=10")
    check_same_catalogue(run.vocab, data)
    u, before_hist, _ = user_history(data, user, holdout=True)
    if isinstance(edited_items, str):
        raise InputError("edited_items must be a list of item ids, oldest first, not one string")
    after_hist = np.array([data.vocab.item_index(str(i)) for i in edited_items], dtype=np.int64)
    if len(after_hist) == 0:
        raise InputError("the edited history is empty; keep at least one event to score")
    before_times = after_times = None
    if uses_time(run.model):  # the query time (held-out event's) stays; the edited events' times follow the edit
        before_times = history_query_times(data, u, len(before_hist), holdout=True)
        after_times = with_query(edited_times(before_hist, before_times[:-1], after_hist), int(before_times[-1]))
    before = score_history(run.model, before_hist, before_times)  # (V + 1,)
    after = score_history(run.model, after_hist, after_times)  # (V + 1,)
    t_idx = resolve_target(data, u, target, before, before_hist if exclude_seen else np.zeros(0, np.int64))
    no_seen = np.zeros(0, dtype=np.int64)
    return {
        "before": _top_frame(data, before, before_hist, k, exclude_seen),
        "after": _top_frame(data, after, after_hist, k, exclude_seen),
        "target_item": data.vocab.item_id(t_idx),
        "target_title": data.vocab.title(data.vocab.item_id(t_idx)),
        "target_rank_before": target_rank(before, t_idx, before_hist if exclude_seen else no_seen),
        "target_rank_after": target_rank(after, t_idx, after_hist if exclude_seen else no_seen),
        "target_score_before": float(before[t_idx]),
        "target_score_after": float(after[t_idx]),
    }

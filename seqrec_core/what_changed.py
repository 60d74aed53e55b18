"""What changed between two runs on the same, newer log: per user how the top-K moved, which new items entered,
and how each run does on the newest period (issue 17).

Why on one log: the question is what the update (or a retrain) changed, so both runs see the same histories,
the newest ones. The old run cannot see or rank items it never knew: :class:`OldCatalogueScorer` maps each
history onto its catalogue (unknown items left out) and gives unknown items no score, so they never enter its
top-K and, as a held-out target, rank last. The newest period is every user whose held-out (test) event comes
after the old run's last event (``data.last_time`` in its config): the behaviour the old run could not know.
With a planted truth (the demo's taste shift) :func:`get_shift_recovery` says how many affected users now get
the shift's items in their top-K, before and after.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqrec_core.data.sequences import SequenceData, Vocab
from seqrec_core.errors import InputError
from seqrec_core.evaluation import evaluate

METRICS_SHOWN = ("NDCG@10", "HR@10")


class OldCatalogueScorer:
    """A scorer of one catalogue used on another: histories mapped into it, scores mapped back (-inf = unknown)."""

    def __init__(self, scorer: object, old_vocab: Vocab, new_vocab: Vocab) -> None:
        self.scorer = scorer
        self.name = getattr(scorer, "name", "old run")
        old_index = {item: i + 1 for i, item in enumerate(old_vocab.item_ids)}
        # (N_new + 1,) the old index of every new index, 0 for padding and for items the old run never saw
        self.to_old = np.array([0] + [old_index.get(item, 0) for item in new_vocab.item_ids], dtype=np.int64)
        self.known = np.flatnonzero(self.to_old > 0)  # new indices the old run can score
        self.n_cols = new_vocab.n_items + 1

    @property
    def uses_time(self) -> bool:
        return bool(getattr(self.scorer, "uses_time", False))

    def score_histories(self, histories: list[np.ndarray], times: list[np.ndarray] | None = None) -> np.ndarray:
        """Scores (B, N_new + 1): the old run's scores where it knows the item, -inf elsewhere."""
        mapped, mapped_times = [], []
        for b, history in enumerate(histories):
            old = self.to_old[np.asarray(history, dtype=np.int64)]
            keep = old > 0
            mapped.append(old[keep])
            if times is not None:  # events' times then the query time, as the scorer protocol passes them
                mapped_times.append(np.concatenate([np.asarray(times[b][:-1])[keep], np.asarray(times[b][-1:])]))
        old_scores = self.scorer.score_histories(mapped, times=mapped_times) if self.uses_time else \
            self.scorer.score_histories(mapped)
        old_scores = np.asarray(old_scores.cpu() if hasattr(old_scores, "cpu") else old_scores, dtype=np.float32)
        out = np.full((len(histories), self.n_cols), -np.inf, dtype=np.float32)  # (B, N_new + 1)
        out[:, self.known] = old_scores[:, self.to_old[self.known]]
        return out


@dataclass
class WhatChanged:
    """The comparison, as tables the page and the figures read."""

    old_name: str
    new_name: str
    k: int
    since: int | None  # unix seconds of the old run's last event; None when it did not record it
    new_items: list[str]  # items of this log that the old run never saw
    per_user: pd.DataFrame  # user_id, before, after (lists of item ids), entered, left, kept, new_entered, n_*
    items: pd.DataFrame  # item_id, title, is_new, users_before, users_after, entered (users whose top-K gained it)
    metrics: pd.DataFrame  # run, period ("newest", "all"), users, NDCG@10, HR@10


def last_time_of(config: dict) -> int | None:
    """The last event time a run recorded (``data.last_time``), or None."""
    value = (config.get("data") or {}).get("last_time")
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _top_k_lists(scorer: object, data: SequenceData, k: int, exclude_seen: bool, users: Sequence[str] | None,
                 ) -> dict[str, list[str]]:
    from seqrec_core.recommend import get_all_recommendations

    recs = get_all_recommendations(scorer, data, k=k, exclude_seen=exclude_seen, users=users)
    return {user: list(group["item_id"]) for user, group in recs.groupby("user_id", sort=False)}


def get_newest_period_metrics(scorer: object, data: SequenceData, since: int | None, *, exclude_seen: bool,
                              name: str = "run") -> list[dict]:
    """NDCG@10 and HR@10 on the test event of the users whose test event is after ``since`` ("newest") and of all
    users ("all"). Without ``since`` only "all"."""
    result = evaluate(scorer, data, "test", exclude_seen=exclude_seen)
    rows = [{"run": name, "period": "all", "users": int(len(result.users)),
             **{m: float(result.mean(m)) for m in METRICS_SHOWN}}]
    if since is not None and data.has_time:
        target_times = data.split("test").target_times  # (U,) aligned with result.users (same split)
        newest = result.subset(target_times > since)
        rows.insert(0, {"run": name, "period": "newest", "users": int(len(newest.users)),
                        **{m: float(newest.mean(m)) for m in METRICS_SHOWN}})
    return rows


def get_what_changed(old_run: object, new_run: object, data: SequenceData, *, k: int = 10,
                     exclude_seen: bool | None = None, users: Sequence[str] | None = None,
                     since: int | None = None) -> WhatChanged:
    """Compare ``old_run`` and ``new_run`` (loaded runs) on ``data``, the log the new run was trained on.

    ``users``: the users to list (default all); ``since``: the start of the newest period (default the old run's
    recorded last event time); ``exclude_seen``: default the new run's setting."""
    if k < 1:
        raise InputError(f"k must be >= 1 (got {k})")
    if new_run.vocab.item_ids != data.vocab.item_ids:
        raise InputError(f"run '{new_run.path.name}' was not trained on this log (its catalogue differs); pick the "
                         "log it was trained on")
    if exclude_seen is None:
        exclude_seen = bool(new_run.config.get("exclude_seen"))
    since = last_time_of(old_run.config) if since is None else since
    old_scorer = OldCatalogueScorer(old_run.scorer(), old_run.vocab, data.vocab)
    new_scorer = new_run.scorer()
    before = _top_k_lists(old_scorer, data, k, exclude_seen, users)
    after = _top_k_lists(new_scorer, data, k, exclude_seen, users)
    known = set(old_run.vocab.item_ids)
    new_items = [item for item in data.vocab.item_ids if item not in known]
    new_set = set(new_items)
    rows = []
    for user in (users if users is not None else data.vocab.user_ids):
        b, a = before.get(user, []), after.get(user, [])
        entered = [i for i in a if i not in b]
        left = [i for i in b if i not in a]
        rows.append({"user_id": user, "before": b, "after": a, "entered": entered, "left": left,
                     "new_entered": [i for i in entered if i in new_set], "n_entered": len(entered),
                     "n_new_entered": sum(i in new_set for i in entered),
                     "moved_up": sum(1 for i in a if i in b and a.index(i) < b.index(i))})
    per_user = pd.DataFrame(rows, columns=["user_id", "before", "after", "entered", "left", "new_entered",
                                           "n_entered", "n_new_entered", "moved_up"])
    metrics = pd.DataFrame(get_newest_period_metrics(old_scorer, data, since, exclude_seen=exclude_seen,
                                                     name=old_run.path.name)
                           + get_newest_period_metrics(new_scorer, data, since, exclude_seen=exclude_seen,
                                                       name=new_run.path.name))
    return WhatChanged(old_name=old_run.path.name, new_name=new_run.path.name, k=k, since=since,
                       new_items=new_items, per_user=per_user, items=_item_table(per_user, data.vocab, new_set),
                       metrics=metrics)


def _item_table(per_user: pd.DataFrame, vocab: Vocab, new_set: set[str]) -> pd.DataFrame:
    """Per item: in how many users' top-K it was before and after, and how many top-Ks it entered."""
    def counts(column: str) -> pd.Series:
        lists = per_user[column]
        flat = [i for items in lists for i in items]
        return pd.Series(flat, dtype=object).value_counts()

    before, after, entered = counts("before"), counts("after"), counts("entered")
    ids = sorted(set(before.index) | set(after.index))
    table = pd.DataFrame({"item_id": ids, "title": [vocab.title(i) for i in ids],
                          "category": [vocab.category(i) for i in ids], "is_new": [i in new_set for i in ids],
                          "users_before": [int(before.get(i, 0)) for i in ids],
                          "users_after": [int(after.get(i, 0)) for i in ids],
                          "entered": [int(entered.get(i, 0)) for i in ids]})
    return table.sort_values(["entered", "users_after"], ascending=False, ignore_index=True)


def get_shift_recovery(changed: WhatChanged, shift_users: Sequence[str], shift_items: Sequence[str]) -> dict:
    """With a planted shift's truth: of the affected users listed, how many have a shift item in their top-K
    before and after, and into how many top-Ks a shift item entered."""
    items = set(shift_items)
    table = changed.per_user[changed.per_user["user_id"].isin(set(shift_users))]
    def has(column: str) -> int:  # noqa: E306 - a one-line helper
        return int(sum(bool(items.intersection(lst)) for lst in table[column]))

    return {"affected_users": int(len(table)), "with_shift_items_before": has("before"),
            "with_shift_items_after": has("after"), "shift_items_entered": has("entered"), "k": changed.k}


def get_new_item_adopters(data: SequenceData, since: int | None, new_items: Sequence[str]) -> list[str]:
    """Users with an event on a new item after ``since``: the people whose taste the log shows moving, read from
    the log itself (where no planted truth exists, the "affected users" :func:`get_shift_recovery` can take)."""
    wanted = {data.vocab.item_index(item) for item in new_items}
    if not wanted or since is None or not data.has_time:
        return []
    marks = np.zeros(data.vocab.n_items + 1, dtype=bool)
    marks[list(wanted)] = True
    return [data.vocab.user_ids[u] for u, (seq, times) in enumerate(zip(data.sequences, data.times, strict=True))
            if marks[seq[times > since]].any()]


def get_user_change(changed: WhatChanged, user_id: str, vocab: Vocab) -> pd.DataFrame:
    """One user's two lists side by side: rank, item before, item after, and what happened to the after item."""
    row = changed.per_user[changed.per_user["user_id"] == str(user_id)]
    if row.empty:
        raise InputError(f"user '{user_id}' is not in this comparison; pick one of its users")
    before, after = row.iloc[0]["before"], row.iloc[0]["after"]
    new_set = set(changed.new_items)
    out = []
    for rank in range(1, max(len(before), len(after)) + 1):
        b = before[rank - 1] if rank <= len(before) else None
        a = after[rank - 1] if rank <= len(after) else None
        if a is None:
            status = ""
        elif a not in before:
            status = "new item entered" if a in new_set else "entered"
        else:
            old_rank = before.index(a) + 1
            status = "same" if old_rank == rank else (f"up from {old_rank}" if old_rank > rank else
                                                      f"down from {old_rank}")
        out.append({"rank": rank, "before": b, "before_title": vocab.title(b) if b else None, "after": a,
                    "after_title": vocab.title(a) if a else None, "change": status})
    return pd.DataFrame(out)


__all__ = ["METRICS_SHOWN", "OldCatalogueScorer", "WhatChanged", "get_new_item_adopters", "get_newest_period_metrics",
           "get_shift_recovery", "get_user_change", "get_what_changed", "last_time_of"]

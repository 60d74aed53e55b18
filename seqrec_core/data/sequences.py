"""From the canonical event table to per-user item-index sequences, the vocabulary and the leave-one-out split.

Every model, baseline and metric works on :class:`SequenceData`; only this module knows how events become
sequences, so the split is defined once. Item index 0 is padding; real items are 1..n_items.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from seqrec_core.data.arrow_ingest import EventCodes, event_codes, factorize_sorted, hash_by_codes, sort_canonical
from seqrec_core.errors import InputError

Part = Literal["train", "val", "test"]
MIN_EVAL_EVENTS = 3  # a user needs >= 3 events to give one train event, one validation and one test target


@dataclass
class Vocab:
    """Maps between original ids (strings, as people know them) and the model's indices."""

    item_ids: list[str]  # item_ids[i - 1] is the original id of item index i; index 0 is padding
    user_ids: list[str]  # user_ids[u] is the original id of user row u
    item_titles: dict[str, str] = field(default_factory=dict)
    item_categories: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._item_index = {item: i + 1 for i, item in enumerate(self.item_ids)}
        self._user_index = {user: u for u, user in enumerate(self.user_ids)}

    @property
    def n_items(self) -> int:
        """Number of real items (indices 1..n_items); score vectors have n_items + 1 columns."""
        return len(self.item_ids)

    def item_index(self, item_id: str) -> int:
        try:
            return self._item_index[str(item_id)]
        except KeyError:
            raise InputError(f"item '{item_id}' is not in this dataset's catalogue; "
                             "pick an item id that occurs in the log") from None

    def user_index(self, user_id: str) -> int:
        try:
            return self._user_index[str(user_id)]
        except KeyError:
            raise InputError(f"user '{user_id}' is not in this dataset; "
                             "pick a user id that occurs in the log") from None

    def has_user(self, user_id: str) -> bool:
        return str(user_id) in self._user_index

    def item_id(self, index: int) -> str:
        return self.item_ids[int(index) - 1]

    def title(self, item_id: str) -> str | None:
        return self.item_titles.get(str(item_id))

    def category(self, item_id: str) -> str | None:
        return self.item_categories.get(str(item_id))

    def to_json(self) -> dict:
        return {"item_ids": self.item_ids, "user_ids": self.user_ids,
                "item_titles": self.item_titles, "item_categories": self.item_categories}

    @classmethod
    def from_json(cls, obj: dict) -> Vocab:
        return cls(item_ids=[str(x) for x in obj["item_ids"]], user_ids=[str(x) for x in obj["user_ids"]],
                   item_titles={str(k): str(v) for k, v in obj.get("item_titles", {}).items()},
                   item_categories={str(k): str(v) for k, v in obj.get("item_categories", {}).items()})


@dataclass
class Split:
    """One evaluation part: for each user row, the history the model sees and the item it must rank."""

    users: np.ndarray  # (U,) user rows into Vocab.user_ids
    histories: list[np.ndarray]  # U arrays of item indices, chronological
    targets: np.ndarray  # (U,) item index of the held-out event
    target_times: np.ndarray  # (U,) int64 time of the held-out event (unix seconds, or order when no time)


@dataclass
class SequenceData:
    """Per-user chronological item sequences, aligned with ``vocab.user_ids``."""

    vocab: Vocab
    sequences: list[np.ndarray]  # per user row: int64 item indices in time order
    times: list[np.ndarray]  # per user row: int64 unix seconds (or 0..n-1 order when has_time is False)
    has_time: bool
    fingerprint: str

    @property
    def n_users(self) -> int:
        return len(self.sequences)

    @property
    def n_events(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    def lengths(self) -> np.ndarray:
        """(U,) int64 events per user row, without slicing any sequence."""
        return np.fromiter((len(s) for s in self.sequences), dtype=np.int64, count=len(self.sequences))

    def train_sequence(self, u: int) -> np.ndarray:
        """Events a model may train on: all but the last two for evaluable users, everything otherwise."""
        seq = self.sequences[u]
        return seq[:-2] if len(seq) >= MIN_EVAL_EVENTS else seq

    def split(self, part: Part) -> Split:
        """Leave-one-out in time: test target = last event, validation target = second-last."""
        if part not in ("train", "val", "test"):
            raise ValueError(f"unknown part {part!r}")
        users = np.array([u for u, s in enumerate(self.sequences) if len(s) >= MIN_EVAL_EVENTS], dtype=np.int64)
        cut = {"test": 1, "val": 2, "train": 3}[part]
        histories = [self.sequences[u][:-cut] for u in users]
        targets = np.array([self.sequences[u][-cut] for u in users], dtype=np.int64)
        target_times = np.array([self.times[u][-cut] for u in users], dtype=np.int64)
        return Split(users=users, histories=histories, targets=targets, target_times=target_times)

    def history_for_prediction(self, u: int) -> np.ndarray:
        """The full history of a user: what a deployed model would see to recommend the next item."""
        return self.sequences[u]

    def check_trainable(self) -> None:
        """Refuse a log no model can learn from: one input -> target pair before the validation and test events
        needs a user with 4 events (users with 3 are evaluated but teach nothing)."""
        if not any(len(self.train_sequence(u)) >= 2 for u in range(self.n_users)):
            raise InputError(f"no user has 2 or more training events, so there is nothing to learn from; load a log "
                             f"with longer histories (training needs users with at least {MIN_EVAL_EVENTS + 1} "
                             f"events; this log's longest has {int(self.lengths().max(initial=0))})")


def fingerprint_events(events: pd.DataFrame) -> str:
    """A short content hash of the canonical event table: runs record it so results are tied to their data."""
    users, user_uniques = factorize_sorted(events["user_id"])
    items, item_uniques = factorize_sorted(events["item_id"])
    return _fingerprint(users, user_uniques, items, item_uniques, events["timestamp"])


def _fingerprint(users: np.ndarray, user_uniques: pd.Index, items: np.ndarray, item_uniques: pd.Index,
                 timestamps: pd.Series) -> str:
    """sha256 over pandas' per-value hashes of user, item and time; ids are hashed once per distinct value
    and spread by code (same uint64s as hashing the whole column, a fraction of the work at 10M rows)."""
    h = hashlib.sha256()
    h.update(hash_by_codes(users, user_uniques).tobytes())
    h.update(hash_by_codes(items, item_uniques).tobytes())
    h.update(pd.util.hash_pandas_object(timestamps.reset_index(drop=True), index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def _time_as_int(ts: pd.Series) -> tuple[np.ndarray, bool]:
    if pd.api.types.is_datetime64_any_dtype(ts):
        # Unit-agnostic: pandas may store datetimes as s/ms/us/ns; floor to whole seconds from the raw integers.
        per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}.get(ts.dt.unit)
        if per_second is not None and not ts.isna().any():
            return np.asarray(ts.array.asi8, dtype=np.int64) // per_second, True
        seconds = (ts - pd.Timestamp(0, tz=ts.dt.tz)) // pd.Timedelta(seconds=1)
        return seconds.to_numpy(dtype=np.int64), True
    return ts.to_numpy(dtype=np.int64), False


def _item_metadata(ev: pd.DataFrame, items: np.ndarray, item_ids: list[str], col: str) -> dict[str, str]:
    """The first non-missing value of ``col`` for each item, in table order (one pass over integer codes)."""
    values = ev[col]
    known = ~values.isna().to_numpy(dtype=bool)
    rows = np.flatnonzero(known)
    first_items, first_at = np.unique(items[rows], return_index=True)  # (K,) items, first row index into rows
    in_order = np.argsort(first_at)  # keep the table's order of first appearance (the dict's, and vocab.json's)
    first_items, first_at = first_items[in_order], first_at[in_order]
    picked = values.iloc[rows[first_at]].astype(str).tolist()
    return {item_ids[int(i)]: v for i, v in zip(first_items, picked, strict=True)}


def _compact(codes: np.ndarray, uniques: pd.Index) -> tuple[np.ndarray, pd.Index]:
    """Renumber codes so only values that occur keep a code (order unchanged)."""
    present = np.bincount(codes, minlength=len(uniques)) > 0
    if present.all():
        return codes, uniques
    return (np.cumsum(present) - 1)[codes], uniques[present]


def build_sequences(events: pd.DataFrame, *, codes: EventCodes | None = None) -> SequenceData:
    """Turn a canonical event table into sequences; item indices follow first appearance order of sorted ids.

    Works on integer codes (ids factorized once, numpy sort and split), so ten million events index in
    seconds; a table already in canonical order (what ``prepare_events`` returns) is not sorted again.
    ``codes``: the table's codes in its row order, as ``prepare_events_coded`` returns them (saves
    factorizing the ids a second time); ignored unless they match the table's length.
    """
    missing = {"user_id", "item_id", "timestamp"} - set(events.columns)
    if missing:
        raise InputError(f"event table lacks column(s) {sorted(missing)}; "
                         "load the log with seqrec_core.data.load_events")
    if len(events) == 0:
        raise InputError("the log has no events left; check the file and the filtering options")
    for col, what in (("user_id", "user"), ("item_id", "item")):
        if events[col].isna().any():
            raise InputError(f"the event table has events without a {what} id; clean it with prepare_events "
                             f"(or fill in the ids)")
    if codes is None or len(codes.users) != len(events) or codes.times is None:
        codes = None
    ev, codes = sort_canonical(events, codes)
    if codes is None:  # a time column numpy cannot order (e.g. floats): pandas sorted it; factorize the result
        codes = event_codes(ev)
    users = codes.users
    if isinstance(ev["item_id"].dtype, pd.StringDtype):  # the canonical case: codes are already by sorted id
        items, item_uniques = _compact(codes.items, codes.item_uniques)  # codes may predate filtering
    else:  # e.g. integer ids: the vocabulary sorts them as strings ("10" < "9"), like their display form
        items, item_uniques = factorize_sorted(ev["item_id"].astype(str))
    item_ids = [str(x) for x in item_uniques]
    item_codes = items + 1  # (N,) int64, 0 stays padding
    times, has_time = _time_as_int(ev["timestamp"])
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])  # first row of each user's block
    user_ids = [str(x) for x in codes.user_uniques[users[starts]]]
    sequences = np.split(item_codes, starts[1:])
    seq_times = np.split(times, starts[1:])
    titles: dict[str, str] = {}
    categories: dict[str, str] = {}
    for col, target in (("item_title", titles), ("item_category", categories)):
        if col in ev.columns:
            target.update(_item_metadata(ev, items, item_ids, col))
    vocab = Vocab(item_ids=item_ids, user_ids=user_ids, item_titles=titles, item_categories=categories)
    fingerprint = _fingerprint(users, codes.user_uniques, codes.items, codes.item_uniques, ev["timestamp"])
    return SequenceData(vocab=vocab, sequences=sequences, times=seq_times, has_time=has_time,
                        fingerprint=fingerprint)


def vocab_to_json_bytes(vocab: Vocab) -> bytes:
    return json.dumps(vocab.to_json(), ensure_ascii=False).encode("utf-8")

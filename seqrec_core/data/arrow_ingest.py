"""Integer codes for the canonical event table, so that logs of ten million events sort, deduplicate and
index in seconds with bounded memory.

Pandas' own ``sort_values(["user_id", "timestamp"])``, ``duplicated`` and ``groupby`` on string columns
factorize every string column again on each call and, for some operations, turn Arrow strings into ten
million Python objects (gigabytes). Here each id column is factorized once (Arrow's dictionary encoding,
uniques sorted so codes follow the same order pandas sorts in) and the rest is numpy on int arrays:
``lexsort`` for the stable canonical order, run boundaries for duplicates, ``bincount`` for counts. Every
function reproduces the pandas result it replaces exactly (same order, same kept rows), which the tests in
``tests/core/test_ingest_scale.py`` check against the plain pandas formulation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa


@dataclass(frozen=True)
class EventCodes:
    """Per-row integer keys of an event table; -1 marks a missing id (pandas' factorize convention)."""

    users: np.ndarray  # (N,) int64 code into user_uniques, sorted order
    user_uniques: pd.Index  # sorted unique user ids, in the column's own dtype
    items: np.ndarray  # (N,) int64 code into item_uniques, sorted order
    item_uniques: pd.Index
    times: np.ndarray | None  # (N,) int64, monotone in the timestamp; None if the column cannot be keyed

    def take(self, rows: np.ndarray) -> EventCodes:
        """The codes of a subset (boolean mask or positions) of the rows; uniques stay as they are."""
        times = None if self.times is None else self.times[rows]
        return EventCodes(self.users[rows], self.user_uniques, self.items[rows], self.item_uniques, times)

    @property
    def has_missing_ids(self) -> bool:
        return bool((self.users < 0).any() or (self.items < 0).any())

    def n_users(self) -> int:
        """Distinct non-missing users (what ``Series.nunique`` counts)."""
        return _count_distinct(self.users, len(self.user_uniques))

    def n_items(self) -> int:
        return _count_distinct(self.items, len(self.item_uniques))


def _count_distinct(codes: np.ndarray, n: int) -> int:
    if n == 0:
        return 0
    return int(np.count_nonzero(np.bincount(codes[codes >= 0], minlength=n)))


def time_key(ts: pd.Series) -> np.ndarray | None:
    """An int64 array ordered like the timestamps, or None where pandas' own sort must decide (NaT, floats,
    text): datetimes of any unit or zone give their epoch integers, integer orders themselves."""
    if pd.api.types.is_datetime64_any_dtype(ts.dtype):
        if ts.isna().any():
            return None
        return np.asarray(ts.array.asi8, dtype=np.int64)
    if pd.api.types.is_integer_dtype(ts.dtype) and not isinstance(ts.dtype, pd.api.extensions.ExtensionDtype):
        return ts.to_numpy(dtype=np.int64)
    return None


def factorize_sorted(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes whose order is the order ``sort_values`` puts the values in (Arrow strings: by code point)."""
    codes, uniques = pd.factorize(values, sort=True)
    return np.asarray(codes, dtype=np.int64), pd.Index(uniques)


def event_codes(events: pd.DataFrame) -> EventCodes:
    """Factorize ``user_id`` and ``item_id`` once (sorted) and key the timestamp."""
    users, user_uniques = factorize_sorted(events["user_id"])
    items, item_uniques = factorize_sorted(events["item_id"])
    return EventCodes(users, user_uniques, items, item_uniques, time_key(events["timestamp"]))


def canonical_order(codes: EventCodes) -> np.ndarray | None:
    """Positions that stably sort rows by (user, time), None when they already are in that order.

    Missing ids or an unkeyable time column raise ``ValueError``: the caller then uses pandas' sort,
    which places missing values last.
    """
    if codes.times is None or codes.has_missing_ids:
        raise ValueError("codes cannot order this table")
    u, t = codes.users, codes.times
    if len(u) < 2:
        return None
    du = np.diff(u)  # (N-1,)
    if not ((du < 0) | ((du == 0) & (t[1:] < t[:-1]))).any():
        return None
    return np.lexsort((t, u))  # stable: ties keep their current order


def filter_rows(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """``frame[keep]`` column by column: a DataFrame mask gathers Arrow strings by position (~3 s per 10M
    rows), a Series mask runs Arrow's filter kernel (~0.2 s). Same values, dtypes and index."""
    if keep.all():
        return frame
    if not frame.columns.is_unique:
        return frame[keep]
    index = frame.index[keep]  # once, not once per column
    return pd.DataFrame({c: pd.Series(frame[c].array[keep], index=index, name=c) for c in frame.columns},
                        index=index, columns=frame.columns)


def take_rows(frame: pd.DataFrame, rows: np.ndarray, codes: EventCodes | None = None) -> pd.DataFrame:
    """``frame.take(rows).reset_index(drop=True)``; with ``codes`` (already in the new order) the id columns
    are rebuilt from their few distinct values instead of gathering ten million strings at random."""
    if not frame.columns.is_unique:
        return frame.take(rows).reset_index(drop=True)
    rebuilt = {"user_id": (codes.users, codes.user_uniques), "item_id": (codes.items, codes.item_uniques)} \
        if codes is not None else {}
    out: dict[str, pd.Series] = {}
    for col in frame.columns:
        values = frame[col]
        code, uniques = rebuilt.get(col, (None, None))
        if code is not None and uniques.dtype == values.dtype:
            out[col] = pd.Series(uniques.array.take(code), name=col)
        else:
            out[col] = pd.Series(values.array.take(rows), name=col)
    return pd.DataFrame(out, columns=frame.columns)


def sort_canonical(events: pd.DataFrame, codes: EventCodes | None = None) -> tuple[pd.DataFrame, EventCodes | None]:
    """``events`` sorted by user then timestamp (stable), with a fresh RangeIndex, and the codes in that order
    (None when pandas had to sort: missing ids or a time column that is neither datetime nor integer).

    Identical to ``events.reset_index(drop=True).sort_values(["user_id", "timestamp"], kind="stable")
    .reset_index(drop=True)``; a table already in order is returned without copying its columns.
    """
    events = events.reset_index(drop=True)
    codes = codes if codes is not None else event_codes(events)
    try:
        order = canonical_order(codes)
    except ValueError:
        ordered = events.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)
        return ordered, None
    if order is None:
        return events, codes
    codes = codes.take(order)
    return take_rows(events, order, codes), codes


def sort_events(events: pd.DataFrame, order_from_file: bool = False) -> pd.DataFrame:
    """Drop-in for ``schema.sort_events`` (same result): canonical order, and with ``order_from_file`` the
    timestamp becomes 0..n-1 in file order within each user first."""
    events = events.reset_index(drop=True)
    codes = None
    if order_from_file:
        users, user_uniques = factorize_sorted(events["user_id"])
        if (users < 0).any():  # pandas' cumcount cannot number rows without a user either
            events["timestamp"] = events.groupby("user_id", sort=False).cumcount().astype(np.int64)
        else:
            items, item_uniques = factorize_sorted(events["item_id"])
            order = order_within_user(EventCodes(users, user_uniques, items, item_uniques, None))
            events["timestamp"] = order
            codes = EventCodes(users, user_uniques, items, item_uniques, order)
    return sort_canonical(events, codes)[0]


def order_within_user(codes: EventCodes) -> np.ndarray:
    """0..k-1 per user in row order: ``groupby("user_id", sort=False).cumcount()`` without the groupby.

    Rows with a missing user get -1 (pandas' cumcount leaves them out as NaN)."""
    u = codes.users
    n = len(u)
    order = np.argsort(u, kind="stable")  # (N,) rows grouped by user, row order kept inside a group
    su = u[order]
    starts = np.flatnonzero(np.r_[True, su[1:] != su[:-1]]) if n else np.zeros(0, dtype=np.int64)
    first = np.repeat(starts, np.diff(np.r_[starts, n]))  # (N,) start of each sorted row's group
    out = np.empty(n, dtype=np.int64)
    out[order] = np.arange(n, dtype=np.int64) - first
    out[u < 0] = -1
    return out


def duplicate_mask(codes: EventCodes, order: np.ndarray | None = None) -> np.ndarray:
    """``duplicated(["user_id", "item_id", "timestamp"], keep="first")`` from the codes.

    ``order`` is the canonical order of the rows (None = they are in it). Equal triples can only sit inside a
    run of equal (user, time) in that order, so only the rows of such runs (ties: usually few) are compared.
    """
    if codes.times is None:
        raise ValueError("duplicate_mask needs a keyed time column")
    n = len(codes.users)
    u, i, t = codes.users, codes.items, codes.times
    if order is not None:
        u, i, t = u[order], i[order], t[order]
    same = (u[1:] == u[:-1]) & (t[1:] == t[:-1])  # (N-1,) row k+1 continues row k's (user, time) run
    in_run = np.zeros(n, dtype=bool)
    in_run[1:] |= same
    in_run[:-1] |= same
    rows = np.flatnonzero(in_run)  # sorted positions that share (user, time) with a neighbour
    run_id = np.cumsum(np.r_[True, ~same])[rows]
    sub = np.lexsort((i[rows], run_id))  # stable: the first occurrence stays first within equal triples
    s_run, s_item = run_id[sub], i[rows][sub]
    dup_sorted = np.zeros(n, dtype=bool)
    dup_sorted[rows[sub]] = np.r_[False, (s_run[1:] == s_run[:-1]) & (s_item[1:] == s_item[:-1])]
    if order is None:
        return dup_sorted
    out = np.zeros(n, dtype=bool)
    out[order] = dup_sorted
    return out


def events_per_user(codes: EventCodes) -> np.ndarray:
    """(N,) the number of events of each row's user; 0 for a missing user (a NaN group counts nothing)."""
    u = codes.users
    counts = np.bincount(u[u >= 0], minlength=len(codes.user_uniques))
    return np.where(u >= 0, counts[np.maximum(u, 0)], 0)


def hash_by_codes(codes: np.ndarray, uniques: pd.Index) -> np.ndarray:
    """``pd.util.hash_pandas_object(column, index=False)`` from its codes: the hash is per value, so hashing the
    uniques once and spreading them by code gives the same uint64s (missing values: the max uint64)."""
    hashed = pd.util.hash_pandas_object(uniques, index=False).to_numpy()
    missing = codes < 0
    if not missing.any():
        return hashed[codes]
    out = hashed[np.where(missing, 0, codes)] if len(hashed) else np.zeros(len(codes), dtype=np.uint64)
    out[missing] = np.iinfo(np.uint64).max
    return out


def decode_dictionaries(table: pa.Table) -> pa.Table:
    """Dictionary-encoded columns (how pandas writes a categorical) as plain columns of their value type.

    Decoding in Arrow takes about a second for ten million rows; letting pandas build a categorical that the
    loader then turns into Python objects takes tens of seconds. pandas' stored metadata (index, names) is
    kept: ``to_pandas`` takes categoricals from the Arrow type, so decoded columns come back plain."""
    fields = [pa.field(f.name, f.type.value_type, f.nullable, f.metadata) if pa.types.is_dictionary(f.type) else f
              for f in table.schema]
    if not any(pa.types.is_dictionary(f.type) for f in table.schema):
        return table
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))

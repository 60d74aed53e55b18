"""From raw columns to the typed canonical event table: ids as strings, times as UTC datetimes (or an event
order), ratings as floats, and every bad value refused with its file, line and column.

Loaders only get a file into a raw table and ``columns`` says which raw column plays which role; everything
that gives the columns their types lives here, so every format is validated the same way. Re-exported by
``schema``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqrec_core.data.dates import add_time_detail, parse_text_times
from seqrec_core.data.roles import HOW_TO_SET, TIME_DTYPE, UNIX_SECONDS, ColumnMap, all_at_midnight, missing_mask, short
from seqrec_core.errors import InputError

# What loading did to the table, kept on ``events.attrs`` for the cleaning report (``prep``): notes for the person
# (sessions as sequences, how the time was read) and rows dropped before cleaning (events without a user id).
LOAD_NOTES = "load_notes"
LOAD_DROPS = "load_drops"
SEQUENCE_UNIT = "sequence_unit"  # "session" when the session column keys the sequences, else "user"
_INTEGRAL_TEXT = r"^[+-]?\d+\.0+$"


@dataclass(frozen=True)
class RowRef:
    """How to name a raw row in a message: ``lines[i]`` is the file's 1-based line (or row) of raw row i."""

    source: str
    lines: np.ndarray
    unit: str = "line"  # "line" for text files, "row" for Parquet

    def at(self, i: int, column: str) -> str:
        return f"{self.source} {self.unit} {int(self.lines[i])}, column '{short(column)}'"

    def take(self, keep: np.ndarray) -> RowRef:
        return RowRef(self.source, self.lines[keep], self.unit)


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _rows(mask: np.ndarray) -> str:
    n = int(mask.sum())
    return f"{n:,} row" + ("" if n == 1 else "s")


def to_id_strings(values: pd.Series, ref: RowRef, column: str, what: str) -> pd.Series:
    """Ids as strings, the same whatever the file stored: 42, 42.0 and "42" all become "42"."""
    bad = missing_mask(values)
    if bad.any():
        i = _first_bad(bad)
        raise InputError(f"{ref.at(i, column)}: empty {what} id ({_rows(bad)} in all); "
                         f"fill in the ids or remove those rows")
    if pd.api.types.is_float_dtype(values.dtype):
        arr = values.to_numpy(dtype=float)
        if not np.all(np.isfinite(arr)):
            i = _first_bad(~np.isfinite(arr))
            raise InputError(f"{ref.at(i, column)}: '{arr[i]}' is not a {what} id; fix the value or remove the row")
        if np.all(arr == np.round(arr)) and np.all(np.abs(arr) < 2**53):
            return pd.Series(arr.astype(np.int64).astype(str), index=values.index, dtype="str")
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(values.to_numpy().astype(str), index=values.index, dtype="str")
    if values.dtype == object:  # JSON: ints, floats and strings mixed
        values = values.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    return _integral_as_int(values.astype("str").str.strip())


def _integral_as_int(text: pd.Series) -> pd.Series:
    """"7.0" is the id 7 in a column of numbers (as it is when JSON stores 7.0): CSV and JSONL give one id."""
    dotted = text.str.contains(".", regex=False)
    if not dotted.any():
        return text
    integral = text.str.fullmatch(_INTEGRAL_TEXT)
    if not integral.any() or pd.to_numeric(text, errors="coerce").isna().any():
        return text  # text ids such as "v1.0": kept as they are
    return text.where(~integral, text.str.replace(r"\.0+$", "", regex=True))


def parse_timestamps(values: pd.Series, ref: RowRef, column: str, notes: list[str] | None = None) -> pd.Series:
    """Unix s/ms/us/ns (by magnitude) or date text (``dates``) -> UTC datetimes; small integers -> an event order.
    What a person should know about how the column was read is appended to ``notes``.

    Integers below 1e8 (before 1973 as seconds) are taken as step numbers, not dates: a log that numbers its
    events gets an int64 order (no time-of-day views) rather than fake 1970 dates.
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        bad = values.isna().to_numpy(dtype=bool)
        if bad.any():
            raise InputError(f"{ref.at(_first_bad(bad), column)}: empty timestamp; fill it in or remove the row")
        ts = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
        return _as_ns(ts, ref, column)
    bad = missing_mask(values)
    if bad.any():
        raise InputError(f"{ref.at(_first_bad(bad), column)}: empty timestamp ({_rows(bad)} in all); "
                         f"fill them in or remove those rows")
    if pd.api.types.is_bool_dtype(values.dtype):
        raise InputError(f"{ref.at(0, column)}: true/false values are not timestamps; set {HOW_TO_SET['time']}")
    num = values if pd.api.types.is_numeric_dtype(values.dtype) else pd.to_numeric(values, errors="coerce")
    if pd.api.types.is_numeric_dtype(num.dtype) and num.notna().all():
        return _from_numbers(num.to_numpy(dtype=float), values.index, ref, column)
    ts = parse_text_times(values.astype(str).str.strip(), ref, column, notes if notes is not None else [])
    bad = ts.isna().to_numpy(dtype=bool)
    if bad.any():
        i = _first_bad(bad)
        raise InputError(f"{ref.at(i, column)}: cannot read '{str(values.iloc[i])[:40]}' as a time "
                         f"({_rows(bad)} like this); use unix seconds/milliseconds or ISO-8601 like "
                         f"2024-01-31T14:05:00Z, or set {HOW_TO_SET['time']}")
    return _as_ns(ts, ref, column)


def _from_numbers(arr: np.ndarray, index: pd.Index, ref: RowRef, column: str) -> pd.Series:
    if not np.all(np.isfinite(arr)):
        i = _first_bad(~np.isfinite(arr))
        raise InputError(f"{ref.at(i, column)}: '{arr[i]}' is not a time; fix the value or remove the row")
    med = float(np.median(np.abs(arr))) if len(arr) else 0.0
    if np.abs(arr).max(initial=0.0) < UNIX_SECONDS[0]:
        order = arr.astype(np.int64) if np.all(arr == np.round(arr)) else pd.Series(arr).rank(method="dense")
        return pd.Series(np.asarray(order, dtype=np.int64), index=index)
    unit = "s" if med < UNIX_SECONDS[1] else "ms" if med < 1e14 else "us" if med < 1e17 else "ns"
    _refuse_mixed_units(arr, unit, ref, column)
    try:
        ts = pd.to_datetime(pd.Series(arr, index=index), unit=unit, utc=True)
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        ts = None
    if ts is None or ts.isna().any():
        raise InputError(f"{ref.source} column '{short(column)}': numbers like {arr[0]:.0f} are outside the range "
                         f"of unix times in {unit}; fix the values or set {HOW_TO_SET['time']}")
    return _as_ns(ts, ref, column)


_UNIT_BOUNDS = {"s": UNIX_SECONDS, "ms": (UNIX_SECONDS[1], 1e14), "us": (1e14, 1e17), "ns": (1e17, np.inf)}
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def _unit_of(value: float) -> str:
    return next((u for u, (lo, hi) in _UNIT_BOUNDS.items() if lo <= abs(value) < hi), "s")


def _refuse_mixed_units(arr: np.ndarray, unit: str, ref: RowRef, column: str) -> None:
    """Unix times of one column in one unit: a row in milliseconds among seconds would land in the year 55000
    (or, the other way round, in January 1970)."""
    lo, hi = _UNIT_BOUNDS[unit]
    dated = np.abs(arr) >= UNIX_SECONDS[0]  # smaller values are not unix times at all (placeholders such as 0)
    odd = dated & ((np.abs(arr) < lo) | (np.abs(arr) >= hi))
    if odd.any():
        i = _first_bad(odd)
        raise InputError(f"{ref.at(i, column)}: {arr[i]:.0f} looks like unix {_UNIT_NAMES[_unit_of(arr[i])]} "
                         f"while most values are {_UNIT_NAMES[unit]} ({int(odd.sum()):,} rows like this); write the "
                         f"whole column in one unit")


def _as_ns(ts: pd.Series, ref: RowRef, column: str) -> pd.Series:
    try:
        return ts.astype(TIME_DTYPE)
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise InputError(f"{ref.source} column '{short(column)}': a time outside 1677-2262 was found; "
                         "fix the values") from None


def to_weights(values: pd.Series, ref: RowRef, column: str) -> pd.Series:
    num = values if pd.api.types.is_numeric_dtype(values.dtype) else pd.to_numeric(values, errors="coerce")
    bad = num.isna().to_numpy(dtype=bool) & ~missing_mask(values)
    if bad.any():
        i = _first_bad(bad)
        raise InputError(f"{ref.at(i, column)}: '{str(values.iloc[i])[:40]}' is not a number; ratings must be "
                         f"numeric (or set {HOW_TO_SET['rating']} to another column)")
    return num.astype(float)


def to_text(values: pd.Series) -> pd.Series:
    out = values.astype("str").str.strip()
    return out.mask(missing_mask(values))


def first_label(values: pd.Series) -> pd.Series:
    """A pipe-separated list (MovieLens genres) -> its first entry; '(no genres listed)' -> missing."""
    text = values.astype("str")
    out = text.str.split("|", n=1, expand=True)[0].astype("str").str.strip() if text.notna().any() else text
    return out.mask(out.isin(["", "(no genres listed)"]) | values.isna())


def to_canonical(raw: pd.DataFrame, columns: ColumnMap, ref: RowRef) -> pd.DataFrame:
    """Typed canonical events from raw columns, sorted by user then time (stable: ties keep file order).

    What the cleaning report should tell a person (sessions as sequences, how dates were read, events dropped for
    lack of a user id) travels on ``attrs[LOAD_NOTES]`` and ``attrs[LOAD_DROPS]``."""
    notes: list[str] = []
    drops: list[dict] = []
    raw, ref = _sequence_keys(raw, columns, ref, notes, drops)
    out = pd.DataFrame(index=raw.index)
    out["user_id"] = to_id_strings(raw[columns.user], ref, columns.user, "user")
    out["item_id"] = to_id_strings(raw[columns.item], ref, columns.item, "item")
    if columns.time:
        out["timestamp"] = parse_timestamps(raw[columns.time], ref, columns.time, notes)
        if columns.time_detail:
            out["timestamp"] = add_time_detail(out["timestamp"], raw[columns.time_detail], ref, columns.time_detail,
                                               columns.time, notes).astype(TIME_DTYPE)
        elif len(out) > 1 and all_at_midnight(out["timestamp"]):
            notes.append(f"the time column '{short(columns.time)}' holds dates without a time of day: events of one "
                         f"day keep their file order, and hour-of-day views put everything at midnight (a finer "
                         f"column can be added with {HOW_TO_SET['time_detail']})")
    else:
        out["timestamp"] = np.zeros(len(raw), dtype=np.int64)  # replaced by the order within each user below
    if columns.event_type:
        out["event_type"] = to_text(raw[columns.event_type])
    if columns.rating:
        out["weight"] = to_weights(raw[columns.rating], ref, columns.rating)
    if columns.title:
        out["item_title"] = to_text(raw[columns.title])
    if columns.category:
        out["item_category"] = first_label(to_text(raw[columns.category]))
    events = sort_events(out, order_from_file=not columns.time)
    events.attrs[LOAD_NOTES] = notes
    events.attrs[LOAD_DROPS] = drops
    events.attrs[SEQUENCE_UNIT] = "session" if columns.session and columns.session == columns.user else "user"
    return events


def _sequence_keys(raw: pd.DataFrame, columns: ColumnMap, ref: RowRef, notes: list[str],
                   drops: list[dict]) -> tuple[pd.DataFrame, RowRef]:
    """Every row gets a sequence key: a missing user id becomes its session ("session 123") when the log has a
    session column, and the row is dropped (and counted) when it has none. Missing ids never become a user
    called "NA"."""
    user, session = columns.user, columns.session
    assert user is not None
    if session and session == user:
        notes.append(f"each sequence is one session (column '{short(session)}'), not one person; if the log has a "
                     f"user column, set {HOW_TO_SET['user']} to it to follow people across sessions")
    missing = missing_mask(raw[user])
    if not missing.any():
        return raw, ref
    share = f"{int(missing.sum()):,} events ({missing.mean():.0%})"
    if session and session != user and not missing_mask(raw[session])[missing].any():
        raw = raw.copy()
        raw[user] = raw[user].astype(object).where(~missing, "session " + raw[session].astype(str).str.strip())
        notes.append(f"{share} have no user id ('{short(user)}'); each of their sessions ('{short(session)}') is "
                     f"a sequence of its own")
        return raw, ref
    if missing.all():
        raise InputError(f"{ref.source} column '{short(user)}': no row has a user id; set {HOW_TO_SET['user']} "
                         f"to the column that says who acted (or a session column)")
    keep = ~missing
    items = raw[columns.item].astype(str)
    only_unowned = ~items[missing].drop_duplicates().isin(set(items[keep]))
    drops.append({"step": "no user id", "rows_dropped": int(missing.sum()), "users_dropped": 0,
                  "items_dropped": int(only_unowned.sum()),
                  "reason": f"events whose user id ('{short(user)}') is empty or NA belong to no sequence"})
    notes.append(f"{share} have no user id ('{short(user)}') and were dropped; a session column "
                 f"({HOW_TO_SET['session']}) would keep them as sequences of their own")
    return raw[keep].reset_index(drop=True), ref.take(keep)


def sort_events(events: pd.DataFrame, order_from_file: bool = False) -> pd.DataFrame:
    """Canonical order; with ``order_from_file`` the timestamp becomes 0..n-1 in file order within each user.

    Sorting works on integer codes of the ids (arrow_ingest): on 10M events seconds faster than sorting the
    string columns, same order (user id, then time, ties in file order)."""
    from seqrec_core.data.arrow_ingest import sort_events as sort_coded

    return sort_coded(events, order_from_file)

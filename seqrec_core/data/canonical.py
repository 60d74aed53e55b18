"""From raw columns to the typed canonical event table: ids as strings, times as UTC datetimes (or an event
order), ratings as floats, and every bad value refused with its file, line and column.

Loaders only get a file into a raw table and ``columns`` says which raw column plays which role; everything
that gives the columns their types lives here, so every format is validated the same way. Re-exported by
``schema``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqrec_core.data.roles import HOW_TO_SET, TIME_DTYPE, UNIX_SECONDS, ColumnMap, short
from seqrec_core.errors import InputError


@dataclass(frozen=True)
class RowRef:
    """How to name a raw row in a message: ``lines[i]`` is the file's 1-based line (or row) of raw row i."""

    source: str
    lines: np.ndarray
    unit: str = "line"  # "line" for text files, "row" for Parquet

    def at(self, i: int, column: str) -> str:
        return f"{self.source} {self.unit} {int(self.lines[i])}, column '{short(column)}'"


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _rows(mask: np.ndarray) -> str:
    n = int(mask.sum())
    return f"{n:,} row" + ("" if n == 1 else "s")


def _blank(values: pd.Series) -> np.ndarray:
    missing = values.isna().to_numpy(dtype=bool)
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        text = values.astype(str).str.strip().str.lower()
        missing = missing | text.isin(["", "nan", "none", "null"]).to_numpy(dtype=bool)
    return missing


def to_id_strings(values: pd.Series, ref: RowRef, column: str, what: str) -> pd.Series:
    """Ids as strings, the same whatever the file stored: 42, 42.0 and "42" all become "42"."""
    bad = _blank(values)
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
    return values.astype("str").str.strip()


def parse_timestamps(values: pd.Series, ref: RowRef, column: str) -> pd.Series:
    """Unix s/ms/us/ns (by magnitude) or ISO-8601 text -> UTC datetimes; small integers -> an event order.

    Integers below 1e8 (before 1973 as seconds) are taken as step numbers, not dates: a log that numbers its
    events gets an int64 order (no time-of-day views) rather than fake 1970 dates.
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        bad = values.isna().to_numpy(dtype=bool)
        if bad.any():
            raise InputError(f"{ref.at(_first_bad(bad), column)}: empty timestamp; fill it in or remove the row")
        ts = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
        return _as_ns(ts, ref, column)
    bad = _blank(values)
    if bad.any():
        raise InputError(f"{ref.at(_first_bad(bad), column)}: empty timestamp ({_rows(bad)} in all); "
                         f"fill them in or remove those rows")
    if pd.api.types.is_bool_dtype(values.dtype):
        raise InputError(f"{ref.at(0, column)}: true/false values are not timestamps; set {HOW_TO_SET['time']}")
    num = values if pd.api.types.is_numeric_dtype(values.dtype) else pd.to_numeric(values, errors="coerce")
    if pd.api.types.is_numeric_dtype(num.dtype) and num.notna().all():
        return _from_numbers(num.to_numpy(dtype=float), values.index, ref, column)
    text = values.astype(str).str.strip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ts = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        if ts.isna().any():  # other common spellings ("2020/01/05 10:00", "Jan 5 2020"), slower
            rest = text[ts.isna()]
            # Row-by-row parsing costs ~50 us a row: when a probe of the rest parses not at all, the column is not
            # a time and a million junk rows are refused at once instead of after a minute.
            probe = pd.to_datetime(rest.head(1000), utc=True, format="mixed", errors="coerce")
            if probe.notna().any():
                ts = ts.fillna(pd.to_datetime(rest, utc=True, format="mixed", errors="coerce"))
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
    try:
        ts = pd.to_datetime(pd.Series(arr, index=index), unit=unit, utc=True)
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        ts = None
    if ts is None or ts.isna().any():
        raise InputError(f"{ref.source} column '{short(column)}': numbers like {arr[0]:.0f} are outside the range "
                         f"of unix times in {unit}; fix the values or set {HOW_TO_SET['time']}")
    return _as_ns(ts, ref, column)


def _as_ns(ts: pd.Series, ref: RowRef, column: str) -> pd.Series:
    try:
        return ts.astype(TIME_DTYPE)
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise InputError(f"{ref.source} column '{short(column)}': a time outside 1677-2262 was found; "
                         "fix the values") from None


def to_weights(values: pd.Series, ref: RowRef, column: str) -> pd.Series:
    num = values if pd.api.types.is_numeric_dtype(values.dtype) else pd.to_numeric(values, errors="coerce")
    bad = num.isna().to_numpy(dtype=bool) & ~_blank(values)
    if bad.any():
        i = _first_bad(bad)
        raise InputError(f"{ref.at(i, column)}: '{str(values.iloc[i])[:40]}' is not a number; ratings must be "
                         f"numeric (or set {HOW_TO_SET['rating']} to another column)")
    return num.astype(float)


def to_text(values: pd.Series) -> pd.Series:
    out = values.astype("str").str.strip()
    return out.mask(_blank(values))


def first_label(values: pd.Series) -> pd.Series:
    """A pipe-separated list (MovieLens genres) -> its first entry; '(no genres listed)' -> missing."""
    text = values.astype("str")
    out = text.str.split("|", n=1, expand=True)[0].astype("str").str.strip() if text.notna().any() else text
    return out.mask(out.isin(["", "(no genres listed)"]) | values.isna())


def to_canonical(raw: pd.DataFrame, columns: ColumnMap, ref: RowRef) -> pd.DataFrame:
    """Typed canonical events from raw columns, sorted by user then time (stable: ties keep file order)."""
    out = pd.DataFrame(index=raw.index)
    out["user_id"] = to_id_strings(raw[columns.user], ref, columns.user, "user")
    out["item_id"] = to_id_strings(raw[columns.item], ref, columns.item, "item")
    if columns.time:
        out["timestamp"] = parse_timestamps(raw[columns.time], ref, columns.time)
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
    return sort_events(out, order_from_file=not columns.time)


def sort_events(events: pd.DataFrame, order_from_file: bool = False) -> pd.DataFrame:
    """Canonical order; with ``order_from_file`` the timestamp becomes 0..n-1 in file order within each user.

    Sorting works on integer codes of the ids (arrow_ingest): on 10M events seconds faster than sorting the
    string columns, same order (user id, then time, ties in file order)."""
    from seqrec_core.data.arrow_ingest import sort_events as sort_coded

    return sort_coded(events, order_from_file)

"""Which raw column is the user, the item, the time, ...; and turning raw columns into the canonical event table.

Loaders only get a file into a raw table; everything that gives columns their meaning and their types lives
here, so every format is validated the same way and every error names the file, the line and the column.
Detection goes by column name first (``userId``, ``movieId``, ``timestamp`` ...) and then by content (a column
of ISO dates or unix-range integers is the time; the first two remaining id-like columns are user and item,
the usual order in logs without a header).
"""
from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from seqrec_core.errors import InputError

log = logging.getLogger(__name__)

ROLES = ("user", "item", "time", "rating", "title", "category", "event_type")
REQUIRED = ("user", "item")
TIME_DTYPE = "datetime64[ns, UTC]"

# Where to set each role by hand: the CLI flag and the Data page's selector.
_HOW_TO_SET = {
    "user": "--user-col (Data page: 'User column')",
    "item": "--item-col (Data page: 'Item column')",
    "time": "--time-col (Data page: 'Time column')",
    "rating": "--rating-col (Data page: 'Rating column')",
    "title": "the title column",
    "category": "the category column",
    "event_type": "the event-type column",
}

# Names compared after lower-casing and dropping everything but letters and digits; earlier = preferred.
_ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("user", "userid", "users", "uid", "visitorid", "visitor", "customerid", "customer", "clientid",
             "client", "memberid", "member", "reviewerid", "accountid", "account", "personid", "buyerid",
             "sessionid", "session"),
    "item": ("item", "itemid", "items", "iid", "movieid", "movie", "productid", "product", "asin", "sku",
             "articleid", "article", "trackid", "track", "songid", "song", "contentid", "videoid", "bookid",
             "isbn", "poiid", "venueid", "objectid", "offerid"),
    "time": ("timestamp", "time", "ts", "datetime", "date", "eventtime", "eventtimestamp", "eventdate", "createdat",
             "created", "unixtime", "unixtimestamp", "epoch", "when", "dt", "clicktime", "unixreviewtime",
             "reviewtime", "timestampms", "timems"),
    "rating": ("rating", "ratings", "score", "weight", "stars", "rate", "overall", "preference", "value"),
    "title": ("title", "itemtitle", "name", "itemname", "productname", "producttitle", "movietitle", "moviename"),
    "category": ("category", "itemcategory", "categories", "categoryid", "genre", "genres", "department", "cat"),
    "event_type": ("eventtype", "event", "action", "type", "behavior", "behaviour", "interaction",
                   "interactiontype", "eventname"),
}
# Stems for a second, looser pass (``customer_number``, ``product_sku``, ``order_date``).
_STEMS = {"user": ("user", "visitor", "customer", "client", "member", "reviewer"),
          "item": ("item", "product", "movie", "article", "track", "song", "sku"),
          "time": ("time", "date")}
ALL_ALIASES = frozenset(a for names in _ALIASES.values() for a in names)
_UNIX_S = (1e8, 1e11)  # 1973 .. 5138 in seconds; beyond: milliseconds, microseconds, nanoseconds


@dataclass(frozen=True)
class ColumnMap:
    """Raw column names for each role. ``None`` = detect; ``""`` = the file has no such column (for time: keep
    file order)."""

    user: str | None = None
    item: str | None = None
    time: str | None = None
    rating: str | None = None
    title: str | None = None
    category: str | None = None
    event_type: str | None = None


def short(name: object, n: int = 40) -> str:
    """A column name or value as quoted in a message: a hostile file's 100 KB header must not make it a page."""
    text = str(name)
    return text if len(text) <= n else text[: n - 1] + "…"


def norm_name(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def find_by_name(columns: list[str], role: str) -> str | None:
    """The first column whose name is a known alias of ``role`` (``movieId`` for item, ``genres`` for category)."""
    normed = {c: norm_name(c) for c in columns}
    return next((c for alias in _ALIASES[role] for c in columns if normed[c] == alias), None)


def _columns_found(raw: pd.DataFrame) -> str:
    names = [short(c) for c in raw.columns]
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    return shown or "none"


def _resolve_override(raw: pd.DataFrame, role: str, value: str, source: str) -> str:
    cols = [str(c) for c in raw.columns]
    if value in cols:
        return value
    lowered = {c.lower().strip(): c for c in cols}
    if value.lower().strip() in lowered:
        return lowered[value.lower().strip()]
    if re.fullmatch(r"[0-9]{1,9}", value) and 1 <= int(value) <= len(cols):  # 1-based position, handy for files without a header
        return cols[int(value) - 1]
    raise InputError(f"column '{value[:60]}' given for {role} is not in {source} (columns found: {_columns_found(raw)}); "
                     f"set {_HOW_TO_SET[role]} to one of these")


def _sample(values: pd.Series, n: int = 200) -> pd.Series:
    s = values.dropna()
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        s = s.astype(str).str.strip()
        s = s[s != ""]
    return s.head(n)


def _looks_numeric(sample: pd.Series) -> pd.Series | None:
    num = pd.to_numeric(sample, errors="coerce") if not pd.api.types.is_numeric_dtype(sample.dtype) else sample
    if len(num) == 0 or pd.isna(num).any() or pd.api.types.is_bool_dtype(num.dtype):
        return None
    return num.astype(float)


def _looks_like_time(values: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return True
    sample = _sample(values)
    if len(sample) == 0:
        return False
    num = _looks_numeric(sample)
    if num is not None:
        med = float(np.median(np.abs(num)))
        return bool(_UNIX_S[0] <= med < 1e17 and np.all(num == np.round(num)) and num.nunique() > 1)
    text = sample.astype(str)
    if not text.str.contains(r"\d{4}|\d{1,2}[:/.-]\d{1,2}", regex=True).all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    return bool(parsed.notna().mean() >= 0.95)


def _looks_like_id(values: pd.Series) -> bool:
    sample = _sample(values)
    if len(sample) == 0:
        return False
    num = _looks_numeric(sample)
    if num is not None:
        return bool(np.all(num == np.round(num)))
    return bool(sample.astype(str).str.len().mean() <= 40)


def _looks_like_rating(values: pd.Series) -> bool:
    num = _looks_numeric(_sample(values))
    return num is not None and bool(num.min() >= -10 and num.max() <= 10 and num.nunique() <= 21)


def detect_columns(raw: pd.DataFrame, overrides: ColumnMap | None = None, source: str = "the file") -> ColumnMap:
    """Give each role a raw column: overrides first, then names, then content; user and item are required.

    A log without any time column is accepted (``time=None`` in the result): its events keep file order.
    """
    overrides = overrides or ColumnMap()
    found: dict[str, str | None] = {}
    for role in ROLES:
        value = getattr(overrides, role)
        if value is not None and value != "":
            found[role] = _resolve_override(raw, role, str(value), source)
        elif value == "":
            found[role] = None  # explicitly "no such column"
    used = {c for c in found.values() if c}
    dupes = [c for c in used if list(found.values()).count(c) > 1]
    if dupes:
        roles = [r for r, c in found.items() if c == dupes[0]]
        raise InputError(f"column '{short(dupes[0])}' of {source} is given for both {roles[0]} and {roles[1]}; "
                         f"pick a different column for one of them")
    free = [str(c) for c in raw.columns if str(c) not in used]
    normed = {c: norm_name(c) for c in free}
    for role in ROLES:  # exact names
        if role in found:
            continue
        for alias in _ALIASES[role]:
            hit = next((c for c in free if normed[c] == alias), None)
            if hit is not None:
                found[role] = hit
                free.remove(hit)
                break
    for role, stems in _STEMS.items():  # looser names
        if role not in found:
            hit = next((c for c in free if any(s in normed[c] for s in stems)), None)
            if hit is not None and (role != "time" or _looks_like_time(raw[hit])):
                found[role] = hit
                free.remove(hit)
    if "time" not in found:  # content: ISO strings or unix-range integers; the rightmost wins (user, item, ..., ts)
        hits = [c for c in free if _looks_like_time(raw[c])]
        if hits:
            found["time"] = hits[-1]
            free.remove(hits[-1])
            log.info("%s: using column '%s' as the time (detected from its values)", source, hits[-1])
    for role in ("user", "item"):  # content: the first id-like columns, in file order
        if role not in found:
            hit = next((c for c in free if _looks_like_id(raw[c])), None)
            if hit is not None:
                found[role] = hit
                free.remove(hit)
                log.info("%s: using column '%s' as the %s (detected from its position and values)", source, hit, role)
    if "rating" not in found:
        hit = next((c for c in free if _looks_like_rating(raw[c])), None)
        if hit is not None and not _named_for_something_else(normed[hit]):
            found["rating"] = hit
            free.remove(hit)
    for role in REQUIRED:
        if found.get(role) is None:
            raise InputError(f"could not find the {role} column in {source} (columns found: {_columns_found(raw)}); "
                             f"name it with {_HOW_TO_SET[role]}")
    return ColumnMap(**{f.name: found.get(f.name) for f in fields(ColumnMap)})


def _named_for_something_else(normed: str) -> bool:
    """A small-number column called ``price_id`` or ``quantity`` is not a rating, whatever its values."""
    return any(s in normed for s in ("id", "price", "count", "qty", "quantity", "age", "year"))


# ----------------------------------------------------------------------------------------------------------------
# From raw columns to typed canonical columns


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
        raise InputError(f"{ref.at(0, column)}: true/false values are not timestamps; set {_HOW_TO_SET['time']}")
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
                         f"2024-01-31T14:05:00Z, or set {_HOW_TO_SET['time']}")
    return _as_ns(ts, ref, column)


def _from_numbers(arr: np.ndarray, index: pd.Index, ref: RowRef, column: str) -> pd.Series:
    if not np.all(np.isfinite(arr)):
        i = _first_bad(~np.isfinite(arr))
        raise InputError(f"{ref.at(i, column)}: '{arr[i]}' is not a time; fix the value or remove the row")
    med = float(np.median(np.abs(arr))) if len(arr) else 0.0
    if np.abs(arr).max(initial=0.0) < _UNIX_S[0]:
        order = arr.astype(np.int64) if np.all(arr == np.round(arr)) else pd.Series(arr).rank(method="dense")
        return pd.Series(np.asarray(order, dtype=np.int64), index=index)
    unit = "s" if med < _UNIX_S[1] else "ms" if med < 1e14 else "us" if med < 1e17 else "ns"
    try:
        ts = pd.to_datetime(pd.Series(arr, index=index), unit=unit, utc=True)
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        ts = None
    if ts is None or ts.isna().any():
        raise InputError(f"{ref.source} column '{short(column)}': numbers like {arr[0]:.0f} are outside the range of unix "
                         f"times in {unit}; fix the values or set {_HOW_TO_SET['time']}")
    return _as_ns(ts, ref, column)


def _as_ns(ts: pd.Series, ref: RowRef, column: str) -> pd.Series:
    try:
        return ts.astype(TIME_DTYPE)
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise InputError(f"{ref.source} column '{short(column)}': a time outside 1677-2262 was found; fix the values") from None


def to_weights(values: pd.Series, ref: RowRef, column: str) -> pd.Series:
    num = values if pd.api.types.is_numeric_dtype(values.dtype) else pd.to_numeric(values, errors="coerce")
    bad = num.isna().to_numpy(dtype=bool) & ~_blank(values)
    if bad.any():
        i = _first_bad(bad)
        raise InputError(f"{ref.at(i, column)}: '{str(values.iloc[i])[:40]}' is not a number; ratings must be "
                         f"numeric (or set {_HOW_TO_SET['rating']} to another column)")
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


def with_columns(columns: ColumnMap | None, **fixed: str | None) -> ColumnMap:
    """Fixed column names for formats that have them, without overriding what a person chose."""
    base = columns or ColumnMap()
    return replace(base, **{k: v for k, v in fixed.items() if getattr(base, k) is None})

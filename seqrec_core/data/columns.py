"""Which raw column is the user, the item, the time, ...: overrides first, then names, then content.

Detection goes by column name first (``userId``, ``movieId``, ``timestamp`` ...) and then by content (a column
of ISO dates or unix-range integers is the time; the first two remaining id-like columns are user and item,
the usual order in logs without a header). Typing the columns is ``canonical``'s job; both are re-exported by
``schema``.
"""
from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from seqrec_core.data.roles import (
    DATE_ONLY,
    HOW_TO_SET,
    REQUIRED,
    ROLES,
    TIME_OF_DAY,
    UNIX_SECONDS,
    ColumnMap,
    all_at_midnight,
    missing_mask,
    norm_name,
    short,
)
from seqrec_core.errors import InputError

log = logging.getLogger(__name__)

# Names compared after lower-casing and dropping everything but letters and digits; earlier = preferred.
_ALIASES: dict[str, tuple[str, ...]] = {
    "user": ("user", "userid", "users", "uid", "visitorid", "visitor", "customerid", "customer", "clientid",
             "client", "memberid", "member", "reviewerid", "accountid", "account", "personid", "buyerid"),
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
    "session": ("sessionid", "session", "visitid", "visit", "sessionkey"),
    "time_detail": (),  # only looked for beside a date-only time column (``_find_time_detail``)
}
# A column that refines a date: named like a time, an offset or a clock (Diginetica's ``timeframe``).
_DETAIL_STEMS = ("time", "frame", "offset", "clock", "msec", "millis")
SESSION_SHARE = 0.5  # a user column missing on at least this share of rows gives way to the session column
# Stems for a second, looser pass (``customer_number``, ``product_sku``, ``order_date``).
_STEMS = {"user": ("user", "visitor", "customer", "client", "member", "reviewer"),
          "item": ("item", "product", "movie", "article", "track", "song", "sku"),
          "time": ("time", "date")}
ALL_ALIASES = frozenset(a for names in _ALIASES.values() for a in names)


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
    # 1-based position, handy for files without a header
    if re.fullmatch(r"[0-9]{1,9}", value) and 1 <= int(value) <= len(cols):
        return cols[int(value) - 1]
    raise InputError(f"column '{value[:60]}' given for {role} is not in {source} "
                     f"(columns found: {_columns_found(raw)}); set {HOW_TO_SET[role]} to one of these")


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
        return bool(UNIX_SECONDS[0] <= med < 1e17 and np.all(num == np.round(num)) and num.nunique() > 1)
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
    # the session column may also be the sequence key (user): that is how a person asks for one sequence per session
    keyed = [c for r, c in found.items() if c and not (r == "session" and c == found.get("user"))]
    dupes = [c for c in used if keyed.count(c) > 1]
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
    if "time_detail" not in found and found.get("time"):
        _find_time_detail(raw, found, free, source)
    if "user" not in overrides_given(overrides) and found.get("session"):
        _sessions_as_sequences(raw, found, source)
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
        if found.get(role) is None and _unsplit_lines(raw):  # the wrong format rather than a missing column
            raise InputError(f"{source} reads as a single column ('{short(raw.columns[0])}'), so it has no separate "
                             f"user and item columns; for 'user item item ...' lines pass --format seqtxt, for a "
                             f"table separate the fields with commas or tabs")
        if found.get(role) is None:
            raise InputError(f"could not find the {role} column in {source} (columns found: {_columns_found(raw)}); "
                             f"name it with {HOW_TO_SET[role]}")
    return ColumnMap(**{f.name: found.get(f.name) for f in fields(ColumnMap)})


def overrides_given(overrides: ColumnMap) -> set[str]:
    return {role for role in ROLES if getattr(overrides, role) is not None}


def missing_share(values: pd.Series) -> float:
    return float(missing_mask(values).mean()) if len(values) else 0.0


def _sessions_as_sequences(raw: pd.DataFrame, found: dict[str, str | None], source: str) -> None:
    """No user column, or one missing on most rows (anonymous visitors): each session is one sequence."""
    user, session = found.get("user"), found["session"]
    if user is None or missing_share(raw[user]) >= SESSION_SHARE:
        found["user"] = session
        log.info("%s: sequences are sessions (column '%s')", source, session)


def _text_sample(values: pd.Series, n: int = 500) -> pd.Series:
    return _sample(values, n).astype(str)


def is_date_only(values: pd.Series) -> bool:
    """Dates without a time of day: ``2016-05-09`` text, or datetimes that all fall on midnight."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return all_at_midnight(values)
    sample = _text_sample(values)
    return len(sample) > 0 and bool(sample.str.fullmatch(DATE_ONLY).all())


def is_time_of_day(values: pd.Series) -> bool:
    """Times of day without a date (``14:05``, ``14:05:09``, Parquet time32 values)."""
    sample = _text_sample(values)
    return len(sample) > 0 and bool(sample.str.fullmatch(TIME_OF_DAY).all())


def _is_offset(values: pd.Series) -> bool:
    num = _looks_numeric(_sample(values, 500))
    return num is not None and bool((num >= 0).all())


def _find_time_detail(raw: pd.DataFrame, found: dict[str, str | None], free: list[str], source: str) -> None:
    """A date-only time column plus a finer column (time of day, or an offset) make one timestamp. A time-of-day
    column picked as the time by its name ("time") while a date column sits beside it: the date is the time and
    the clock its detail."""
    time = found["time"]
    assert time is not None
    if is_time_of_day(raw[time]):
        date = next((c for c in free if is_date_only(raw[c])), None)
        if date is not None:
            found["time"], found["time_detail"] = date, time
            free.remove(date)
            log.info("%s: time = date column '%s' + time of day '%s'", source, date, time)
        return
    if not is_date_only(raw[time]):
        return
    for col in free:
        if any(stem in norm_name(col) for stem in _DETAIL_STEMS) and (is_time_of_day(raw[col]) or _is_offset(raw[col])):
            found["time_detail"] = col
            free.remove(col)
            log.info("%s: time = date column '%s' + finer column '%s'", source, time, col)
            return


def _unsplit_lines(raw: pd.DataFrame) -> bool:
    """One column whose cells hold spaces: whitespace-separated lines that no delimiter split (sequence text
    read as CSV, or a table that uses spaces unevenly), not a log that merely lacks an item column."""
    if raw.shape[1] != 1:
        return False
    cells = [str(raw.columns[0]), *_sample(raw.iloc[:, 0], 20).astype(str)]
    return sum(len(c.split()) > 1 for c in cells) > len(cells) / 2


def _named_for_something_else(normed: str) -> bool:
    """A small-number column called ``price_id``, ``quantity`` or ``time`` is not a rating, whatever its values."""
    return normed in ALL_ALIASES or any(s in normed for s in ("id", "price", "count", "qty", "quantity", "age",
                                                                "year", "time", "date", "duration", "hour"))


@dataclass(frozen=True)
class SequenceGuess:
    """What the Data page proposes as the sequence key: the user column to show, whether sequences are sessions,
    and why (a sentence for the page, or "")."""

    user: str | None
    per_session: bool
    note: str


def sequence_guess(raw: pd.DataFrame, detected: ColumnMap) -> SequenceGuess:
    """Sessions are the sequences when detection made the session column the key (no user column, or one missing
    on most rows); the real user column is still proposed so a person can switch back to one sequence per user."""
    per_session = detected.session is not None and detected.user == detected.session
    if not per_session:
        return SequenceGuess(detected.user, False, "")
    user = find_by_name([str(c) for c in raw.columns], "user")
    if user is None:
        why = "the log has no user column"
    else:
        why = f"'{short(user)}' has no user id on {missing_share(raw[user]):.0%} of rows"
    return SequenceGuess(user, True, f"Sequences are sessions: {why}, so each session ('{short(detected.session)}') "
                                     "is one sequence. Choose one sequence per user to follow people across "
                                     "sessions; rows without a user id then keep their session as their sequence.")

"""The column roles of an event log (user, item, time, ...), the mapping from roles to raw column names, and how a
message names a column or a role's setting.

The shared vocabulary of ``columns`` (which raw column plays which role) and ``canonical`` (typing the raw
columns): both import it, neither imports the other, and ``schema`` re-exports all three.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

ROLES = ("user", "item", "time", "rating", "title", "category", "event_type", "session", "time_detail")
REQUIRED = ("user", "item")
TIME_DTYPE = "datetime64[ns, UTC]"

# Where to set each role by hand: the CLI flag and the Data page's selector.
HOW_TO_SET = {
    "user": "--user-col (Data page: 'User column')",
    "item": "--item-col (Data page: 'Item column')",
    "time": "--time-col (Data page: 'Time column')",
    "rating": "--rating-col (Data page: 'Rating column')",
    "title": "the title column",
    "category": "the category column",
    "event_type": "the event-type column",
    "session": "--session-col (Data page: 'Session column')",
    "time_detail": "--time-detail-col (Data page: 'Finer time column')",
}
UNIX_SECONDS = (1e8, 1e11)  # 1973 .. 5138 in seconds; beyond: milliseconds, microseconds, nanoseconds
# How logs spell "no value": pandas' own NA spellings that real exports use (Diginetica's anonymous "NA" users).
MISSING_TEXT = ("", "nan", "none", "null", "na", "n/a", "<na>")
# A date with no time of day (2016-05-09, 09/05/2016, 20160509), and a time of day with no date (14:05, 14:05:09.5).
DATE_ONLY = re.compile(r"^(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}/\d{1,2}/\d{1,2})$")
TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")


@dataclass(frozen=True)
class ColumnMap:
    """Raw column names for each role. ``None`` = detect; ``""`` = the file has no such column (for time: keep
    file order).

    ``user`` is the sequence key: set it to the session column and every session is one sequence. ``session``
    stands in for a missing user id (an anonymous visitor's session is their sequence). ``time_detail`` is a
    finer time added to a date-only ``time`` column: a time of day (``14:05:00``) or an offset in seconds or
    milliseconds (a clickstream's ``timeframe`` within the day's session)."""

    user: str | None = None
    item: str | None = None
    time: str | None = None
    rating: str | None = None
    title: str | None = None
    category: str | None = None
    event_type: str | None = None
    session: str | None = None
    time_detail: str | None = None


def short(name: object, n: int = 40) -> str:
    """A column name or value as quoted in a message: a hostile file's 100 KB header must not make it a page."""
    text = str(name)
    return text if len(text) <= n else text[: n - 1] + "…"


def norm_name(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def with_columns(columns: ColumnMap | None, **fixed: str | None) -> ColumnMap:
    """Fixed column names for formats that have them, without overriding what a person chose."""
    base = columns or ColumnMap()
    return replace(base, **{k: v for k, v in fixed.items() if getattr(base, k) is None})


def missing_mask(values: pd.Series) -> np.ndarray:
    """True where a raw cell holds no value: NaN/None, or text such as '', 'NA', 'null' (see MISSING_TEXT)."""
    missing = values.isna().to_numpy(dtype=bool)
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        text = values.astype(str).str.strip().str.lower()
        missing = missing | text.isin(MISSING_TEXT).to_numpy(dtype=bool)
    return missing


def all_at_midnight(ts: pd.Series) -> bool:
    """Whether every (non-missing) time of a datetime column falls on midnight: dates stored as times."""
    ts = ts.dropna()
    return pd.api.types.is_datetime64_any_dtype(ts.dtype) and len(ts) > 0 and bool((ts == ts.dt.normalize()).all())

"""The column roles of an event log (user, item, time, ...), the mapping from roles to raw column names, and how a
message names a column or a role's setting.

The shared vocabulary of ``columns`` (which raw column plays which role) and ``canonical`` (typing the raw
columns): both import it, neither imports the other, and ``schema`` re-exports all three.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

ROLES = ("user", "item", "time", "rating", "title", "category", "event_type")
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
}
UNIX_SECONDS = (1e8, 1e11)  # 1973 .. 5138 in seconds; beyond: milliseconds, microseconds, nanoseconds


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


def with_columns(columns: ColumnMap | None, **fixed: str | None) -> ColumnMap:
    """Fixed column names for formats that have them, without overriding what a person chose."""
    base = columns or ColumnMap()
    return replace(base, **{k: v for k, v in fixed.items() if getattr(base, k) is None})

"""The shape of a log in a few numbers: who, how many, over what time, how repetitive."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class DataSummary:
    users: int
    items: int
    events: int
    density: float  # events / (users * items)
    time_span: tuple[pd.Timestamp, pd.Timestamp] | None  # None when the log has order but no time
    seq_lengths: np.ndarray  # (users,) events per user, in user_id order
    events_per_day: pd.Series | None  # UTC day -> events, every day of the span (zeros included); None without time
    repeat_share: float  # share of events whose item the same user already had earlier
    has_titles: bool
    has_categories: bool


def get_data_summary(events: pd.DataFrame) -> DataSummary:
    """Summary numbers of a canonical event table (sorted by user then time, as the loaders return it)."""
    n = len(events)
    has_titles = "item_title" in events.columns and bool(events["item_title"].notna().any())
    has_categories = "item_category" in events.columns and bool(events["item_category"].notna().any())
    if n == 0:
        return DataSummary(0, 0, 0, 0.0, None, np.zeros(0, dtype=np.int64), None, 0.0, has_titles, has_categories)
    users = int(events["user_id"].nunique())
    items = int(events["item_id"].nunique())
    seq_lengths = events.groupby("user_id", sort=True).size().to_numpy(dtype=np.int64)
    ts = events["timestamp"]
    time_span = None
    per_day = None
    if pd.api.types.is_datetime64_any_dtype(ts):
        utc = ts.dt.tz_convert("UTC") if ts.dt.tz is not None else ts.dt.tz_localize("UTC")
        time_span = (utc.min(), utc.max())
        days = utc.dt.floor("D")
        counts = days.value_counts().sort_index()
        full = pd.date_range(counts.index[0], counts.index[-1], freq="D")
        per_day = counts.reindex(full, fill_value=0).astype(np.int64).rename("events")
        per_day.index.name = "day"
    repeat_share = float(events.duplicated(["user_id", "item_id"]).mean())
    return DataSummary(users=users, items=items, events=n, density=n / (users * items), time_span=time_span,
                       seq_lengths=seq_lengths, events_per_day=per_day, repeat_share=repeat_share,
                       has_titles=has_titles, has_categories=has_categories)

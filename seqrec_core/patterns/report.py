"""Every temporal statistic of a log in one call: what the Patterns page shows and `python -m seqrec_core
patterns` prints.

Why one orchestrating call: the page, the CLI and the benchmark must agree on what "the pattern report" is,
and the statistics share inputs (per-user burstiness and per-user periods feed the segments), so each is
computed once, in an order that fails fast: the timezone and the timestamps are checked before any heavy work.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqrec_core.errors import InputError
from seqrec_core.patterns.burstiness import (
    get_burstiness_summary,
    get_iet_histogram,
    get_inter_event_times,
    get_user_burstiness,
)
from seqrec_core.patterns.bursts import get_item_bursts, get_user_bursts
from seqrec_core.patterns.common import has_timestamps, times_seconds
from seqrec_core.patterns.periodicity import Period, get_dominant_periods, get_periods
from seqrec_core.patterns.repeats import RepeatStats, get_repeat_stats
from seqrec_core.patterns.rhythm import get_daily_activity, get_hour_weekday
from seqrec_core.patterns.segments import get_segment_counts, get_user_segments

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, float], None]
PER_USER_COLUMNS = ["user", "events", "burstiness", "memory", "dominant_period_hours", "segment"]


def _num(value: object) -> float | None:
    """JSON has no NaN: missing numbers become null."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _iso(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.isoformat()


@dataclass
class PatternReport:
    """The temporal patterns of one log (see the module docstring); ``seconds`` = time the analysis took."""

    periods: list[Period]  # of the active-user count per hour; strongest first, harmonics folded
    burstiness: float  # global B (Kim & Jo finite-size corrected)
    memory: float  # global M (Goh & Barabasi)
    per_user: pd.DataFrame  # user, events, burstiness, memory, dominant_period_hours, segment
    per_item: pd.DataFrame  # item, events, period_hours (NaN if none), strength, significant, ...
    item_bursts: pd.DataFrame  # item, start, end, level, events, share
    user_bursts: pd.DataFrame  # user, start, end, level, events, minutes (nested: Kleinberg's hierarchy)
    hour_weekday: pd.DataFrame  # index Mon..Sun, columns 0..23, events (in ``timezone``)
    daily: pd.DataFrame  # date, events, users (in ``timezone``)
    iet_hist: pd.DataFrame  # bin_left_s, bin_right_s, count, density (gaps within each user)
    repeats: RepeatStats
    segments: pd.DataFrame  # segment, users, share (every segment listed, zeros included)
    timezone: str
    seconds: float
    events: int = 0
    users: int = 0

    def periods_frame(self) -> pd.DataFrame:
        """The global periods as a table (for display and download)."""
        return pd.DataFrame([{"period_hours": p.period_hours, "strength": p.strength, "significant": p.significant,
                              "false_alarm": p.false_alarm} for p in self.periods],
                            columns=["period_hours", "strength", "significant", "false_alarm"])

    def segment_summary(self) -> pd.DataFrame:
        """Per segment: users, their share, and the segment's median burstiness, memory and events per user."""
        medians = self.per_user.groupby("segment")[["burstiness", "memory", "events"]].median()
        table = self.segments[["segment", "users"]].copy()
        table["share"] = table["users"] / max(int(table["users"].sum()), 1)
        return table.join(medians.add_prefix("median_"), on="segment")

    def to_json(self) -> dict:
        """The CLI contract (DESIGN.md) plus "segments", "repeat_share" and "timezone"; times are ISO-8601 UTC,
        missing numbers null. ``per_user`` lists every user, uncapped (about 100 bytes each: 20,000 users give
        2 MB), in the log's user order; users with too few events for a statistic carry null there. ``bursts``
        are the item bursts; ``user_bursts`` the largest binge sessions (see :func:`binge_sessions`)."""
        per_user = [{"user": str(r.user), "events": int(r.events), "burstiness": _num(r.burstiness),
                     "memory": _num(r.memory), "dominant_period_hours": _num(r.dominant_period_hours)}
                    for r in self.per_user.itertuples(index=False)]
        bursts = [{"item": str(r.item), "start": _iso(r.start), "end": _iso(r.end), "level": int(r.level)}
                  for r in self.item_bursts.itertuples(index=False)]
        return {
            "periods": [{"period_hours": _num(p.period_hours), "strength": _num(p.strength),
                         "significant": bool(p.significant)} for p in self.periods],
            "burstiness": _num(self.burstiness),
            "memory": _num(self.memory),
            "per_user": per_user,
            "bursts": bursts,
            "user_bursts": [{"user": str(r.user), "start": _iso(r.start), "end": _iso(r.end), "level": int(r.level),
                             "events": int(r.events), "minutes": _num(r.minutes)}
                            for r in binge_sessions(self.user_bursts).itertuples(index=False)],
            "segments": {str(r.segment): int(r.users) for r in self.segments.itertuples(index=False)},
            "repeat_share": _num(self.repeats.repeat_share),
            "timezone": self.timezone,
        }


def binge_sessions(user_bursts: pd.DataFrame, *, min_events: int = 20, max_hours: float = 6.0,
                   limit: int = 1000) -> pd.DataFrame:
    """The largest binge sessions: user bursts of >= ``min_events`` events within ``max_hours``, most events first,
    without the nested repeats (a burst inside one already listed for the same user is skipped), at most ``limit``.

    The raw user bursts nest (Kleinberg's hierarchy: a level-8 minute inside a level-3 evening) and number ~90k on
    a 1M-event log; this is the list a person scans for "who entered hundreds of ratings in minutes"."""
    if user_bursts.empty:
        return user_bursts
    minutes = pd.to_numeric(user_bursts["minutes"], errors="coerce")
    cand = user_bursts[(user_bursts["events"] >= min_events) & (minutes <= 60 * max_hours)]
    cand = cand.sort_values(["events", "level"], ascending=False, kind="stable")
    kept: list[int] = []
    spans: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for idx, user, start, end in zip(cand.index, cand["user"], cand["start"], cand["end"], strict=True):
        if any(s0 <= start and end <= e0 for s0, e0 in spans.get(user, ())):
            continue
        spans.setdefault(user, []).append((start, end))
        kept.append(idx)
        if len(kept) >= limit:
            break
    return cand.loc[kept].reset_index(drop=True)


def get_pattern_report(events: pd.DataFrame, *, tz: str = "UTC",
                       progress: ProgressFn | None = None) -> PatternReport:
    """Periods, rhythm, burstiness and memory, bursts, repeats and user segments of ``events``.

    ``progress(step, fraction)`` is called before each step with a short description and the share done.
    Raises InputError for a log without timestamps or an unknown timezone, before any heavy work.
    """
    if not has_timestamps(events):
        raise InputError("the log has no timestamps (only an event order), so time patterns cannot be computed; "
                         "load a file with a time column")
    started = time.perf_counter()
    steps = ["rhythm", "periods", "burstiness", "user periods", "item periods", "item bursts", "user bursts",
             "repeats"]
    done = {"n": 0}

    def step(text: str) -> None:
        if progress is not None:
            progress(text, done["n"] / len(steps))
        done["n"] += 1
        log.debug("patterns: %s (%.1f s)", text, time.perf_counter() - started)

    step("Hour-of-day and weekday rhythm…")
    hour_weekday = get_hour_weekday(events, tz)  # validates tz first: a typo fails in milliseconds
    daily = get_daily_activity(events, tz)
    step("Testing for periods in the whole log…")
    # active users per bin, not events: one person's binge of 300 ratings in ten minutes must not drown the
    # rhythm that everyone else follows
    periods = get_periods(times_seconds(events), users=pd.factorize(events["user_id"])[0])
    step("Burstiness and memory…")
    summary = get_burstiness_summary(events)
    user_b = get_user_burstiness(events)
    iet_hist = get_iet_histogram(get_inter_event_times(events, "user"))
    step("Dominant period per user…")
    user_periods = get_dominant_periods(events, "user")
    step("Dominant period per item…")
    per_item = get_dominant_periods(events, "item").rename(columns={"id": "item"})
    step("Detecting item bursts…")
    item_bursts = get_item_bursts(events)
    step("Detecting user binge sessions…")
    user_bursts = get_user_bursts(events)
    step("Repeat consumption…")
    repeats = get_repeat_stats(events)
    per_user = get_user_segments(user_b, user_periods)  # every user: B, M, significant period, segment
    per_user["segment"] = per_user["segment"].astype(str)
    per_user = per_user[PER_USER_COLUMNS]
    if progress is not None:
        progress("Done", 1.0)
    seconds = time.perf_counter() - started
    log.info("pattern report on %d events in %.1f s", len(events), seconds)
    return PatternReport(periods=list(periods), burstiness=summary.burstiness, memory=summary.memory,
                         per_user=per_user, per_item=per_item, item_bursts=item_bursts, user_bursts=user_bursts,
                         hour_weekday=hour_weekday, daily=daily, iet_hist=iet_hist, repeats=repeats,
                         segments=get_segment_counts(per_user), timezone=tz, seconds=seconds,
                         events=int(len(events)), users=int(events["user_id"].nunique()))


def get_timeline(events: pd.DataFrame, *, item: str | None = None, user: str | None = None,
                 bin_hours: float = 6.0, start: pd.Timestamp | None = None,
                 end: pd.Timestamp | None = None) -> pd.DataFrame:
    """Events per ``bin_hours`` bin of one item or one user, with every event of the log per bin (``total``) so
    a chart can show the item's share. Columns: start (UTC), events, total.

    The span is ``start``..``end`` when given (a zoom on one burst), else the whole log for an item and the
    user's own active span (padded by 5%) for a user.
    """
    if (item is None) == (user is None):
        raise InputError("give exactly one of item or user for a timeline")
    if not bin_hours > 0:
        raise InputError(f"bin_hours must be positive (got {bin_hours})")
    t = times_seconds(events)
    col, key = ("item_id", item) if item is not None else ("user_id", user)
    mask = (events[col].astype(str) == str(key)).to_numpy()
    if not mask.any():
        raise InputError(f"{'item' if item is not None else 'user'} '{key}' has no events in this log")
    width = max(1, int(round(bin_hours * 3600)))
    if start is not None or end is not None:
        lo = int(pd.Timestamp(start).timestamp()) if start is not None else int(t.min())
        hi = int(pd.Timestamp(end).timestamp()) if end is not None else int(t.max())
    elif user is not None:
        own = t[mask]
        pad = max(width, (int(own.max()) - int(own.min())) // 20)
        lo, hi = int(own.min()) - pad, int(own.max()) + pad
    else:
        lo, hi = int(t.min()), int(t.max())
    origin = lo // width * width
    n_bins = (hi - origin) // width + 1
    inside = (t >= origin) & (t < origin + n_bins * width)
    bins = (t[inside] - origin) // width
    total = np.bincount(bins, minlength=n_bins)[:n_bins]
    counts = np.bincount(bins[mask[inside]], minlength=n_bins)[:n_bins]
    starts = origin + np.arange(n_bins, dtype=np.int64) * width
    return pd.DataFrame({"start": pd.to_datetime(starts, unit="s", utc=True), "events": counts, "total": total})

"""Rhythm views: hour-of-day x weekday heatmap and a daily activity calendar, in a chosen timezone.

Logs store UTC; people live in local time. A daily rhythm peaking at 20:00 in Berlin looks like 19:00/18:00
UTC depending on daylight saving, so the views convert with the IANA tz database (zoneinfo, DST-aware)
before taking hours, weekdays and dates.
"""
from __future__ import annotations

import zoneinfo
from functools import lru_cache

import numpy as np
import pandas as pd

from seqrec_core.errors import InputError
from seqrec_core.patterns.common import times_seconds

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
DAY = 86400
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Mon = 0)
_NOT_ZONES = {"localtime", "posixrules", "Factory"}


def _check_tz(tz: str) -> str:
    try:
        zoneinfo.ZoneInfo(str(tz))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError) as err:
        raise InputError(f"unknown timezone {tz!r}; use an IANA name such as 'UTC' or 'Europe/Berlin'") from err
    return str(tz)


def _local_seconds(events: pd.DataFrame, tz: str) -> np.ndarray:
    """Wall-clock seconds in ``tz`` (int64), so hour = s // 3600 % 24 and day = s // 86400 hold locally."""
    tz = _check_tz(tz)
    t = times_seconds(events)
    if tz in ("UTC", "Etc/UTC", "GMT", "Etc/GMT") or len(t) == 0:
        return t
    local = pd.DatetimeIndex(pd.to_datetime(t, unit="s", utc=True)).tz_convert(tz).tz_localize(None)
    return local.asi8 // {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[str(local.unit)]


def get_hour_weekday(events: pd.DataFrame, tz: str = "UTC") -> pd.DataFrame:
    """Events per (weekday, local hour): index WEEKDAYS (Mon..Sun), columns 0..23."""
    s = _local_seconds(events, tz)
    day = np.floor_divide(s, DAY)
    weekday = (day + _EPOCH_WEEKDAY) % 7
    hour = (s - day * DAY) // 3600
    grid = np.bincount(weekday * 24 + hour, minlength=7 * 24).reshape(7, 24)
    out = pd.DataFrame(grid.astype(np.int64), index=pd.Index(WEEKDAYS, name="weekday"),
                       columns=pd.RangeIndex(24, name="hour"))
    return out


def get_daily_activity(events: pd.DataFrame, tz: str = "UTC") -> pd.DataFrame:
    """One row per local calendar day from the first to the last event (quiet days included, with zeros):
    date (datetime.date), events, users (distinct users active that day)."""
    s = _local_seconds(events, tz)
    if len(s) == 0:
        return pd.DataFrame({"date": pd.Series(dtype=object), "events": pd.Series(dtype="int64"),
                             "users": pd.Series(dtype="int64")})
    day = np.floor_divide(s, DAY)
    d0 = int(day.min())
    rel = day - d0
    n_days = int(rel.max()) + 1
    n_events = np.bincount(rel, minlength=n_days)
    users, _ = pd.factorize(events["user_id"], sort=False)
    pairs = np.unique(rel * (int(users.max()) + 1) + users.astype(np.int64))
    n_users = np.bincount(pairs // (int(users.max()) + 1), minlength=n_days)
    dates = pd.to_datetime(np.arange(d0, d0 + n_days), unit="D").date
    return pd.DataFrame({"date": dates, "events": n_events.astype(np.int64), "users": n_users.astype(np.int64)})


@lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    names = sorted(z for z in zoneinfo.available_timezones() if z not in _NOT_ZONES and z != "UTC")
    return ("UTC", *names)


def timezone_names() -> list[str]:
    """IANA timezone names for a select box, UTC first, then alphabetical."""
    return list(_zone_names())

"""Text dates and times into UTC datetimes with one reading per column, and a date column refined by a finer one.

Why a module of its own: a column of dates must be read one way for every row. Parsing row by row (pandas'
``format="mixed"``) reads ``01/02/2024`` month-first and ``13/02/2024`` day-first in the same column, so the event
order and the test item change without a word; a time of day with no date (``01:30``) gets today's date, so the
data's fingerprint changes from one day to the next. Here the day/month order is decided once from all values
(and an ambiguous column is reported), times of day are refused as times, and a date-only column can be combined
with a finer column (a time of day, or a clickstream's offset in milliseconds) into one timestamp.
"""
from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from seqrec_core.data.roles import HOW_TO_SET, TIME_OF_DAY, short
from seqrec_core.errors import InputError

if TYPE_CHECKING:
    from seqrec_core.data.canonical import RowRef

# day/month/year or month/day/year, 2- or 4-digit year, optional time after a space or "T"
_NUMERIC_DATE = r"^(?P<a>\d{1,2})[/.-](?P<b>\d{1,2})[/.-](?P<y>\d{4}|\d{2})(?P<rest>(?:[ T].*)?)$"
# what a row parsed by pandas' free-form reader must hold to be a date and not a bare clock ("1:30 PM")
_HAS_YEAR = re.compile(r"\d{4}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2}")
SECONDS_PER_DAY = 86_400


def _iso(text: pd.Series) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")


def parse_text_times(text: pd.Series, ref: RowRef, column: str, notes: list[str]) -> pd.Series:
    """UTC datetimes (NaT where a value is not a date) from stripped text: ISO-8601 first, then numeric dates in
    one day/month order for the whole column, then other spellings ("Jan 5 2020") that name a year."""
    _refuse_times_of_day(text, ref, column)
    ts = _iso(text)
    rest = ts.isna()
    if rest.any():
        ts = ts.fillna(_numeric_dates(text[rest], ref, column, notes))
        rest = ts.isna()
    if rest.any():
        left = text[rest]
        # Row-by-row parsing costs ~50 us a row: when a probe of the rest parses not at all, the column is not a
        # time and a million junk rows are refused at once instead of after a minute.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe = pd.to_datetime(left.head(1000), utc=True, format="mixed", errors="coerce")
            if probe.notna().any():
                loose = pd.to_datetime(left, utc=True, format="mixed", errors="coerce")
                ts = ts.fillna(loose.where(left.str.contains(_HAS_YEAR)))
    return ts


def _refuse_times_of_day(text: pd.Series, ref: RowRef, column: str) -> None:
    clock = text.str.fullmatch(TIME_OF_DAY).to_numpy(dtype=bool)
    if clock.any():
        i = int(np.flatnonzero(clock)[0])
        raise InputError(f"{ref.at(i, column)}: '{short(text.iloc[i], 20)}' is a time of day without a date "
                         f"({int(clock.sum()):,} rows like this); name the date column as the time and this one "
                         f"with {HOW_TO_SET['time_detail']}, or write full dates and times (2024-01-31T01:30:00Z)")


def _numeric_dates(text: pd.Series, ref: RowRef, column: str, notes: list[str]) -> pd.Series:
    """``13/02/2024`` and ``02/13/2024`` style dates, read day-first or month-first for the whole column: decided
    by the values that can only be read one way; a column where every value fits both is read month-first and
    the ambiguity is reported; a column holding both orders is refused with a row of each."""
    parts = text.str.extract(_NUMERIC_DATE)
    ok = parts["a"].notna().to_numpy(dtype=bool)
    if not ok.any():
        return pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    first = pd.to_numeric(parts["a"], errors="coerce").to_numpy()
    second = pd.to_numeric(parts["b"], errors="coerce").to_numpy()
    day_first = ok & (first > 12) & (second <= 12)
    month_first = ok & (second > 12) & (first <= 12)
    if day_first.any() and month_first.any():
        i, j = int(np.flatnonzero(day_first)[0]), int(np.flatnonzero(month_first)[0])
        raise InputError(f"{ref.at(i, column)}: '{short(text.iloc[i], 24)}' has the day first but line "
                         f"{int(ref.lines[j])} '{short(text.iloc[j], 24)}' has the month first; a column needs one "
                         f"date order: write the dates as ISO-8601 (2024-02-13)")
    is_day_first = bool(day_first.any())
    if not is_day_first and not month_first.any() and (ok & (first != second)).any():
        k = int(np.flatnonzero(ok & (first != second))[0])
        notes.append(f"column '{short(column)}': dates such as '{short(text.iloc[k], 24)}' fit both day-first and "
                     f"month-first; they were read month-first (MM/DD). If they are DD/MM, write them as ISO-8601 "
                     f"(YYYY-MM-DD) and load the file again")
    day, month = (parts["a"], parts["b"]) if is_day_first else (parts["b"], parts["a"])
    year = parts["y"].map(_four_digit_year)
    rest = parts["rest"].fillna("").str.strip()
    iso = year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2) + np.where(rest == "", "", "T" + rest)
    return _iso(iso.where(pd.Series(ok, index=text.index)))


def _four_digit_year(year: object) -> object:
    """'24' -> '2024', '85' -> '1985' (strptime's %y pivot); four digits and missing values unchanged."""
    if not isinstance(year, str) or len(year) == 4:
        return year
    return ("20" if int(year) < 69 else "19") + year


def add_time_detail(dates: pd.Series, values: pd.Series, ref: RowRef, column: str, date_column: str,
                    notes: list[str]) -> pd.Series:
    """``dates`` (UTC, date-only) plus a time of day (``14:05``) or a non-negative offset in seconds or
    milliseconds: milliseconds when the name says so (``ms``, ``timeframe``) or when a value passes a day of
    seconds."""
    text = values.astype(str).str.strip()
    clock = text.str.fullmatch(TIME_OF_DAY)
    if clock.all():
        offset = pd.to_timedelta(text.where(text.str.count(":") == 2, text + ":00"), errors="coerce")
        unit = "time of day"
    else:
        num = pd.to_numeric(values, errors="coerce")
        bad = (num.isna() | (num < 0)).to_numpy(dtype=bool)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{ref.at(i, column)}: '{short(values.iloc[i], 20)}' is neither a time of day nor an "
                             f"offset (a number >= 0) to add to the date in '{short(date_column)}'; fix the value or "
                             f"clear {HOW_TO_SET['time_detail']}")
        name = column.lower()
        in_ms = any(s in name for s in ("ms", "milli", "frame")) or float(num.max()) > SECONDS_PER_DAY
        unit = "milliseconds" if in_ms else "seconds"
        offset = pd.to_timedelta(num.to_numpy(dtype=float), unit="ms" if in_ms else "s")
        offset = pd.Series(offset, index=values.index)
    if offset.isna().any():
        i = int(np.flatnonzero(offset.isna().to_numpy())[0])
        raise InputError(f"{ref.at(i, column)}: cannot read '{short(values.iloc[i], 20)}' as a time of day; "
                         f"write it like 14:05:09")
    notes.append(f"time = date '{short(date_column)}' + '{short(column)}' ({unit})")
    return dates.dt.normalize() + offset

"""Cleaning a canonical event table before modelling, with an account of every row it drops.

Each step is optional except the last: a user with fewer than three events cannot be evaluated with
leave-one-out (one train, one validation, one test event), so such users are always removed. The quality
report lists what each step removed and warns about things that are kept but worth knowing.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from seqrec_core.data.arrow_ingest import (
    EventCodes,
    canonical_order,
    duplicate_mask,
    event_codes,
    events_per_user,
    filter_rows,
    sort_canonical,
)
from seqrec_core.data.canonical import LOAD_DROPS, LOAD_NOTES, SEQUENCE_UNIT
from seqrec_core.data.roles import HOW_TO_SET
from seqrec_core.errors import InputError

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp")
_PLAUSIBLE_START = pd.Timestamp("1990-01-01", tz="UTC")


@dataclass(frozen=True)
class PrepOptions:
    min_rating: float | None = None  # implicit feedback: keep events with weight >= this
    drop_duplicates: bool = False  # drop exact repeated (user, item, timestamp)
    k_core: int = 0  # iteratively drop users and items with < k events (0/1 = off)
    min_user_events: int = 3  # users with fewer events cannot be evaluated (train/val/test) -> dropped, reported


@dataclass
class DropStep:
    step: str
    rows_dropped: int
    users_dropped: int
    items_dropped: int
    reason: str


@dataclass
class QualityReport:
    rows_in: int
    rows_out: int
    steps: list[DropStep] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sequence_unit: str = "user"  # what one sequence follows: a "user", or a "session" (clickstreams without users)

    def to_frame(self) -> pd.DataFrame:
        """One row per step that ran, with the rows left after it."""
        cols = ["step", "rows_dropped", "users_dropped", "items_dropped", "rows_left", "reason"]
        if not self.steps:
            return pd.DataFrame(columns=cols)
        frame = pd.DataFrame([asdict(s) for s in self.steps])
        frame["rows_left"] = self.rows_in - frame["rows_dropped"].cumsum()
        return frame[cols]


def _apply(events: pd.DataFrame, codes: EventCodes, keep: np.ndarray | pd.Series, step: str, reason: str,
           steps: list[DropStep]) -> tuple[pd.DataFrame, EventCodes]:
    """Keep rows; users/items dropped are counted on the integer codes (no string work on 10M rows)."""
    keep = np.asarray(keep, dtype=bool)
    kept_codes = codes.take(keep)
    kept = filter_rows(events, keep)
    steps.append(DropStep(step=step, rows_dropped=int((~keep).sum()),
                          users_dropped=codes.n_users() - kept_codes.n_users(),
                          items_dropped=codes.n_items() - kept_codes.n_items(),
                          reason=reason))
    return kept, kept_codes


def _k_core(codes: EventCodes, k: int) -> tuple[np.ndarray, int]:
    """Rows surviving the iterated k-core (every kept user and item has >= k events) and the rounds needed."""
    users, items = codes.users, codes.items
    keep = np.ones(len(users), dtype=bool)
    rounds = 0
    while True:
        rounds += 1
        u_count = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
        i_count = np.bincount(items[keep], minlength=items.max(initial=-1) + 1)
        new = keep & (u_count[users] >= k) & (i_count[items] >= k)
        if new.sum() == keep.sum():
            return keep, rounds
        keep = new


def _validate(events: pd.DataFrame, options: PrepOptions, source: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in events.columns]
    if missing:
        raise InputError(f"{source} lacks column(s) {', '.join(missing)}; load it with seqrec_core.data.load_events")
    for col, what in (("user_id", "user"), ("item_id", "item")):
        blank = events[col].isna().to_numpy(dtype=bool)
        if blank.any():
            n = int(blank.sum())
            raise InputError(f"{source}: {n:,} event{'' if n == 1 else 's'} {'has' if n == 1 else 'have'} no {what} "
                             f"id (first at row {int(np.flatnonzero(blank)[0]) + 1}); fill in the ids or remove "
                             f"those rows")
    if options.k_core < 0:
        raise InputError(f"k-core must be >= 0 (got {options.k_core}); use 0 to switch it off")
    if options.min_user_events < 1:
        raise InputError(f"min_user_events must be >= 1 (got {options.min_user_events})")
    if options.min_rating is not None and "weight" not in events.columns:
        raise InputError(f"a minimum rating was set but {source} has no rating column; set --rating-col "
                         f"(Data page: 'Rating column') or drop --min-rating")


def _warnings(events: pd.DataFrame, codes: EventCodes, options: PrepOptions, source: str) -> list[str]:
    """Things kept as they are but worth a person's attention."""
    out: list[str] = []
    if len(events) == 0:
        return out
    ts = events["timestamp"]
    same_user = codes.users[1:] == codes.users[:-1]
    if not pd.api.types.is_datetime64_any_dtype(ts):
        out.append(f"{source} has an event order but no timestamps: time-of-day, periodicity and burst views are "
                   f"unavailable (if the file does have a time column, set {HOW_TO_SET['time']})")
    else:
        t = (ts.dt.tz_convert(None) if ts.dt.tz is not None else ts).to_numpy()  # datetime64, UTC
        ties = same_user & (t[1:] == t[:-1])
        if same_user.sum() and ties.sum() / same_user.sum() > 0.05:
            out.append(f"{ties.sum() / same_user.sum():.0%} of consecutive events of a user share a timestamp; "
                       f"their order is the file order")
        early = int((ts < _PLAUSIBLE_START).sum())
        late = int((ts > pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)).sum())
        if early or late:
            out.append(f"{early + late:,} events have implausible times (before 1990: {early:,}, in the future: "
                       f"{late:,}); check the time column and its unit")
    if not options.drop_duplicates:
        dupes = int(_duplicated(events, codes).sum())
        if dupes:
            out.append(f"{dupes:,} events repeat the same user, item and time; they are kept (turn on 'drop "
                       f"duplicates' to remove them)")
    if "weight" in events.columns and options.min_rating is None and events["weight"].nunique() > 1:
        out.append("every rating counts as an interaction, low ones included; set a minimum rating to keep only "
                   "positive feedback")
    return out


def _short_users_warning(codes: EventCodes) -> str | None:
    """The warning for short histories, measured on the cleaned log: the number the Data page's summary shows
    next to it (measured before cleaning, it said median 3 where the page said 4)."""
    lengths = np.bincount(codes.users, minlength=len(codes.user_uniques))
    lengths = lengths[lengths > 0]
    if len(lengths) and np.median(lengths) < 5:
        return (f"users are short: median {np.median(lengths):.0f} events; sequence models gain little over "
                "popularity on very short histories")
    return None


def _duplicated(events: pd.DataFrame, codes: EventCodes) -> np.ndarray:
    """``events.duplicated(["user_id", "item_id", "timestamp"])`` (first kept), on integer codes when it can."""
    try:
        return duplicate_mask(codes, canonical_order(codes))
    except ValueError:  # a time column that cannot be keyed as integers: let pandas decide
        return events.duplicated(["user_id", "item_id", "timestamp"]).to_numpy()


def prepare_events(events: pd.DataFrame, options: PrepOptions = PrepOptions(),
                   source: str = "the log") -> tuple[pd.DataFrame, QualityReport]:
    """Filter by rating, drop duplicates, k-core, drop unevaluable users; raise if nothing is left."""
    cleaned, report, _codes = prepare_events_coded(events, options, source)
    return cleaned, report


def prepare_events_coded(events: pd.DataFrame, options: PrepOptions = PrepOptions(),
                         source: str = "the log") -> tuple[pd.DataFrame, QualityReport, EventCodes | None]:
    """:func:`prepare_events` plus the id codes of the cleaned table in its row order (None if pandas had to
    sort it), which ``build_sequences(cleaned, codes=...)`` reuses instead of factorizing ten million ids again."""
    _validate(events, options, source)
    if len(events) == 0:
        raise InputError(f"{source} has no events; check the file")
    # what loading already dropped or noticed (canonical.to_canonical) opens the report
    steps = [DropStep(**drop) for drop in events.attrs.get(LOAD_DROPS, [])]
    rows_in = len(events) + sum(step.rows_dropped for step in steps)
    ev = events.reset_index(drop=True)
    codes = event_codes(ev)  # ids factorized once; every step below works on these integers
    warns = [*events.attrs.get(LOAD_NOTES, []), *_warnings(ev, codes, options, source)]
    if options.min_rating is not None:
        ev, codes = _apply(ev, codes, ev["weight"] >= options.min_rating, f"rating >= {options.min_rating:g}",
                           f"implicit feedback: events rated below {options.min_rating:g} (or unrated) removed",
                           steps)
        if ev.empty:
            raise InputError(f"no event in {source} has a rating >= {options.min_rating:g}; lower the minimum rating")
    if options.drop_duplicates:
        ev, codes = _apply(ev, codes, ~_duplicated(ev, codes), "duplicates",
                           "repeated (user, item, timestamp) events: the first is kept", steps)
    if options.k_core > 1:
        keep, rounds = _k_core(codes, options.k_core)
        ev, codes = _apply(ev, codes, keep, f"{options.k_core}-core",
                           f"users and items with fewer than {options.k_core} events, repeated until stable "
                           f"({rounds} rounds)", steps)
        if ev.empty:
            raise InputError(f"the {options.k_core}-core of {source} is empty: no set of users and items has "
                             f"{options.k_core} events each; lower k-core")
    n = options.min_user_events
    ev, codes = _apply(ev, codes, events_per_user(codes) >= n, f"users with < {n} events",
                       f"a user needs >= {n} events for leave-one-out (train, validation, test)", steps)
    if ev.empty:
        hint = "lower k-core or use a longer log" if options.k_core > 1 else "use a longer log"
        raise InputError(f"every user in {source} has fewer than {n} events; a sequence model needs >= {n} per "
                         f"user (train, validation, test) — {hint}")
    if (short := _short_users_warning(codes)) is not None:
        warns.append(short)
    dropped = rows_in - len(ev)
    if dropped / rows_in > 0.5:
        warns.append(f"cleaning removed {dropped / rows_in:.0%} of the events; check the options above")
    ev, sorted_codes = sort_canonical(ev, codes)
    report = QualityReport(rows_in=rows_in, rows_out=len(ev), steps=steps, warnings=warns,
                           sequence_unit=events.attrs.get(SEQUENCE_UNIT, "user"))
    log.info("%s: kept %d of %d events", source, len(ev), rows_in)
    return ev, report, sorted_codes

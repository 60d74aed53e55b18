"""Cached wrappers around seqrec_core.patterns for the Patterns page, keyed by data fingerprint (+ timezone,
run key and parameters).

Why split by timezone: only the hour x weekday table and the calendar depend on it, so the heavy report is
computed once per dataset (in UTC) and switching the timezone recomputes just those two views (milliseconds).
Arguments starting with an underscore are not hashed by Streamlit; the string keys before them identify the
work. ``st.cache_data`` hands every caller its own copy, so the page may not mutate what it gets anyway.
"""
from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from seqrec_core.data.dataset import Dataset
from seqrec_core.patterns.report import PatternReport, get_pattern_report


def base_report(fingerprint: str, ds: Dataset) -> PatternReport:
    """The full report in UTC: the one stored with the run in use when there is one (the demo's is shipped),
    else computed here once per dataset with a progress bar."""
    from ui import state, stored

    run = state.get_run()
    if run is not None and (run.config.get("data") or {}).get("fingerprint") == fingerprint:
        found = stored.lookup(run, ds, "patterns")
        if found.fresh:
            return _stored_report(str(found.unit.folder), found.unit.created, found.unit)
    return _computed_report(fingerprint, ds)


@st.cache_data(show_spinner=False, max_entries=4)
def _stored_report(folder: str, created: str, _unit) -> PatternReport:  # noqa: ANN001
    from seqrec_core.analysis.kinds_patterns import load_patterns

    return load_patterns(_unit)


@st.cache_data(show_spinner=False, max_entries=4)
def _computed_report(fingerprint: str, _ds: Dataset) -> PatternReport:
    bar = st.progress(0.0, text="Analysing the temporal patterns…")
    report = get_pattern_report(_ds.events, tz="UTC",
                                progress=lambda text, share: bar.progress(min(max(share, 0.0), 1.0), text=text))
    bar.empty()
    return report


@st.cache_data(show_spinner=False, max_entries=16)
def report(fingerprint: str, tz: str, _ds: Dataset) -> PatternReport:
    """The report with its rhythm views (hour x weekday, calendar) read in ``tz``."""
    from seqrec_core.patterns.rhythm import get_daily_activity, get_hour_weekday

    base = base_report(fingerprint, _ds)
    if tz == base.timezone:
        return base
    return replace(base, hour_weekday=get_hour_weekday(_ds.events, tz), daily=get_daily_activity(_ds.events, tz),
                   timezone=tz)


@st.cache_data(show_spinner=False, max_entries=64)
def timeline(fingerprint: str, kind: str, entity: str, bin_hours: float, start: str | None, end: str | None,
             _ds: Dataset) -> pd.DataFrame:
    """Events per bin of one item or user (``start``/``end`` ISO strings zoom on a span)."""
    from seqrec_core.patterns.report import get_timeline

    span = {"start": pd.Timestamp(start) if start else None, "end": pd.Timestamp(end) if end else None}
    if kind == "item":
        return get_timeline(_ds.events, item=entity, bin_hours=bin_hours, **span)
    return get_timeline(_ds.events, user=entity, bin_hours=bin_hours, **span)


@st.cache_data(show_spinner=False, max_entries=4)
def item_titles(fingerprint: str, _ds: Dataset) -> dict[str, str]:
    return dict(_ds.sequences.vocab.item_titles)


@st.cache_data(show_spinner="Checking the planted rhythms and bursts…", max_entries=4)
def demo_check(fingerprint: str, demo_seed: int, _report: PatternReport) -> dict:
    """Did the analysis recover what the demo generator planted? Periods within 2%, bursts by F1."""
    from seqrec_core.patterns.bursts import burst_f1
    from ui.explain_cache import demo_truth

    truth = demo_truth(demo_seed)
    found = {}
    for name, hours in (("daily", truth.daily_period_hours), ("weekly", truth.weekly_period_hours)):
        match = [p for p in _report.periods if abs(p.period_hours - hours) <= 0.02 * hours]
        found[name] = {"planted_hours": hours, "found_hours": match[0].period_hours if match else None,
                       "significant": bool(match and match[0].significant)}
    scores = burst_f1(_report.item_bursts, truth.burst_items)
    truth_table = pd.DataFrame([{"item": b["item"], "start": b["start"], "end": b["end"]} for b in truth.burst_items])
    return {"periods": found, "bursts": scores, "truth": truth_table}

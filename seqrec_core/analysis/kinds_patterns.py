"""The log's temporal patterns (the Patterns page's report), stored with a run trained on that log.

Why with a run when the report belongs to the data: the run folder is what travels and what the demo ships, so a
dashboard opening a run (or the demo) shows the Patterns page at once; a log without a run is analysed on the page
as before. Only the UTC report is stored: the page re-reads hours and weekdays in another timezone in milliseconds.
"""
from __future__ import annotations

import dataclasses

from seqrec_core.analysis.kinds_eval import needs_time, pattern_report
from seqrec_core.analysis.registry import AnalysisContext, Computed, Kind, Progress, register
from seqrec_core.analysis.store import StoredUnit

FRAMES = ("per_user", "per_item", "item_bursts", "user_bursts", "daily", "iet_hist", "segments")


def _compute_patterns(ctx: AnalysisContext, params: dict, progress: Progress | None) -> Computed:
    report = pattern_report(ctx)
    tables = {name: getattr(report, name) for name in FRAMES}
    tables["periods"] = report.periods_frame()
    hours = report.hour_weekday.copy()
    hours.columns = [str(c) for c in hours.columns]  # Parquet columns are named by strings
    tables["hour_weekday"] = hours.rename_axis("weekday").reset_index()
    tables["repeat_intervals"] = report.repeats.intervals
    tables["regular_items"] = report.repeats.regular_items
    info = {"burstiness": report.burstiness, "memory": report.memory, "repeat_share": report.repeats.repeat_share,
            "timezone": report.timezone, "seconds": report.seconds, "events": report.events, "users": report.users}
    return tables, info


PATTERNS = register(Kind(name="patterns", version=2, defaults={"tz": "UTC"}, compute=_compute_patterns,
                         label="the log's rhythms, bursts and repeats", skip=needs_time, allowed={"tz": ("UTC",)}))


def load_patterns(unit: StoredUnit):  # noqa: ANN201 - PatternReport
    """The stored report as :func:`seqrec_core.patterns.report.get_pattern_report` returns it."""
    from seqrec_core.patterns.periodicity import Period
    from seqrec_core.patterns.repeats import RepeatStats
    from seqrec_core.patterns.report import PatternReport

    info = unit.info
    periods = [Period(period_hours=float(r.period_hours), strength=float(r.strength),
                      significant=bool(r.significant), false_alarm=float(r.false_alarm))
               for r in unit.table("periods").itertuples(index=False)]
    hours = unit.table("hour_weekday").set_index("weekday")
    hours.columns = [int(c) for c in hours.columns]
    hours.index.name = None
    repeats = RepeatStats(repeat_share=float(info["repeat_share"]), intervals=unit.table("repeat_intervals"),
                          regular_items=unit.table("regular_items"))
    fields = {f.name for f in dataclasses.fields(PatternReport)}
    frames = {name: unit.table(name) for name in FRAMES}
    report = PatternReport(periods=periods, burstiness=float(info["burstiness"]), memory=float(info["memory"]),
                           hour_weekday=hours, repeats=repeats, timezone=str(info["timezone"]),
                           seconds=float(info["seconds"]), events=int(info["events"]), users=int(info["users"]),
                           **{k: v for k, v in frames.items() if k in fields})
    return report

"""Temporal patterns in a behaviour log: periodicity, rhythm, burstiness, bursts, repeat consumption, segments.

Pure numpy/scipy functions over the canonical event table; results come back as data (DataFrames,
dataclasses), figures are built elsewhere (``seqrec_core.viz``). Every time-based function needs real
timestamps: ``has_timestamps`` checks, ``times_seconds`` raises InputError for logs with only an order.
``get_pattern_report`` runs everything at once (the CLI's ``patterns`` and the Patterns page). How a trained model
relates to the patterns lives in :mod:`seqrec_core.patterns.model_ties` (not imported here: it needs torch).
"""
from seqrec_core.patterns.burstiness import (
    BurstinessSummary,
    burstiness,
    get_burstiness_summary,
    get_iet_histogram,
    get_inter_event_times,
    get_user_burstiness,
    memory_coefficient,
)
from seqrec_core.patterns.bursts import BurstConfig, burst_f1, get_item_bursts, kleinberg_levels
from seqrec_core.patterns.common import GroupedTimes, group_times, has_timestamps, times_seconds
from seqrec_core.patterns.periodicity import Period, get_dominant_periods, get_periods
from seqrec_core.patterns.repeats import RepeatStats, get_repeat_stats
from seqrec_core.patterns.report import PatternReport, get_pattern_report, get_timeline
from seqrec_core.patterns.rhythm import WEEKDAYS, get_daily_activity, get_hour_weekday, timezone_names
from seqrec_core.patterns.segments import SEGMENTS, get_segment_counts, get_user_segments
from seqrec_core.patterns.user_bursts import get_user_bursts

__all__ = ["SEGMENTS", "WEEKDAYS", "BurstConfig", "BurstinessSummary", "GroupedTimes", "PatternReport", "Period",
           "RepeatStats", "burst_f1", "burstiness", "get_burstiness_summary", "get_daily_activity",
           "get_dominant_periods", "get_hour_weekday", "get_iet_histogram", "get_inter_event_times", "get_item_bursts",
           "get_pattern_report", "get_periods", "get_repeat_stats", "get_segment_counts", "get_timeline",
           "get_user_burstiness", "get_user_bursts", "get_user_segments", "group_times", "has_timestamps",
           "kleinberg_levels", "memory_coefficient", "times_seconds", "timezone_names"]

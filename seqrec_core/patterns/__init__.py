"""Temporal patterns in a behaviour log: periodicity, rhythm, burstiness, repeat consumption, user segments.

Pure numpy/scipy functions over the canonical event table; results come back as data (DataFrames,
dataclasses), figures are built elsewhere (``seqrec_core.viz``).
"""
from seqrec_core.patterns.common import GroupedTimes, group_times, has_timestamps, times_seconds

__all__ = ["GroupedTimes", "group_times", "has_timestamps", "times_seconds"]

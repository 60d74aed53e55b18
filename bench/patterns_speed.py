"""Speed of the full temporal-pattern analysis on a 1,000,000-event log (bar: <= 15 s on the 2-core machine).

Builds the demo log at scale (20,500 users x ~49 events, 5,000 items, 90 days; generation is not timed),
then times ``get_pattern_report`` end to end, with per-step seconds taken from its progress callback. If the
report module is not there, each available piece is timed instead. The burst detectors are also timed on
their own (they are one step of the report) and their recovery of the planted bursts is printed.
Prints one JSON document.

    python bench/patterns_speed.py                      # 1M events
    python bench/patterns_speed.py --users 2000         # the default demo size (~100k events)
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import host_info  # noqa: E402
from seqrec_core.data.synthetic import make_demo_events  # noqa: E402
from seqrec_core.patterns.bursts import burst_f1, get_item_bursts, get_user_bursts  # noqa: E402


def machine_info() -> dict:
    """The host (bench/machine.py) and the libraries the pattern statistics run on."""
    import pandas as pd
    import scipy

    return host_info() | {"numpy": np.__version__, "pandas": pd.__version__, "scipy": scipy.__version__}


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def time_report(events) -> dict | None:
    """The whole report, once, with the seconds between its progress calls as per-step times."""
    try:
        report_mod = importlib.import_module("seqrec_core.patterns.report")
    except ImportError:
        return None
    marks: list[tuple[str, float]] = []
    report, total = _timed(lambda: report_mod.get_pattern_report(
        events, progress=lambda text, _frac: marks.append((text, time.perf_counter()))))
    steps = {text.rstrip("…. "): round(marks[k + 1][1] - when, 3)
             for k, (text, when) in enumerate(marks[:-1])}
    return {"function": "get_pattern_report", "total_s": round(total, 3), "steps_s": steps,
            "item_bursts": int(len(report.item_bursts)), "user_bursts": int(len(report.user_bursts))}


def time_pieces(events) -> dict:
    """Fallback without report.py: every pattern function that exists, one after the other."""
    from seqrec_core.patterns.common import times_seconds
    calls: dict[str, Callable[[], object]] = {
        "item bursts": lambda: get_item_bursts(events), "user bursts": lambda: get_user_bursts(events)}
    optional = [
        ("rhythm", "seqrec_core.patterns.rhythm", "get_hour_weekday", (events,), {}),
        ("daily activity", "seqrec_core.patterns.rhythm", "get_daily_activity", (events,), {}),
        ("periods", "seqrec_core.patterns.periodicity", "get_periods", (times_seconds(events),), {}),
        ("user periods", "seqrec_core.patterns.periodicity", "get_dominant_periods", (events, "user"), {}),
        ("item periods", "seqrec_core.patterns.periodicity", "get_dominant_periods", (events, "item"), {}),
        ("burstiness summary", "seqrec_core.patterns.burstiness", "get_burstiness_summary", (events,), {}),
        ("user burstiness", "seqrec_core.patterns.burstiness", "get_user_burstiness", (events,), {}),
        ("repeats", "seqrec_core.patterns.repeats", "get_repeat_stats", (events,), {}),
    ]
    missing = []
    for name, module, func, args, kwargs in optional:
        try:
            fn = getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError):
            missing.append(f"{module}.{func}")
            continue
        calls[name] = lambda fn=fn, args=args, kwargs=kwargs: fn(*args, **kwargs)
    steps = {name: round(_timed(call)[1], 3) for name, call in calls.items()}
    return {"function": "pieces (no seqrec_core.patterns.report)", "total_s": round(sum(steps.values()), 3),
            "steps_s": steps, "missing": missing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_500)  # ~49.4 events each: just over 1M events
    parser.add_argument("--events-per-user", type=int, default=50)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bar", type=float, default=15.0, help="seconds the full analysis may take")
    args = parser.parse_args()

    (events, truth), gen_s = _timed(lambda: make_demo_events(
        n_users=args.users, events_per_user=args.events_per_user, n_items=args.items, seed=args.seed))
    result = time_report(events) or time_pieces(events)
    item_b, item_s = _timed(lambda: get_item_bursts(events))
    user_b, user_s = _timed(lambda: get_user_bursts(events))
    out = {
        "events": int(len(events)), "users": int(events["user_id"].nunique()),
        "items": int(events["item_id"].nunique()), "generate_s": round(gen_s, 3),
        **result, "bar_s": args.bar, "within_bar": result["total_s"] <= args.bar,
        "bursts_alone": {"get_item_bursts_s": round(item_s, 3), "get_user_bursts_s": round(user_s, 3),
                         "item_bursts": int(len(item_b)), "user_bursts": int(len(user_b)),
                         "planted_recovery": burst_f1(item_b, truth.burst_items)},
        "machine": machine_info(),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

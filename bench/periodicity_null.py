"""False alarms of the periodicity test on logs without a rhythm (issue 16, item 6; bar: no significant period
in 100 seeds per null kind, i.e. a false-alarm rate <= 1% at alpha 0.01, no warnings, and one user with 1M
constant-rate events in reasonable time), and its power on a planted 24 h rhythm.

The null logs are the tests' (tests/core/test_periodicity_null.py, defined once there): Poisson users with
fixed event counts (20-2,000 users x 20-200 events, mean gaps 10 min to a day, common or staggered starts) and
constant-rate logs (one event every 1-60 s, 10k-1M events, 1-1,000 users). Each log is tested as the CLI does
(active users per hour) and by event counts; for Poisson logs the per-user table is scored too. Warnings are
recorded, not raised, and counted. Prints one JSON document.

The null's statistics (the smooth-spectrum background, the exact Gamma p-values and the counting-noise floor)
live in seqrec_core/patterns/spectral_null.py; this script only runs them over many null logs.

    python bench/periodicity_null.py                 # 100 seeds per null kind, the 1M-event user, power
    python bench/periodicity_null.py --seeds 20
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "core"))  # the null logs are the tests', defined once there

from test_periodicity_null import (  # noqa: E402
    T0,
    _events,
    constant_rate_log,
    planted_daily_log,
    poisson_users_log,
)

from bench.machine import host_info  # noqa: E402
from seqrec_core.patterns import get_dominant_periods, get_periods  # noqa: E402

ALPHA = 0.01


def _min_fap(periods: list) -> float:
    return min((p.false_alarm for p in periods), default=1.0)


def run_null(kind: str, seeds: int) -> dict:
    """False-alarm rate over ``seeds`` logs of one null kind: significant logs, FAP quantiles, seconds per log."""
    make = {"poisson_users": poisson_users_log, "constant_rate": constant_rate_log}[kind]
    faps = {"users": [], "events": []}
    hits: dict[str, list] = {"users": [], "events": []}
    user_sig = user_scored = n_warnings = 0
    seconds, events = [], 0
    for seed in range(seeds):
        t, users = make(seed)
        events += len(t)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.perf_counter()
            by = {"users": get_periods(t, users=users), "events": get_periods(t)}
            seconds.append(time.perf_counter() - start)
            if kind == "poisson_users":
                table = get_dominant_periods(_events(t, users), "user")
                user_sig += int(table["significant"].sum())
                user_scored += int(table["best_period_hours"].notna().sum())  # had a band to search
        n_warnings += len(caught)
        for name, periods in by.items():
            faps[name].append(_min_fap(periods))
            found = [round(p.period_hours, 2) for p in periods if p.significant]
            if found:
                hits[name].append({"seed": seed, "periods_h": found})
    out: dict = {"logs": seeds, "events_mean": round(events / seeds), "warnings": n_warnings,
                 "seconds_per_log": round(float(np.mean(seconds)), 4), "seconds_max": round(max(seconds), 3)}
    for name in ("users", "events"):
        f = np.asarray(faps[name])
        out[f"counted_by_{name}"] = {"false_alarm_rate": len(hits[name]) / seeds,
                                     "share_fap_below": {str(a): float((f < a).mean()) for a in (0.01, 0.05, 0.2)},
                                     "significant_logs": hits[name]}
    if kind == "poisson_users":
        out["per_user"] = {"significant_users": user_sig, "users_with_a_searchable_band": user_scored,
                           "share": user_sig / max(user_scored, 1)}
    return out


def run_million(n: int) -> dict:
    """One user, one event per second for ``n`` seconds: the global test both ways and the per-user table."""
    t = T0 + np.arange(n, dtype=np.int64)
    users = np.zeros(n, dtype=np.int64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        by_users, by_events = get_periods(t, users=users), get_periods(t)
        global_s = time.perf_counter() - start
        events = _events(t, users)
        start = time.perf_counter()
        table = get_dominant_periods(events, "user")
        user_s = time.perf_counter() - start
    return {"events": n, "significant_periods": [p.period_hours for p in by_users + by_events if p.significant],
            "user_significant": bool(table["significant"].any()), "warnings": len(caught),
            "seconds_global_both_ways": round(global_s, 3), "seconds_per_user_table": round(user_s, 3)}


def run_power(seeds: int) -> dict:
    """Share of planted-daily logs (the Poisson null thinned by 1 + a cos, ~15-20k events) where 24 h is the
    top significant period, counted by active users, per amplitude a."""
    out = {}
    for amplitude in (0.1, 0.2, 0.5):
        found = 0
        for seed in range(seeds):
            t, users = planted_daily_log(seed, amplitude)
            periods = get_periods(t, users=users)
            found += bool(periods) and periods[0].significant and abs(periods[0].period_hours - 24) / 24 < 0.02
        out[str(amplitude)] = found / seeds
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100, help="logs per null kind")
    parser.add_argument("--million", type=int, default=1_000_000, help="events of the single constant-rate user")
    parser.add_argument("--power-seeds", type=int, default=20, help="planted logs per amplitude")
    args = parser.parse_args()
    started = time.perf_counter()
    result = {"bench": "periodicity_null", "alpha": ALPHA, "machine": host_info(),
              "poisson_users": run_null("poisson_users", args.seeds),
              "constant_rate": run_null("constant_rate", args.seeds),
              "one_user_constant_rate": run_million(args.million),
              "planted_daily_found": run_power(args.power_seeds)}
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""Periodicity finds no rhythm where there is none (issue 16, item 6), and still finds a planted one.

The two null logs are the reviewer's: Poisson users with fixed event counts (each user a homogeneous Poisson
process that stops after its n events, so the log's rate drifts as users finish: smooth red power, no line)
and constant-rate logs (one event every g seconds: no randomness at all, only deterministic ripples from the
bin grid). bench/periodicity_null.py runs the same generators over 100 seeds each and a 1M-event user.
Every test here turns warnings into errors: the old code printed a divide-by-zero RuntimeWarning.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqrec_core.patterns import get_dominant_periods, get_periods

pytestmark = pytest.mark.filterwarnings("error")

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_704_067_200  # 2024-01-01 00:00 UTC
DAY, HOUR = 86400, 3600


def poisson_users(rng: np.random.Generator, n_users: int, per_user: int, gap_s: float,
                  staggered: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each user a homogeneous Poisson process (exponential gaps of mean ``gap_s``) stopped after ``per_user``
    events, all starting together or at uniform times; returns (unix seconds, user code) per event."""
    start = rng.uniform(0, per_user * gap_s, n_users) if staggered else np.zeros(n_users)
    t = T0 + rng.integers(0, DAY) + start[:, None] + np.cumsum(rng.exponential(gap_s, (n_users, per_user)), axis=1)
    return t.astype(np.int64).ravel(), np.repeat(np.arange(n_users), per_user)


def poisson_users_log(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The Poisson null: sizes from 20 users x 20 events to 2,000 x 200, mean gaps 10 min to a day."""
    rng = np.random.default_rng(seed)
    return poisson_users(rng, int(rng.choice([20, 100, 500, 2000])), int(rng.choice([20, 60, 200])),
                         float(rng.choice([600, HOUR, 6 * HOUR, DAY])), bool(rng.random() < 0.5))


def constant_rate_log(seed: int, max_events: int = 1_000_000) -> tuple[np.ndarray, np.ndarray]:
    """The constant-rate null: one event every g seconds (gaps that do not divide an hour alias against the
    hourly bins), from a random second of the day, shared round-robin or at random among 1 to 1,000 users."""
    rng = np.random.default_rng(seed)
    gap = int(rng.choice([1, 2, 3, 5, 7, 10, 13, 30, 60]))
    n = min(max_events, int(rng.choice([10_000, 100_000, 1_000_000])))
    n_users = int(rng.choice([1, 10, 1000]))
    t = T0 + int(rng.integers(0, DAY)) + gap * np.arange(n, dtype=np.int64)
    users = np.arange(n) % n_users if rng.random() < 0.5 else rng.integers(0, n_users, n)
    return t, users


def planted_daily_log(seed: int, amplitude: float) -> tuple[np.ndarray, np.ndarray]:
    """The Poisson null (500 staggered users, 40 events 3 h apart on average) thinned by a daily rate
    1 + amplitude * cos(2 pi (hour - 20) / 24): the drift of the null plus a 24 h rhythm."""
    rng = np.random.default_rng(seed)
    t, users = poisson_users(rng, 500, 40, 3 * HOUR, staggered=True)
    rate = 1 + amplitude * np.cos(2 * np.pi * ((t % DAY) / HOUR - 20) / 24)
    keep = rng.uniform(0, 1 + amplitude, len(t)) < rate
    return t[keep], users[keep]


def _events(times: np.ndarray, users: np.ndarray) -> pd.DataFrame:
    """Canonical event table (one item: only times matter here), sorted by user then time."""
    order = np.lexsort((times, users))
    codes, names = pd.factorize(users[order])
    return pd.DataFrame({"user_id": pd.array(np.char.add("u", names.astype(str)).astype(object)[codes], dtype="str"),
                         "item_id": pd.array(np.full(len(times), "i"), dtype="str"),
                         "timestamp": pd.to_datetime(times[order], unit="s", utc=True)})


def _significant(times: np.ndarray, users: np.ndarray | None) -> list[float]:
    return [p.period_hours for p in get_periods(times, users=users) if p.significant]


@pytest.mark.parametrize("seed", range(12))
def test_poisson_users_with_fixed_counts_have_no_significant_period(seed: int) -> None:
    t, users = poisson_users_log(seed)
    assert _significant(t, users) == [] and _significant(t, None) == []


@pytest.mark.parametrize("seed", range(12))
def test_constant_rate_logs_have_no_significant_period(seed: int) -> None:
    t, users = constant_rate_log(seed, max_events=200_000)
    assert _significant(t, users) == [] and _significant(t, None) == []


def test_the_reviewers_logs_no_longer_show_a_period() -> None:
    """One event a second for 1M seconds: was 87.5 h, 'significant' (FAP 0), counting events."""
    t = T0 + np.arange(1_000_000, dtype=np.int64)
    assert _significant(t, None) == [] and _significant(t, np.arange(len(t)) % 10) == []
    rng = np.random.default_rng(0)  # the tests' Poisson users: 200 x 60 events a day apart on average
    t, users = poisson_users(rng, 200, 60, DAY, staggered=False)
    assert _significant(t, users) == [] and _significant(t, None) == []


def test_a_planted_daily_rhythm_is_still_found_through_the_drift() -> None:
    t, users = planted_daily_log(seed=0, amplitude=0.5)
    for counted_by in (users, None):
        top = get_periods(t, users=counted_by)[0]
        assert top.significant and abs(top.period_hours - 24) / 24 < 0.02 and top.false_alarm < 1e-4, top
    weak = planted_daily_log(seed=1, amplitude=0.05)  # 5% modulation in ~20k events: below what noise allows
    assert not any(abs(h - 24) < 1 for h in _significant(*weak))


def test_one_user_with_a_million_constant_rate_events() -> None:
    """Fast, no period, no warning: globally, for the user, and for the items they touch."""
    t = T0 + np.arange(1_000_000, dtype=np.int64)
    users = np.zeros(len(t), dtype=np.int64)
    assert get_periods(t, users=users) == [] and get_periods(t) == []
    table = get_dominant_periods(_events(t, users), "user")
    assert len(table) == 1 and not table["significant"].any() and table["period_hours"].isna().all()


def test_degenerate_series_give_no_period_and_no_warning() -> None:
    """Series with no noise floor: constant presence (the user active every hour: zero variance), counts
    rising exactly linearly (nothing left after detrending), and users each clicking at a fixed rate."""
    hours = np.arange(24 * 30)
    ramp = np.repeat(T0 + hours * HOUR, 1 + hours // 24)  # one more event each day, same second of the hour
    assert not any(p.significant for p in get_periods(ramp))
    rng = np.random.default_rng(3)
    gaps = rng.integers(1, 600, 40)
    times = [T0 + int(rng.integers(0, DAY)) + g * np.arange(3000, dtype=np.int64) for g in gaps]
    ev = _events(np.concatenate(times), np.repeat(np.arange(40), 3000))
    table = get_dominant_periods(ev, "user")
    assert len(table) == 40 and not table["significant"].any()
    assert not get_dominant_periods(ev, "item")["significant"].any()


def test_cli_patterns_on_a_constant_rate_log_reports_no_period_and_no_warning(tmp_path: Path) -> None:
    """The reviewer's command on a constant-rate log: one event every 7 s for 58 h (the lattice aliases against
    hourly bins), three users taking turns, so each is active every hour. RuntimeWarnings are errors in the
    subprocess: one would exit non-zero."""
    n = 30_000
    path = tmp_path / "constant.csv"
    pd.DataFrame({"user_id": np.char.add("u", (np.arange(n) % 3).astype(str)),
                  "item_id": np.char.add("i", (np.arange(n) % 40).astype(str)),
                  "timestamp": T0 + 7 * np.arange(n)}).to_csv(path, index=False)
    proc = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "seqrec_core", "patterns",
                           "--data", str(path)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    out = json.loads(proc.stdout)
    assert not any(p["significant"] for p in out["periods"]), out["periods"]
    assert all(row["dominant_period_hours"] is None for row in out["per_user"])

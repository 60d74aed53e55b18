"""The demo log is deterministic, the promised size, and its planted structure is really there."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seqrec_core.data.prep import prepare_events
from seqrec_core.data.sequences import build_sequences
from seqrec_core.data.synthetic import DemoTruth, make_demo_events


@pytest.fixture(scope="module")
def demo() -> tuple[pd.DataFrame, DemoTruth]:
    return make_demo_events(seed=0)


@pytest.fixture(scope="module")
def seqs(demo) -> dict[str, np.ndarray]:
    events, _ = demo
    return {u: g["item_id"].to_numpy() for u, g in events.groupby("user_id", sort=True)}


def test_same_seed_same_log_other_seed_other_log(demo) -> None:
    events, truth = demo
    again, truth_again = make_demo_events(seed=0)
    pd.testing.assert_frame_equal(events, again)
    assert truth == truth_again
    other, _ = make_demo_events(seed=1)
    assert not other["item_id"].equals(events["item_id"])


def test_size_shape_and_canonical_form(demo) -> None:
    events, truth = demo
    assert events["user_id"].nunique() == 2000 and 90_000 <= len(events) <= 110_000
    lengths = events.groupby("user_id").size()
    assert lengths.min() >= 20 and lengths.max() <= 120 and 45 <= lengths.mean() <= 55
    assert str(events["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert events.equals(events.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True))
    assert events[["item_title", "item_category"]].notna().all().all()
    assert 10 <= events["item_category"].nunique() <= 15
    assert events.groupby("item_id")["item_title"].nunique().max() == 1  # one title per item
    assert events["item_title"].str.contains(r"#\d+$").mean() > 0.5  # readable, e.g. "Trail running shoes #12"
    span = events["timestamp"].max() - events["timestamp"].min()
    assert pd.Timedelta(days=80) <= span <= pd.Timedelta(days=91)
    cleaned, report = prepare_events(events)
    assert len(cleaned) == len(events) and not report.warnings


def test_daily_and_weekly_rhythm(demo) -> None:
    events, truth = demo
    hours = events["timestamp"].dt.hour.value_counts().reindex(range(24), fill_value=0)
    top2 = hours.sort_values(ascending=False).index[:2]
    assert {min(abs(h - p) for p in truth.peak_hours) for h in top2} <= {0, 1}
    assert hours[truth.peak_hours].min() > 3 * hours[[3, 4, 5]].mean()
    per_day = events.groupby(events["timestamp"].dt.floor("D")).size()
    weekend = per_day[per_day.index.day_of_week >= 5].mean()
    weekday = per_day[per_day.index.day_of_week < 5].mean()
    assert weekend > 1.3 * weekday


def test_sessions_make_inter_event_times_bursty(demo) -> None:
    events, _ = demo
    gaps = events.groupby("user_id")["timestamp"].diff().dropna().dt.total_seconds().to_numpy()
    assert np.median(gaps) < 600 and np.mean(gaps) > 20 * np.median(gaps)  # minutes within, days between
    assert gaps.std() / gaps.mean() > 1.5  # burstier than Poisson (coefficient of variation 1)


def test_bursts_are_concentrated_in_their_windows(demo) -> None:
    events, truth = demo
    assert len(truth.burst_items) == 8
    for burst in truth.burst_items:
        assert pd.Timedelta(days=2) <= burst["end"] - burst["start"] <= pd.Timedelta(days=3)
        ts = events.loc[events["item_id"] == burst["item"], "timestamp"]
        inside = ((ts >= burst["start"]) & (ts < burst["end"])).mean()
        assert len(ts) >= 50 and inside > 0.8


def test_short_range_transitions(seqs, demo) -> None:
    _, truth = demo
    hits = total = 0
    for s in seqs.values():
        for a, b in zip(s[:-1], s[1:], strict=True):
            if a in truth.transitions:
                total += 1
                hits += truth.transitions[a] == b
    assert total > 1000 and hits / total > 0.5


def test_trigger_response_pairs_at_lag_20_to_40(seqs, demo) -> None:
    _, truth = demo
    lo, hi = truth.pair_lag
    assert (lo, hi) == (20, 40) and len(truth.trigger_response) == 10
    response_of = dict(truth.trigger_response)
    trigger_of = {r: t for t, r in truth.trigger_response}
    followed = complete = responses = orphans = 0
    for s in seqs.values():
        for i, x in enumerate(s):
            if x in response_of and i + hi < len(s):  # the whole window is observed
                complete += 1
                followed += response_of[x] in s[i + lo:i + hi + 1]
            if x in trigger_of:
                responses += 1
                orphans += trigger_of[x] not in s[max(0, i - hi):i - lo + 1]
    assert complete > 500 and followed / complete > 0.85
    assert responses > 1000 and orphans == 0  # a response never appears without its trigger 20-40 before


def test_response_users_end_with_a_planted_response(seqs, demo) -> None:
    _, truth = demo
    trigger_of = {r: t for t, r in truth.trigger_response}
    assert len(truth.response_users) >= 0.15 * len(seqs)
    for user in truth.response_users:
        s = seqs[user]
        assert s[-1] in trigger_of
        lags = [lag for lag in range(truth.pair_lag[0], truth.pair_lag[1] + 1) if s[-1 - lag] == trigger_of[s[-1]]]
        assert len(lags) == 1
    others = set(seqs) - set(truth.response_users)
    assert sum(seqs[u][-1] in trigger_of for u in others) == 0


def test_clockwork_users_act_daily_at_one_hour_and_poisson_users_at_random(demo) -> None:
    events, truth = demo
    assert (0.05 * 2000 < len(truth.clockwork_users) < 0.12 * 2000
            and 0.05 * 2000 < len(truth.poisson_users) < 0.12 * 2000)
    assert not set(truth.clockwork_users) & set(truth.poisson_users)
    t = events.set_index("user_id")["timestamp"]
    for user in truth.clockwork_users[:50]:
        gaps_h = np.diff(t.loc[user].astype("int64").to_numpy() // 10**9) / 3600
        assert np.allclose(gaps_h, 24, atol=10 / 60)  # once a day, within the +-5 minute jitter
    cvs = []
    for user in truth.poisson_users[:50]:
        gaps = np.diff(t.loc[user].astype("int64").to_numpy() // 10**9).astype(float)
        cvs.append(gaps.std() / gaps.mean())
    assert 0.8 < np.median(cvs) < 1.2  # exponential gaps: coefficient of variation 1 (sessions give >> 1)


def test_small_demo_keeps_its_structure_and_builds_sequences() -> None:
    events, truth = make_demo_events(n_users=60, events_per_user=50, n_items=120, seed=5)
    assert events["user_id"].nunique() == 60 and events["item_id"].nunique() <= 120
    assert truth.trigger_response and truth.response_users
    data = build_sequences(events)
    assert data.n_users == 60 and data.has_time and data.n_events == len(events)


def test_daypart_categories_are_bought_more_in_their_daypart(demo) -> None:
    events, truth = demo
    hour = events["timestamp"].dt.hour.to_numpy()
    assert truth.daypart_categories == {"06-15": ["Coffee", "Kitchen", "Garden"], "17-24": ["Gaming", "Audio", "Books"]}
    for span, names in truth.daypart_categories.items():
        h0, h1 = (int(x) for x in span.split("-"))
        inside = (hour >= h0) & (hour < h1)
        share_in = events["item_category"][inside].isin(names).mean()
        share_out = events["item_category"][~inside].isin(names).mean()
        assert share_in > 1.5 * share_out  # e.g. Coffee/Kitchen/Garden ~2x as common by day as at other hours

"""The pattern report (one call for the page, the CLI and the benchmark) and its ties to a trained model:
metrics per segment, inside vs outside bursts, and where the attribution mass sits in time."""
from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from seqrec_core.data.synthetic import make_demo_events
from seqrec_core.errors import InputError
from seqrec_core.patterns.model_ties import (
    ASPECTS,
    INSIDE,
    NEVER,
    OUTSIDE,
    compute_attribution_time_mass,
    get_attribution_time_mass,
    get_burst_split_metrics,
    get_metrics_by_segment,
)
from seqrec_core.patterns.report import PatternReport, get_pattern_report, get_timeline

CONTRACT_KEYS = {"periods", "burstiness", "memory", "per_user", "bursts"}


@pytest.fixture(scope="module")
def demo():
    """A smaller demo log (same planted daily/weekly rhythm and item bursts) and its truth."""
    return make_demo_events(n_users=600, seed=5)


@pytest.fixture(scope="module")
def report(demo) -> PatternReport:
    calls = []
    rep = get_pattern_report(demo[0], tz="UTC", progress=lambda text, share: calls.append((text, share)))
    rep.progress_calls = calls  # type: ignore[attr-defined] - inspected by one test
    return rep


def test_report_finds_the_planted_structure(report, demo):
    events, truth = demo
    hours = [p.period_hours for p in report.periods if p.significant]
    for planted in (truth.daily_period_hours, truth.weekly_period_hours):
        assert any(abs(h - planted) <= 0.02 * planted for h in hours), (planted, hours)
    assert -1 <= report.burstiness <= 1 and np.isfinite(report.memory)
    assert report.hour_weekday.shape == (7, 24) and report.hour_weekday.to_numpy().sum() == len(events)
    assert report.daily["events"].sum() == len(events)
    assert report.events == len(events) and report.users == events["user_id"].nunique()
    # per_user: one row per user, segments add up, each user's segment known
    assert set(report.per_user.columns) >= {"user", "events", "burstiness", "memory", "dominant_period_hours",
                                            "segment"}
    assert report.per_user["user"].is_unique
    assert report.segments["users"].sum() == len(report.per_user)
    assert 0.0 <= report.repeats.repeat_share <= 1.0
    summary = report.segment_summary()
    assert summary["share"].sum() == pytest.approx(1.0)
    # the planted item bursts come back
    from seqrec_core.patterns.bursts import burst_f1

    assert burst_f1(report.item_bursts, truth.burst_items)["f1"] >= 0.8
    # the planted timing segments come back: clockwork users periodic, Poisson users Poisson-like, shoppers bursty
    segment = report.per_user.set_index("user")["segment"]
    assert (segment[truth.clockwork_users] == "periodic").mean() >= 0.9
    assert (segment[truth.poisson_users] == "poisson-like").mean() >= 0.9
    shoppers = segment.drop(truth.clockwork_users + truth.poisson_users)
    assert (shoppers == "bursty").mean() >= 0.9


def test_progress_is_reported_in_order(report):
    shares = [s for _, s in report.progress_calls]
    assert shares == sorted(shares) and shares[0] == 0.0 and shares[-1] == 1.0
    assert all(isinstance(t, str) and t for t, _ in report.progress_calls)


def test_to_json_has_the_cli_contract_and_round_trips(report):
    out = report.to_json()
    assert set(out) == CONTRACT_KEYS | {"segments", "repeat_share", "timezone", "user_bursts"}
    text = json.dumps(out, allow_nan=False)  # no NaN may leak: JSON has none
    back = json.loads(text)
    assert back == out
    assert all(set(p) == {"period_hours", "strength", "significant"} for p in out["periods"])
    assert len(out["per_user"]) == len(report.per_user)
    assert set(out["per_user"][0]) == {"user", "events", "burstiness", "memory", "dominant_period_hours"}
    assert out["bursts"], "the demo has planted bursts"
    for b in out["bursts"]:
        start, end = datetime.fromisoformat(b["start"]), datetime.fromisoformat(b["end"])
        assert start.utcoffset().total_seconds() == 0 and start < end and isinstance(b["level"], int)
    assert sum(out["segments"].values()) == len(out["per_user"])
    assert out["timezone"] == "UTC"
    for b in out["user_bursts"]:  # binge sessions: >= 20 events within 6 hours
        assert set(b) == {"user", "start", "end", "level", "events", "minutes"}
        assert b["events"] >= 20 and b["minutes"] <= 360


def test_timezone_moves_the_hours_not_the_events(demo):
    from seqrec_core.patterns.rhythm import get_hour_weekday

    events = demo[0].iloc[:5000]
    utc = get_hour_weekday(events, "UTC").to_numpy()
    tokyo = get_hour_weekday(events, "Asia/Tokyo").to_numpy()  # UTC+9, no daylight saving
    assert utc.sum() == tokyo.sum()
    assert np.array_equal(utc.sum(axis=0), np.roll(tokyo.sum(axis=0), -9))


def test_bad_inputs_raise_one_line_input_errors(demo):
    events = demo[0].iloc[:2000]
    with pytest.raises(InputError, match="Mars/Olympus"):
        get_pattern_report(events, tz="Mars/Olympus")
    ordered = events.assign(timestamp=np.arange(len(events), dtype=np.int64))
    with pytest.raises(InputError, match="no timestamps"):
        get_pattern_report(ordered)


def test_timeline_counts_one_item_and_all_activity(demo):
    events, truth = demo
    item = truth.burst_items[0]["item"]
    tl = get_timeline(events, item=item, bin_hours=6)
    assert tl["events"].sum() == (events["item_id"] == item).sum()
    assert tl["total"].sum() == len(events)
    assert (tl["start"].diff().dropna() == pd.Timedelta(hours=6)).all()
    user = events["user_id"].iloc[0]
    tl = get_timeline(events, user=user, bin_hours=1)
    assert tl["events"].sum() == (events["user_id"] == user).sum()
    burst = truth.burst_items[0]
    zoom = get_timeline(events, item=item, bin_hours=0.25, start=burst["start"], end=burst["end"])
    lo, hi = zoom["start"].iloc[0], zoom["start"].iloc[-1] + pd.Timedelta(minutes=15)
    assert lo <= burst["start"] < lo + pd.Timedelta(minutes=15) and hi - pd.Timedelta(minutes=15) <= burst["end"] < hi
    in_view = (events["item_id"] == item) & (events["timestamp"] >= lo) & (events["timestamp"] < hi)
    assert zoom["events"].sum() == in_view.sum() > 0
    with pytest.raises(InputError, match="no-such-item"):
        get_timeline(events, item="no-such-item")


# ------------------------------------------------------------------------------------------ model ties
@pytest.fixture(scope="module")
def run_and_result(tiny_run, small_dataset):
    from seqrec_core.evaluation import evaluate
    from seqrec_core.runs import load_run

    run = load_run(tiny_run, device="cpu")
    return run, evaluate(run.scorer(), small_dataset.sequences, "test")


def _check_groups(frame: pd.DataFrame, n_users: int) -> None:
    assert frame["users"].sum() == n_users
    for m in ("NDCG@10", "HR@10", "MRR", "AUC", "GAUC"):
        assert frame[m].between(0, 1).all()
        assert (frame[f"{m} lo"] <= frame[m] + 1e-12).all() and (frame[m] <= frame[f"{m} hi"] + 1e-12).all()


def test_metrics_by_segment_partition_the_users(run_and_result, small_dataset):
    _run, result = run_and_result
    users = small_dataset.sequences.vocab.user_ids
    segs = pd.DataFrame({"user": users, "segment": ["bursty" if i % 3 else "periodic" for i in range(len(users))]})
    frame = get_metrics_by_segment(result, small_dataset.sequences, segs.iloc[: len(users) - 10], n_boot=100)
    _check_groups(frame, len(result.users))
    assert set(frame["segment"]) == {"bursty", "periodic", "too few events"}  # the 10 left out
    # the group means recombine to the overall metric
    for m in ("NDCG@10", "AUC"):
        overall = (frame[m] * frame["users"]).sum() / frame["users"].sum()
        assert overall == pytest.approx(result.metrics[m])
    # GAUC weights users by their history: each group's weight is its users' summed history length
    weights = {seg: result.history_len[mask].sum() for seg, mask in _segment_masks(result, small_dataset, segs)}
    gauc = sum(frame.set_index("segment").loc[seg, "GAUC"] * w for seg, w in weights.items()) / sum(weights.values())
    assert gauc == pytest.approx(result.metrics["GAUC"])


def _segment_masks(result, dataset, segs: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    seg_of = dict(zip(segs["user"].iloc[: len(segs) - 10], segs["segment"].iloc[: len(segs) - 10], strict=True))
    labels = np.array([seg_of.get(dataset.sequences.vocab.user_ids[int(u)], "too few events") for u in result.users])
    return [(seg, labels == seg) for seg in np.unique(labels)]


def test_burst_split_puts_targets_inside_their_bursts(run_and_result, small_dataset):
    _run, result = run_and_result
    data = small_dataset.sequences
    split = data.split("test")
    pos = {int(u): i for i, u in enumerate(split.users)}
    rows = [pos[int(u)] for u in result.users[:5]]
    item = [data.vocab.item_id(int(split.targets[i])) for i in rows]
    t = pd.to_datetime(split.target_times[rows], unit="s", utc=True)
    bursts = pd.DataFrame({"item": item, "start": t - pd.Timedelta(minutes=1), "end": t + pd.Timedelta(minutes=1),
                           "level": 1})
    frame = get_burst_split_metrics(result, data, bursts, n_boot=100)
    _check_groups(frame, len(result.users))
    counts = dict(zip(frame["where"], frame["users"], strict=True))
    assert counts[INSIDE] >= 5 and counts.get(NEVER, 0) > 0
    # shifting the windows a week later leaves the same items bursting, but no target inside them
    later = bursts.assign(start=bursts["start"] + pd.Timedelta(days=7), end=bursts["end"] + pd.Timedelta(days=7))
    counts = dict(zip(*get_burst_split_metrics(result, data, later, n_boot=50)[["where", "users"]].T.values,
                      strict=True))
    assert INSIDE not in counts and counts[OUTSIDE] >= 5


def test_attribution_time_mass_against_chance():
    day = 86400
    pred = np.array([10 * day + 20 * 3600, 20 * day + 8 * 3600])  # 20:00 on day 10, 08:00 on day 20
    times = [np.array([9 * day + 20 * 3600, 9 * day + 3 * 3600, 3 * day + 20 * 3600 + 60, 10 * day + 19 * 3600]),
             np.array([19 * day + 8 * 3600, 13 * day + 8 * 3600 + 5])]
    items = [np.array(["a", "b", "c", "d"]), np.array(["b", "e"])]
    attrs = [np.array([3.0, 0.0, -1.0, 0.0]), np.array([0.0, 2.0])]
    bursts = pd.DataFrame({"item": ["a"], "start": [pd.Timestamp(9 * day, unit="s", tz="UTC")],
                           "end": [pd.Timestamp(9 * day + 86399, unit="s", tz="UTC")], "level": [1]})
    frame = get_attribution_time_mass(attrs, times, pred, bursts, history_items=items).set_index("aspect")
    assert list(frame.index) == list(ASPECTS)
    burst, hour, weekday = (frame.loc[a] for a in ASPECTS)
    # prediction 1: |a| = 3 + 1, "a" (3) is inside its burst; prediction 2: nothing bursts -> (0.75 + 0) / 2
    assert burst["share_of_abs_attribution"] == pytest.approx(0.375)
    assert burst["share_of_events"] == pytest.approx((1 / 4 + 0) / 2)
    # same hour: events 0 and 2 of prediction 1 (all its mass), both events of prediction 2 -> 1.0
    assert hour["share_of_abs_attribution"] == pytest.approx(1.0)
    assert hour["share_of_events"] == pytest.approx((2 / 4 + 2 / 2) / 2)
    # weekday: day 3 and day 10 and day 17/24... day 10 % 7 == 3 % 7; day 20 vs 13 -> same weekday
    assert weekday["share_of_abs_attribution"] == pytest.approx((1 / 4 + 1.0) / 2)
    assert frame["predictions"].eq(2).all()
    with pytest.raises(InputError, match="timezone"):
        get_attribution_time_mass(attrs, times, pred, bursts, history_items=items, tz="Nowhere/Land")


def test_attribution_time_mass_on_a_run(run_and_result, small_dataset):
    run, _ = run_and_result
    ticks = []
    frame = compute_attribution_time_mass(run, small_dataset.sequences, pd.DataFrame(columns=["item", "start", "end"]),
                                          n_users=12, steps=4, batch_size=8,
                                          progress=lambda d, t: ticks.append((d, t)))
    assert list(frame["aspect"]) == list(ASPECTS)
    assert frame["share_of_abs_attribution"].between(0, 1).all() and frame["share_of_events"].between(0, 1).all()
    assert frame.loc[0, "share_of_abs_attribution"] == 0  # no bursts given: nothing inside one
    assert frame["predictions"].max() <= 12 and ticks[-1] == (12, 12)


def test_binge_sessions_keep_the_outermost_big_session_per_user():
    from seqrec_core.patterns.report import binge_sessions

    t = pd.Timestamp("2024-01-01", tz="UTC")
    minute = pd.Timedelta(minutes=1)
    bursts = pd.DataFrame([
        {"user": "a", "start": t, "end": t + 90 * minute, "level": 2, "events": 300, "minutes": 90.0},
        {"user": "a", "start": t + 10 * minute, "end": t + 20 * minute, "level": 6, "events": 120, "minutes": 10.0},
        {"user": "a", "start": t + 600 * minute, "end": t + 610 * minute, "level": 4, "events": 40, "minutes": 10.0},
        {"user": "b", "start": t, "end": t + 2 * minute, "level": 9, "events": 25, "minutes": 2.0},
        {"user": "b", "start": t, "end": t + 3 * 24 * 60 * minute, "level": 1, "events": 900, "minutes": 4320.0},
        {"user": "c", "start": t, "end": t + 5 * minute, "level": 3, "events": 5, "minutes": 5.0},
    ])
    out = binge_sessions(bursts, min_events=20, max_hours=6)
    # a's nested level-6 burst is inside its 300-event session; b's 3-day stretch is no session; c is too small
    assert list(zip(out["user"], out["events"], strict=True)) == [("a", 300), ("a", 40), ("b", 25)]
    assert len(binge_sessions(bursts, limit=1)) == 1 and binge_sessions(bursts.iloc[:0]).empty

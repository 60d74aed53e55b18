"""Burst detection: Kleinberg's automata find planted item bursts and user binges, and nothing in pure noise."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seqrec_core.data.synthetic import make_demo_events
from seqrec_core.errors import InputError
from seqrec_core.patterns import user_bursts
from seqrec_core.patterns.burst_automaton import _climb
from seqrec_core.patterns.bursts import (
    ITEM_BURST_COLUMNS,
    USER_BURST_COLUMNS,
    BurstConfig,
    burst_f1,
    get_item_bursts,
    get_user_bursts,
    kleinberg_levels,
)
from seqrec_core.patterns.user_bursts import _continuous_levels

T0 = 1_704_067_200  # 2024-01-01 00:00 UTC
DAY = 86_400


def _log(users: np.ndarray, items: np.ndarray, times: np.ndarray) -> pd.DataFrame:
    order = np.lexsort((times, users))
    return pd.DataFrame({
        "user_id": pd.array([f"u{u}" for u in users[order]], dtype="str"),
        "item_id": pd.array([f"i{i}" for i in items[order]], dtype="str"),
        "timestamp": pd.to_datetime(times[order], unit="s", utc=True).astype("datetime64[ns, UTC]")})


def _rhythmic_times(n: int, days: int, rng: np.random.Generator) -> np.ndarray:
    """Event times with a strong daily rhythm: 10x busier around 20:00 UTC than at night."""
    hours = np.arange(24)
    p_hour = 0.1 + np.exp(-0.5 * ((hours - 20) / 2.0) ** 2)
    return (T0 + rng.integers(0, days, n) * DAY + rng.choice(hours, n, p=p_hour / p_hour.sum()) * 3600
            + rng.integers(0, 3600, n))


def _constant_share_log(n_events: int = 60_000, n_items: int = 500, n_users: int = 1500, days: int = 60,
                        seed: int = 0) -> pd.DataFrame:
    """Each event independently: a random user, an item from fixed Zipf shares, a time with a daily rhythm."""
    rng = np.random.default_rng(seed)
    share = 1.0 / (1 + np.arange(n_items)) ** 0.8
    return _log(rng.integers(0, n_users, n_events), rng.choice(n_items, n_events, p=share / share.sum()),
                _rhythmic_times(n_events, days, rng))


def test_demo_bursts_found_with_high_f1():
    events, truth = make_demo_events(seed=0)
    found = get_item_bursts(events)
    assert list(found.columns) == ITEM_BURST_COLUMNS
    score = burst_f1(found, truth.burst_items)
    assert score["f1"] >= 0.8, score
    assert score["recall"] == 1.0
    top = found.iloc[: len(truth.burst_items)]
    assert (top["share"] > 0.03).all()  # the planted 6% share shows in the report (bins cut the edges a little)
    assert (found["level"].diff().dropna() <= 0).all()  # strongest first


def test_constant_shares_with_daily_rhythm_give_no_bursts():
    events = _constant_share_log()
    assert len(get_item_bursts(events)) <= 1
    # counting events instead of users is the same here: every event is independent
    assert len(get_item_bursts(events, BurstConfig(distinct_users=False))) <= 1


def test_single_planted_burst_has_the_right_start_and_end():
    rng = np.random.default_rng(3)
    events = _constant_share_log(seed=3)
    t = events["timestamp"].astype("int64").to_numpy() // 10**9
    start, end = T0 + 20 * DAY + 5 * 3600 + 1234, T0 + 22 * DAY + 17 * 3600 + 321  # not on bin edges
    inside = (t >= start) & (t < end) & (rng.random(len(t)) < 0.05)
    item = events["item_id"].to_numpy(dtype=object).copy()
    item[inside] = "i499"  # the rarest item
    events["item_id"] = pd.array(item, dtype="str")
    found = get_item_bursts(events)
    assert list(found["item"]) == ["i499"]
    bin_s = 6 * 3600
    got_start, got_end = (int(found[c].iloc[0].value // 10**9) for c in ("start", "end"))
    assert abs(got_start - start) <= bin_s and abs(got_end - end) <= bin_s
    assert found["events"].iloc[0] >= inside.sum() * 0.9
    truth = [{"item": "i499", "start": pd.Timestamp(start, unit="s", tz="UTC"),
              "end": pd.Timestamp(end, unit="s", tz="UTC")}]
    assert burst_f1(found, truth)["f1"] == 1.0


def test_kleinberg_levels_marks_the_block_and_is_the_same_per_stream_or_batched():
    totals = np.full(100, 200)
    flat = np.full(100, 4)  # 2% share throughout
    block = flat.copy()
    block[40:50] = 40  # 20% share for ten bins
    counts = np.stack([flat, block])
    lev = kleinberg_levels(counts, totals)
    assert lev.shape == (2, 100) and lev.dtype == np.int8
    assert (lev[0] == 0).all()
    assert (lev[1, 40:50] >= 1).all() and (lev[1, :40] == 0).all() and (lev[1, 50:] == 0).all()
    assert (lev[1, 40:50] == 2).all()  # 10x the base rate reaches the top of 3 levels
    np.testing.assert_array_equal(kleinberg_levels(block[None, :], totals), lev[1:])
    # a local baseline follows a slow trend instead of calling its second half one long burst
    trend = np.linspace(2, 12, 100).round().astype(int)[None, :]
    assert (kleinberg_levels(trend, totals) >= 1).sum() >= 10  # the last weeks, as one long "burst"
    assert (kleinberg_levels(trend, totals, window=10) >= 1).sum() == 0


def test_transition_step_matches_brute_force():
    rng = np.random.default_rng(0)
    cost = rng.exponential(5.0, (200, 6))
    cost[:20, 3:] = np.inf
    climb = rng.uniform(0.1, 4.0, 200)
    best, back = _climb(cost, climb)
    levels = np.arange(6)
    cand = cost[:, :, None] + climb[:, None, None] * np.maximum(levels[None, :] - levels[:, None], 0)[None]
    np.testing.assert_allclose(best, cand.min(axis=1))
    np.testing.assert_allclose(np.take_along_axis(cand, back[:, None, :].astype(np.int64), axis=1)[:, 0], best)


def _reference_viterbi(emit: np.ndarray, climb: float) -> np.ndarray:
    """Textbook O(T L^2) Viterbi for one stream: emit (T, L) costs, start in state 0, climbing costs per level."""
    n_lev = emit.shape[1]
    tau = climb * np.maximum(np.arange(n_lev)[None, :] - np.arange(n_lev)[:, None], 0)
    cost, back = np.r_[0.0, np.full(n_lev - 1, np.inf)], []
    for row in emit:
        cand = cost[:, None] + tau
        back.append(cand.argmin(axis=0))
        cost = cand.min(axis=0) + row
    state, out = int(cost.argmin()), []
    for b in back[::-1]:
        out.append(state)
        state = int(b[state])
    return np.array(out[::-1])


def test_vectorised_automata_match_a_per_stream_reference():
    rng = np.random.default_rng(5)
    # batched: 30 streams with random bursts, whole-log base rate, 4 levels
    totals = rng.integers(50, 300, 80)
    share = rng.uniform(0.002, 0.05, (30, 1)) * np.where(rng.random((30, 80)) < 0.1, 6.0, 1.0)
    counts = rng.binomial(totals[None, :], np.minimum(share, 1.0))
    lev = kleinberg_levels(counts, totals, s=2.0, gamma=1.0, levels=4)
    for k in range(30):
        p = np.minimum(counts[k].sum() / totals.sum() * 2.0 ** np.arange(4), 1 - 1e-9)
        emit = -counts[k][:, None] * np.log(p) - (totals - counts[k])[:, None] * np.log1p(-p)
        np.testing.assert_array_equal(lev[k], _reference_viterbi(emit, np.log(80)))
    # continuous: users of different lengths (the longest one ends last), gaps with fast stretches
    times, offsets, n_gaps = [], [], []
    for u in range(25):
        n = 80 if u == 7 else int(rng.integers(3, 60))
        gaps = np.where(rng.random(n - 1) < 0.3, rng.integers(0, 5, n - 1), rng.integers(100, 100_000, n - 1))
        if u == 7:
            gaps[-15:] = 1  # the longest user ends inside a burst
        offsets.append(sum(len(x) for x in times))
        n_gaps.append(n - 1)
        times.append(T0 + np.concatenate([[0], np.cumsum(gaps)]))
    flat = np.concatenate(times)
    lev = _continuous_levels(flat, np.array(offsets), np.array(n_gaps), 2.0, 1.0, 6)
    for off, ng, tt in zip(offsets, n_gaps, times, strict=True):
        rate = ng / max(tt[-1] - tt[0], 1) * 2.0 ** np.arange(6)
        emit = rate[None, :] * np.diff(tt)[:, None] - np.log(rate)[None, :]
        np.testing.assert_array_equal(lev[off:off + ng], _reference_viterbi(emit, np.log(ng)))


def _one_pass_levels(times: np.ndarray, offsets: np.ndarray, n_gaps: np.ndarray, s: float, gamma: float,
                     levels: int) -> np.ndarray:
    """The previous ``_continuous_levels``, kept as the reference: one Viterbi pass whose Python loop runs over
    every gap position of the longest user (70 s for one user with 1M events), vectorised over users."""
    gaps = np.diff(times).astype(np.float64)
    level = np.zeros(len(times), dtype=np.int8)
    order = np.argsort(-n_gaps, kind="stable")
    off, ng = offsets[order], n_gaps[order]
    alpha = ng / np.maximum(times[off + ng] - times[off], 1).astype(np.float64)
    rates = alpha[:, None] * s ** np.arange(levels)[None, :]
    neg_ln_rate = -np.log(rates)
    climb = gamma * np.log(np.maximum(ng, 2)).astype(np.float64)
    back = np.zeros((len(times), levels), dtype=np.int8)
    active = np.searchsorted(-ng, -np.arange(int(ng[0])), side="left")
    cost = np.full((len(ng), levels), np.inf)
    cost[:, 0] = 0.0
    final = np.zeros(len(ng), dtype=np.int64)
    for j in range(int(ng[0])):
        na = int(active[j])
        k = off[:na] + j
        step, back[k] = _climb(cost[:na], climb[:na])
        cost[:na] = step + rates[:na] * gaps[k][:, None] + neg_ln_rate[:na]
        done = 0 if j + 1 >= len(active) else int(active[j + 1])
        final[done:na] = np.argmin(cost[done:na], axis=1)
    state = final
    for j in range(int(ng[0]) - 1, -1, -1):
        na = int(active[j])
        k = off[:na] + j
        level[k] = state[:na]
        state[:na] = back[k, state[:na]]
    return level


def _binge_users(rng: np.random.Generator, n_users: int, max_events: int) -> tuple[np.ndarray, np.ndarray,
                                                                                     np.ndarray]:
    """Flat times, offsets and gap counts of users with slow random gaps, fast stretches and a binge each."""
    times, offsets, n_gaps = [], [], []
    for _ in range(n_users):
        n = int(rng.integers(2, max_events))
        gaps = np.where(rng.random(n - 1) < 0.3, rng.integers(0, 5, n - 1), rng.integers(100, 100_000, n - 1))
        at = int(rng.integers(0, n - 1))
        gaps[at:at + int(rng.integers(0, 200))] = rng.integers(0, 3)  # a binge, maybe at the user's very end
        offsets.append(sum(len(x) for x in times))
        n_gaps.append(n - 1)
        times.append(T0 + np.concatenate([[0], np.cumsum(gaps)]))
    return np.concatenate(times), np.array(offsets), np.array(n_gaps)


@pytest.mark.parametrize("seed", range(6))
def test_blocked_user_automaton_matches_the_one_pass_reference(seed: int):
    """Long users cut into blocks joined by min-plus products give the one-pass levels exactly; blocks of 1 and
    7 gaps are raised to the square root of the longest user's gaps (6 to 39), so long users span many blocks."""
    rng = np.random.default_rng(seed)
    flat, offsets, n_gaps = _binge_users(rng, int(rng.integers(1, 25)), int(rng.choice([40, 400, 1500])))
    s, gamma, levels = float(rng.choice([1.5, 2.0, 3.0])), float(rng.choice([0.5, 1.0, 2.0])), int(rng.integers(2, 9))
    want = _one_pass_levels(flat, offsets, n_gaps, s, gamma, levels)
    for block in (1, 7, 100, None):
        np.testing.assert_array_equal(_continuous_levels(flat, offsets, n_gaps, s, gamma, levels, block), want)


def test_user_bursts_are_the_same_with_small_blocks(monkeypatch: pytest.MonkeyPatch):
    """End to end on the demo log: every user one block (the one-pass automaton), or cut into blocks of 11 gaps
    (the square root of the longest user's 119 gaps, above the 8 asked for)."""
    events, _ = make_demo_events(n_users=300, seed=4)
    whole = get_user_bursts(events)
    monkeypatch.setattr(user_bursts, "_BLOCK_GAPS", 8)
    assert len(whole) > 0 and events.groupby("user_id").size().max() > 100
    pd.testing.assert_frame_equal(get_user_bursts(events), whole)


def test_one_user_with_200k_events_gets_their_three_binges():
    """One user, 200k events a minute apart on average, three binges of 300 events 0-2 s apart: the automaton
    runs in blocks (was a Python step per gap, 70 s for 1M events) and reports the binges, nothing else."""
    rng = np.random.default_rng(0)
    n, binges = 200_000, [20_000, 90_000, 170_000]
    gaps = rng.exponential(60.0, n - 1)
    for b in binges:
        gaps[b:b + 299] = rng.integers(0, 3, 299)
    times = T0 + np.concatenate([[0], np.cumsum(gaps)]).astype(np.int64)
    found = get_user_bursts(_log(np.zeros(n, dtype=np.int64), rng.integers(0, 50, n), times))
    start = found["start"].astype("int64").to_numpy() // 10**9
    end = found["end"].astype("int64").to_numpy() // 10**9
    near = [(start >= times[b] - 1800) & (end <= times[b + 299] + 1800) for b in binges]
    assert np.logical_or.reduce(near).all()  # every burst is one of the binges, give or take half an hour
    for b, inside in zip(binges, near, strict=True):
        covers = (start <= times[b] + 60) & (end >= times[b + 299] - 60)
        assert (inside & covers).any(), b  # and each binge is found whole


def test_user_binge_found_in_a_once_a_day_user():
    rng = np.random.default_rng(1)
    days = np.arange(60)
    users, times = [], []
    for u in range(30):  # ordinary users: one event a day at a random hour
        users.append(np.full(60, u))
        times.append(T0 + days * DAY + rng.integers(0, DAY, 60))
    binge_start = T0 + 30 * DAY + 3 * 3600 + 500
    binge = binge_start + np.sort(rng.integers(0, 600, 100))  # 100 events within 10 minutes
    users.append(np.full(160, 99))
    times.append(np.concatenate([T0 + days * DAY + 12 * 3600, binge]))
    users_a, times_a = np.concatenate(users), np.concatenate(times)
    events = _log(users_a, rng.integers(0, 50, len(users_a)), times_a)
    found = get_user_bursts(events)
    assert list(found.columns) == USER_BURST_COLUMNS
    assert (found["user"] == "u99").all()  # nobody else binges
    outer = found.loc[found["events"].idxmax()]  # the binge's outermost burst holds it whole
    assert outer["events"] == 100 and outer["minutes"] <= 10
    assert abs(outer["start"].value // 10**9 - binge_start) <= 600
    assert outer["level"] >= 5  # far faster than once a day: 2**level x the user's mean rate
    inner = found[found["level"] > outer["level"]]  # faster stretches nest inside it
    assert ((inner["start"] >= outer["start"]) & (inner["end"] <= outer["end"])).all()


def test_user_bursts_nest_and_respect_min_events():
    events, _ = make_demo_events(n_users=200, seed=2)
    found = get_user_bursts(events, min_burst_events=5)
    assert len(found) > 0 and (found["events"] >= 5).all()
    assert (found["end"] >= found["start"]).all()
    # Kleinberg's hierarchy: two bursts of one user are disjoint or one lies inside the other
    for _, grp in list(found.groupby("user"))[:40]:
        s, e = grp["start"].to_numpy(), grp["end"].to_numpy()
        overlap = (s[:, None] <= e[None, :]) & (s[None, :] <= e[:, None])
        nested = ((s[:, None] <= s[None, :]) & (e[:, None] >= e[None, :])) | (
            (s[None, :] <= s[:, None]) & (e[None, :] >= e[:, None]))
        assert not (overlap & ~nested).any()
    assert get_user_bursts(events, min_events=10**6).empty


def test_empty_and_small_inputs_return_empty_frames():
    events, _ = make_demo_events(n_users=50, seed=0)
    for frame in (events.iloc[:0], events.iloc[:5]):
        items = get_item_bursts(frame)
        users = get_user_bursts(frame)
        assert items.empty and list(items.columns) == ITEM_BURST_COLUMNS
        assert users.empty and list(users.columns) == USER_BURST_COLUMNS
        assert str(items["start"].dtype) == "datetime64[ns, UTC]"
    assert get_item_bursts(events, BurstConfig(min_events=10**6)).empty


def test_logs_without_timestamps_raise_input_error():
    events, _ = make_demo_events(n_users=50, seed=0)
    ordered = events.assign(timestamp=np.arange(len(events), dtype=np.int64))
    with pytest.raises(InputError, match="timestamps"):
        get_item_bursts(ordered)
    with pytest.raises(InputError, match="timestamps"):
        get_user_bursts(ordered)


def test_bad_settings_raise_input_error():
    events, _ = make_demo_events(n_users=50, seed=0)
    with pytest.raises(InputError):
        get_item_bursts(events, BurstConfig(s=1.0))
    with pytest.raises(InputError):
        get_item_bursts(events, BurstConfig(bin_hours=0))
    with pytest.raises(InputError):
        get_user_bursts(events, levels=1)
    with pytest.raises(InputError):
        kleinberg_levels(np.array([[5, 1]]), np.array([4, 4]))  # more relevant than all events


def test_long_log_gets_wider_bins():
    rng = np.random.default_rng(0)
    n = 5000
    events = _log(rng.integers(0, 100, n), rng.integers(0, 20, n), T0 + rng.integers(0, 3650 * DAY, n))
    found = get_item_bursts(events, BurstConfig(max_bins=500))
    assert list(found.columns) == ITEM_BURST_COLUMNS
    if len(found):
        width = found.attrs["bin_hours"]
        assert width >= 3650 * 24 / 500 and width % 6 == 0


def test_burst_f1_uses_overlap_over_the_planted_interval():
    day = pd.Timedelta(days=1)
    t = pd.Timestamp("2024-01-10", tz="UTC")
    truth = [{"item": "a", "start": t, "end": t + 2 * day}, {"item": "b", "start": t, "end": t + 2 * day}]
    found = pd.DataFrame({"item": ["a", "b", "c"],
                          "start": [t + 0.8 * day, t + 1.2 * day, t],
                          "end": [t + 5 * day, t + 5 * day, t + 2 * day]})
    score = burst_f1(found, truth)  # a: 60% covered (match), b: 40% (miss), c: not planted
    assert score["matched"] == 1
    assert score["precision"] == pytest.approx(1 / 3) and score["recall"] == pytest.approx(0.5)
    assert score["f1"] == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5))
    assert burst_f1(found, truth, min_overlap=0.3)["matched"] == 2
    assert burst_f1(found.iloc[:0], truth)["f1"] == 0.0
    # one found burst cannot recover two planted intervals
    twice = [truth[0], dict(truth[0])]
    assert burst_f1(found.iloc[:1], twice)["matched"] == 1


def test_burstiness_and_memory_in_words_follow_the_segments_thresholds() -> None:
    from seqrec_core.patterns.burstiness import describe_burstiness
    from seqrec_core.patterns.segments import BURSTY_B, REGULAR_B

    assert "comes in bursts" in describe_burstiness(BURSTY_B + 0.01, 0.0)
    assert "as regular as chance" in describe_burstiness(BURSTY_B, 0.0)
    assert "more even than chance" in describe_burstiness(REGULAR_B - 0.01, 0.0)
    assert "long pause tends to follow a long pause" in describe_burstiness(0.0, 0.3)
    assert "alternate" in describe_burstiness(0.0, -0.3)
    assert "Too few users" in describe_burstiness(float("nan"), float("nan"))

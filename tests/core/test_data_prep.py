"""Cleaning steps drop exactly what they promise and say so; the summary numbers match hand counts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seqrec_core.data.prep import PrepOptions, prepare_events
from seqrec_core.data.summary import get_data_summary
from seqrec_core.errors import InputError

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def _events(rows: list[tuple], weights: list[float] | None = None) -> pd.DataFrame:
    """rows: (user, item, minutes after T0)."""
    frame = pd.DataFrame({"user_id": pd.array([r[0] for r in rows], dtype="str"),
                          "item_id": pd.array([r[1] for r in rows], dtype="str"),
                          "timestamp": [T0 + pd.Timedelta(minutes=r[2]) for r in rows]})
    frame["timestamp"] = frame["timestamp"].astype("datetime64[ns, UTC]")
    if weights is not None:
        frame["weight"] = np.asarray(weights, dtype=float)
    return frame.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)


def _random_log(n: int = 3000, users: int = 120, items: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    u = rng.zipf(1.5, n) % users
    i = rng.zipf(1.3, n) % items
    return _events([(f"u{a}", f"i{b}", k) for k, (a, b) in enumerate(zip(u, i, strict=True))])


def test_the_short_history_warning_counts_the_users_the_summary_counts() -> None:
    # raw: 4 users of 4 events and 5 of 1 event (median 1); kept: the 4 users of 4 events (median 4)
    rows = [(f"long{u}", f"i{k}", k) for u in range(4) for k in range(4)] + [(f"one{u}", "i0", 0) for u in range(5)]
    out, report = prepare_events(_events(rows))
    summary = get_data_summary(out)
    assert np.median(summary.seq_lengths) == 4
    assert [w for w in report.warnings if w.startswith("users are short")] == [
        "users are short: median 4 events; sequence models gain little over popularity on very short histories"]


def test_defaults_drop_only_users_too_short_to_evaluate() -> None:
    ev = _events([("a", "x", 0), ("a", "y", 1), ("a", "z", 2), ("b", "x", 0), ("b", "y", 1), ("c", "q", 5)])
    out, report = prepare_events(ev)
    assert out["user_id"].unique().tolist() == ["a"]
    assert (report.rows_in, report.rows_out) == (6, 3)
    (step,) = report.steps
    assert (step.rows_dropped, step.users_dropped, step.items_dropped) == (3, 2, 1)  # users b, c; item q gone
    frame = report.to_frame()
    assert list(frame.columns) == ["step", "rows_dropped", "users_dropped", "items_dropped", "rows_left", "reason"]
    assert frame["rows_left"].tolist() == [3]


def test_rating_threshold_keeps_positive_feedback() -> None:
    rows = [("a", f"i{k}", k) for k in range(6)]
    ev = _events(rows, weights=[5, 4, 1, 2, np.nan, 4.5])
    out, report = prepare_events(ev, PrepOptions(min_rating=4))
    assert out["item_id"].tolist() == ["i0", "i1", "i5"] and (out["weight"] >= 4).all()
    assert report.steps[0].step == "rating >= 4" and report.steps[0].rows_dropped == 3
    with pytest.raises(InputError, match="rating >= 9"):
        prepare_events(ev, PrepOptions(min_rating=9), source="r.csv")
    with pytest.raises(InputError, match="no rating column.*--rating-col"):
        prepare_events(ev.drop(columns="weight"), PrepOptions(min_rating=4))


def test_duplicates_dropped_only_when_asked_and_warned_otherwise() -> None:
    ev = _events([("a", "x", 0), ("a", "x", 0), ("a", "y", 1), ("a", "x", 2), ("a", "z", 3)])
    kept, report = prepare_events(ev)
    assert len(kept) == 5 and any("repeat the same user, item and time" in w for w in report.warnings)
    out, report = prepare_events(ev, PrepOptions(drop_duplicates=True))
    assert out["item_id"].tolist() == ["x", "y", "x", "z"]  # a later repeat at another time is kept
    assert report.steps[0].step == "duplicates" and report.steps[0].rows_dropped == 1


def test_k_core_by_hand() -> None:
    # item z has 1 event -> dropped; then user c has 1 event left -> dropped; then item w falls to 1 -> dropped ...
    rows = [("a", "x", 0), ("a", "y", 1), ("a", "w", 2), ("b", "x", 0), ("b", "y", 1),
            ("c", "z", 0), ("c", "w", 1)]
    out, report = prepare_events(_events(rows), PrepOptions(k_core=2, min_user_events=1))
    assert sorted(zip(out["user_id"], out["item_id"], strict=True)) == [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")]
    step = report.steps[0]
    assert step.step == "2-core" and (step.rows_dropped, step.users_dropped, step.items_dropped) == (3, 1, 2)
    assert "rounds" in step.reason


@pytest.mark.parametrize("k", [2, 3, 5])
def test_k_core_property_every_user_and_item_has_k_events(k: int) -> None:
    out, report = prepare_events(_random_log(), PrepOptions(k_core=k))
    assert out.groupby("user_id").size().min() >= k and out.groupby("item_id").size().min() >= k
    assert report.rows_out == len(out) == report.rows_in - sum(s.rows_dropped for s in report.steps)


def test_k_core_that_empties_the_log_says_so() -> None:
    every_item_once = _events([(f"u{k % 7}", f"i{k}", k) for k in range(70)])
    with pytest.raises(InputError, match="2-core of log.csv is empty.*lower k-core"):
        prepare_events(every_item_once, PrepOptions(k_core=2), source="log.csv")


def test_output_is_canonically_sorted_even_if_input_is_not() -> None:
    ev = _events([("b", "x", 5), ("a", "y", 3), ("a", "x", 1), ("b", "y", 0), ("a", "z", 2), ("b", "z", 9)])
    shuffled = ev.sample(frac=1.0, random_state=1)
    out, _ = prepare_events(shuffled)
    assert out["user_id"].tolist() == ["a"] * 3 + ["b"] * 3
    assert out.groupby("user_id")["timestamp"].apply(lambda s: s.is_monotonic_increasing).all()
    assert out.index.tolist() == list(range(6))


def test_warnings_for_order_only_logs_and_bad_options() -> None:
    ev = pd.DataFrame({"user_id": ["a"] * 4, "item_id": list("wxyz"), "timestamp": np.arange(4, dtype=np.int64)})
    _, report = prepare_events(ev, source="seq.txt")
    assert any("no timestamps" in w for w in report.warnings)
    with pytest.raises(InputError, match="k-core must be >= 0"):
        prepare_events(ev, PrepOptions(k_core=-1))
    with pytest.raises(InputError, match="lacks column"):
        prepare_events(ev.drop(columns="timestamp"))


def test_single_event_users_error_names_the_file_and_the_need() -> None:
    ev = _events([(f"u{k}", "x", k) for k in range(5)])
    with pytest.raises(InputError) as info:
        prepare_events(ev, source="ratings.csv")
    assert "every user in ratings.csv has fewer than 3 events" in str(info.value)


# ------------------------------------------------------------------------------------------------- summary

def test_summary_numbers_by_hand() -> None:
    rows = [("a", "x", 0), ("a", "y", 60), ("a", "x", 120), ("b", "x", 3 * 24 * 60), ("b", "z", 3 * 24 * 60 + 1)]
    ev = _events(rows)
    ev["item_title"] = ["X", "Y", "X", "X", None]
    s = get_data_summary(ev)
    assert (s.users, s.items, s.events) == (2, 3, 5)
    assert s.density == pytest.approx(5 / 6)
    assert s.seq_lengths.tolist() == [3, 2]
    assert s.repeat_share == pytest.approx(1 / 5)  # a's second x
    assert s.time_span == (T0, T0 + pd.Timedelta(minutes=3 * 24 * 60 + 1))
    assert s.events_per_day.tolist() == [3, 0, 0, 2]  # quiet days are zeros, not gaps
    assert s.has_titles and not s.has_categories


def test_summary_without_time_and_when_empty() -> None:
    ev = pd.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "y"], "timestamp": np.arange(2, dtype=np.int64)})
    s = get_data_summary(ev)
    assert s.time_span is None and s.events_per_day is None and s.repeat_share == 0.0
    empty = get_data_summary(ev.iloc[:0])
    assert (empty.users, empty.events, empty.density) == (0, 0, 0.0)

"""The Data page reads session clickstreams as sessions (no user "NA"), says so, and lets a person switch to one
sequence per user; its column mapping offers the session and finer-time columns the loader knows."""
from __future__ import annotations

import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from session_logs import KNOWN_USERS, diginetica_like, yoochoose_like  # noqa: E402
from test_data_page_hostile import data_page, upload, use_this_data  # noqa: E402


def _selected(at: AppTest, label: str) -> object:
    return next(s for s in at.selectbox if s.label == label).value


def _sequences(at: AppTest) -> dict[str, list[str]]:
    events = at.session_state["dataset"].events
    return {u: g["item_id"].tolist() for u, g in events.groupby("user_id", sort=False)}


def test_diginetica_shape_loads_as_sessions_on_the_page() -> None:
    data, true_order = diginetica_like()
    at = upload(data_page(), "train-item-views.csv", data)
    assert not at.error
    assert (_selected(at, "User column"), _selected(at, "Session column")) == ("user_id", "session_id")
    assert (_selected(at, "Time column"), _selected(at, "Finer time column")) == ("eventdate", "timeframe")
    assert next(r for r in at.radio if r.label == "One sequence per").value == "session"
    anonymous = sum(line.split(b";")[1] == b"NA" for line in data.splitlines()[1:]) / (len(data.splitlines()) - 1)
    share = f"'user_id' has no user id on {anonymous:.0%} of rows"
    assert any("Sequences are sessions" in i.value and share in i.value for i in at.info), [i.value for i in at.info]
    use_this_data(at)
    assert not at.error and at.success
    assert _sequences(at) == true_order  # sessions, in timeframe order
    assert next(m for m in at.metric if m.label == "Sessions").value == f"{len(true_order):,}"
    assert any("each sequence is one session" in w.value for w in at.warning)


def test_switching_to_users_follows_people_and_keeps_anonymous_sessions() -> None:
    data, _ = diginetica_like()
    at = upload(data_page(), "train-item-views.csv", data)
    next(r for r in at.radio if r.label == "One sequence per").set_value("user").run()
    use_this_data(at)
    got = _sequences(at)
    assert set(KNOWN_USERS) <= set(got) and "NA" not in got
    assert any(m.label == "Users" for m in at.metric)
    assert any(u.startswith("session ") for u in got)


def test_tab_separated_float_seconds_sessions_load_on_the_page() -> None:
    data, true_order = yoochoose_like()
    at = upload(data_page(), "yoochoose-clicks.dat", data)
    assert (_selected(at, "Session column"), _selected(at, "Time column")) == ("SessionId", "Time")
    use_this_data(at)
    assert not at.error
    assert _sequences(at) == true_order

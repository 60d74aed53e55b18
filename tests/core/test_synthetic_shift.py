"""The demo generator's optional taste shift (issue 17): off by default, so the shipped demo log and runs stay
exactly as they were; on, a group of users moves to a new category in the last weeks, and the truth says who and
which items."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from seqrec_core.data.synthetic import SHIFT_CATEGORY, SHIFT_PROB, SHIFT_TITLES, make_demo_events
from seqrec_core.demo_run import SHIPPED_DEMO_RUN
from seqrec_core.errors import InputError

SMALL = {"n_users": 300, "events_per_user": 30, "n_items": 120, "seed": 5}


@pytest.fixture(scope="module")
def pair() -> tuple[pd.DataFrame, pd.DataFrame, object]:
    plain, _ = make_demo_events(**SMALL)
    shifted, truth = make_demo_events(**SMALL, shift_weeks=3)
    return plain, shifted, truth


def test_default_demo_is_unchanged_and_matches_the_shipped_runs() -> None:
    """shift_weeks=0 is the default and gives the log the shipped runs were trained on (same data fingerprint)."""
    from seqrec_core.data.dataset import DataSource, open_dataset

    events, truth = make_demo_events()
    again, _ = make_demo_events(shift_weeks=0)
    pd.testing.assert_frame_equal(events, again)
    assert truth.shift_start is None and truth.shift_users == [] and truth.shift_items == []
    shipped = json.loads((SHIPPED_DEMO_RUN / "config.json").read_text())["data"]["fingerprint"]
    assert open_dataset(DataSource(path="demo")).fingerprint == shipped


def test_shift_changes_only_the_last_weeks(pair) -> None:
    plain, shifted, truth = pair
    assert truth.shift_start == truth.end - pd.Timedelta(weeks=3)
    assert len(shifted) == len(plain)
    before = plain["timestamp"] < truth.shift_start
    pd.testing.assert_frame_equal(plain[before], shifted[before])  # the old log is the unshifted one
    assert (plain["timestamp"] == shifted["timestamp"]).all() and (plain["user_id"] == shifted["user_id"]).all()


def test_shift_truth_names_the_new_items_and_the_affected_users(pair) -> None:
    plain, shifted, truth = pair
    new = shifted["item_id"].isin(truth.shift_items)
    assert truth.shift_category == SHIFT_CATEGORY and len(truth.shift_items) == len(SHIFT_TITLES)
    assert not set(truth.shift_items) & set(plain["item_id"])  # items that did not exist before
    assert (shifted.loc[new, "timestamp"] >= truth.shift_start).all()
    assert set(shifted.loc[new, "user_id"]) <= set(truth.shift_users)  # only the affected users move
    assert (shifted.loc[new, "item_category"] == SHIFT_CATEGORY).all()
    assert set(shifted.loc[new, "item_title"]) <= set(SHIFT_TITLES)
    late = shifted["timestamp"] >= truth.shift_start
    active = set(shifted.loc[late, "user_id"])
    assert set(truth.shift_users) <= active and 0.2 < len(truth.shift_users) / len(active) < 0.4
    moved = shifted[late & shifted["user_id"].isin(truth.shift_users)]
    share = moved["item_id"].isin(truth.shift_items).mean()  # planted pair events are left alone
    assert SHIFT_PROB - 0.15 < share <= SHIFT_PROB + 0.05, share
    changed = (plain["item_id"] != shifted["item_id"]).to_numpy()
    assert np.array_equal(changed, new.to_numpy())  # every change is a move to a shift item


def test_shift_is_reproducible_and_checked() -> None:
    a, ta = make_demo_events(**SMALL, shift_weeks=2)
    b, tb = make_demo_events(**SMALL, shift_weeks=2)
    pd.testing.assert_frame_equal(a, b)
    assert ta.shift_users == tb.shift_users
    for bad in (-1, 99, 1.5, True):
        with pytest.raises(InputError, match="shift_weeks"):
            make_demo_events(**SMALL, shift_weeks=bad)

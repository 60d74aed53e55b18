"""The code-based (Arrow/numpy) cleaning and indexing give exactly what the plain pandas formulation gave.

The reference functions below are the pandas implementation of ``prepare_events`` / ``build_sequences`` as it
was before the scale work (issue 6), kept here verbatim in substance so any drift in vocabulary order,
sequences, kept rows, the quality report or the fingerprint fails a test. Logs are small and random, with
the cases that matter: string and integer ids, ties in time, exact duplicates, order-only timestamps,
unsorted input, ratings, titles, every cleaning option. ``bench/ingest.py`` measures the 10M-event case.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from seqrec_core.data import arrow_ingest as ai
from seqrec_core.data.dataset import dataset_from_events
from seqrec_core.data.loaders import load_events
from seqrec_core.data.prep import PrepOptions, prepare_events, prepare_events_coded
from seqrec_core.data.sequences import build_sequences, fingerprint_events
from seqrec_core.errors import InputError

T0 = pd.Timestamp("2024-03-01", tz="UTC")


# ------------------------------------------------------------------------------ reference (pandas) formulation

def _ref_sort(events: pd.DataFrame) -> pd.DataFrame:
    events = events.reset_index(drop=True)
    return events.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)


def _ref_fingerprint(events: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for col in ("user_id", "item_id", "timestamp"):
        h.update(pd.util.hash_pandas_object(events[col].reset_index(drop=True), index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def _ref_build(events: pd.DataFrame) -> dict:
    ev = events.sort_values(["user_id", "timestamp"], kind="stable")
    item_ids = sorted(ev["item_id"].astype(str).unique().tolist())
    codes = pd.Categorical(ev["item_id"].astype(str), categories=item_ids).codes.astype(np.int64) + 1
    ts = ev["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(ts):
        times = ((ts - pd.Timestamp(0, tz=ts.dt.tz)) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
    else:
        times = ts.to_numpy(dtype=np.int64)
    user_col = ev["user_id"].astype(str).to_numpy()
    starts = np.flatnonzero(np.r_[True, user_col[1:] != user_col[:-1]])
    ends = np.r_[starts[1:], len(ev)]
    titles = {}
    if "item_title" in ev.columns:
        pairs = ev[["item_id", "item_title"]].dropna().drop_duplicates("item_id")
        titles = dict(zip(pairs["item_id"].astype(str), pairs["item_title"].astype(str), strict=False))
    return {"item_ids": item_ids, "user_ids": [str(user_col[s]) for s in starts],
            "sequences": [codes[s:e] for s, e in zip(starts, ends, strict=False)],
            "times": [times[s:e] for s, e in zip(starts, ends, strict=False)], "titles": titles,
            "fingerprint": _ref_fingerprint(ev)}


def _ref_nunique_drop(before: pd.DataFrame, after: pd.DataFrame, col: str) -> int:
    return int(before[col].nunique() - after[col].nunique())


def _ref_prepare(events: pd.DataFrame, options: PrepOptions) -> tuple[pd.DataFrame, list[tuple], int]:
    """Kept rows and (rows, users, items) dropped per step, plus the duplicate count the warning reports."""
    ev = events.reset_index(drop=True)
    dupes = int(ev.duplicated(["user_id", "item_id", "timestamp"]).sum())
    steps: list[tuple] = []

    def apply(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
        kept = frame[np.asarray(keep, dtype=bool)]
        steps.append((len(frame) - len(kept), _ref_nunique_drop(frame, kept, "user_id"),
                      _ref_nunique_drop(frame, kept, "item_id")))
        return kept

    if options.min_rating is not None:
        ev = apply(ev, ev["weight"] >= options.min_rating)
    if options.drop_duplicates:
        ev = apply(ev, ~ev.duplicated(["user_id", "item_id", "timestamp"]).to_numpy())
    if options.k_core > 1:
        users, items = pd.factorize(ev["user_id"])[0], pd.factorize(ev["item_id"])[0]
        keep = np.ones(len(ev), dtype=bool)
        while True:
            uc = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
            ic = np.bincount(items[keep], minlength=items.max(initial=-1) + 1)
            new = keep & (uc[users] >= options.k_core) & (ic[items] >= options.k_core)
            if new.sum() == keep.sum():
                break
            keep = new
        ev = apply(ev, keep)
    counts = ev.groupby("user_id", sort=False)["user_id"].transform("size").to_numpy()
    ev = apply(ev, counts >= options.min_user_events)
    return _ref_sort(ev), steps, dupes


# ----------------------------------------------------------------------------------------------- random logs

def _random_log(seed: int, n: int = 4000, *, int_ids: bool = False, order_only: bool = False,
                shuffle: bool = True) -> pd.DataFrame:
    """Zipf users/items, coarse times (many ties), some exact duplicates, ratings and titles."""
    rng = np.random.default_rng(seed)
    u = rng.zipf(1.4, n) % 150
    i = rng.zipf(1.2, n) % 300
    t = rng.integers(0, 400, n)  # minutes: plenty of (user, time) ties
    dup = rng.random(n) < 0.05
    u[1:][dup[1:]], i[1:][dup[1:]], t[1:][dup[1:]] = u[:-1][dup[1:]], i[:-1][dup[1:]], t[:-1][dup[1:]]
    frame = pd.DataFrame({
        "user_id": u if int_ids else pd.array([f"user{x}" for x in u], dtype="str"),
        "item_id": i if int_ids else pd.array([f"i{x:x}" for x in i], dtype="str"),  # hex: non-numeric order
        "timestamp": t.astype(np.int64) if order_only
        else (T0 + pd.to_timedelta(t, unit="min")).astype("datetime64[ns, UTC]"),
        "weight": rng.integers(1, 6, n).astype(float),
        "item_title": pd.array([f"Title {x}" for x in i], dtype="str"),
    })
    if not shuffle:
        return _ref_sort(frame)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


OPTIONS = [PrepOptions(), PrepOptions(drop_duplicates=True), PrepOptions(k_core=3), PrepOptions(min_rating=3.0),
           PrepOptions(min_rating=2.0, drop_duplicates=True, k_core=2, min_user_events=4)]


def _assert_same_sequences(got, ref: dict) -> None:
    assert got.vocab.item_ids == ref["item_ids"]
    assert got.vocab.user_ids == ref["user_ids"]
    assert len(got.sequences) == len(ref["sequences"])
    for a, b in zip(got.sequences, ref["sequences"], strict=True):
        assert a.dtype == np.int64 and np.array_equal(a, b)
    for a, b in zip(got.times, ref["times"], strict=True):
        assert a.dtype == np.int64 and np.array_equal(a, b)
    assert list(got.vocab.item_titles.items()) == list(ref["titles"].items())  # order too: vocab.json is stable
    assert got.fingerprint == ref["fingerprint"]


# --------------------------------------------------------------------------------------------------- tests

@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["str", "int_ids", "order_only", "sorted", "other_dtypes"])
def test_build_sequences_matches_the_pandas_formulation(seed: int, kind: str) -> None:
    ev = _random_log(seed, int_ids=kind == "int_ids", order_only=kind == "order_only", shuffle=kind != "sorted")
    if kind == "other_dtypes":  # python-backed strings, object ids, millisecond times before 1970 too
        ev["user_id"] = ev["user_id"].astype("string[python]")
        ev["item_id"] = ev["item_id"].astype(object)
        ev["timestamp"] = (ev["timestamp"] - pd.Timedelta(days=20_000)).astype("datetime64[ms, UTC]")
    _assert_same_sequences(build_sequences(ev), _ref_build(ev))
    assert fingerprint_events(ev) == _ref_fingerprint(ev)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in asdict(o).items()))
@pytest.mark.parametrize("kind", ["str", "int_ids", "order_only"])
def test_prepare_events_keeps_the_same_rows_and_reports_the_same_drops(options: PrepOptions, kind: str) -> None:
    ev = _random_log(7, int_ids=kind == "int_ids", order_only=kind == "order_only")
    out, report = prepare_events(ev, options, source="log.csv")
    ref, ref_steps, ref_dupes = _ref_prepare(ev, options)
    pd.testing.assert_frame_equal(out, ref)
    assert [(s.rows_dropped, s.users_dropped, s.items_dropped) for s in report.steps] == ref_steps
    assert (report.rows_in, report.rows_out) == (len(ev), len(ref))
    dupe_warnings = [w for w in report.warnings if "repeat the same user" in w]
    if options.drop_duplicates or not ref_dupes:
        assert not dupe_warnings
    else:
        assert dupe_warnings and dupe_warnings[0].startswith(f"{ref_dupes:,} events")
    _assert_same_sequences(build_sequences(out), _ref_build(ref))
    cleaned, _, codes = prepare_events_coded(ev, options, source="log.csv")  # dataset_from_events' path
    _assert_same_sequences(build_sequences(cleaned, codes=codes), _ref_build(ref))
    _assert_same_sequences(dataset_from_events(ev, "log.csv", prep=options).sequences, _ref_build(ref))


def test_sort_and_duplicates_from_codes_equal_pandas_on_unsorted_input() -> None:
    ev = _random_log(11)
    codes = ai.event_codes(ev)
    order = ai.canonical_order(codes)
    assert order is not None  # shuffled input needs sorting
    pd.testing.assert_frame_equal(ai.sort_canonical(ev)[0], _ref_sort(ev))
    expected = ev.duplicated(["user_id", "item_id", "timestamp"]).to_numpy()
    assert expected.sum() > 20  # the log does hold duplicates, so the comparison means something
    assert np.array_equal(ai.duplicate_mask(codes, order), expected)
    sorted_ev, sorted_codes = ai.sort_canonical(ev)
    assert ai.canonical_order(sorted_codes) is None
    assert np.array_equal(ai.duplicate_mask(sorted_codes), sorted_ev.duplicated(["user_id", "item_id", "timestamp"]))


@pytest.mark.parametrize("order_from_file", [False, True])
@pytest.mark.parametrize("kind", ["str", "int_ids"])
def test_sort_events_is_a_drop_in_for_the_schema_one(order_from_file: bool, kind: str) -> None:
    """``arrow_ingest.sort_events`` may replace ``schema.sort_events`` (which ``to_canonical`` calls)."""
    from seqrec_core.data import schema

    ev = _random_log(13, int_ids=kind == "int_ids")
    if order_from_file:
        ev["timestamp"] = np.zeros(len(ev), dtype=np.int64)  # what to_canonical passes for logs without time
    expected = schema.sort_events(ev.copy(), order_from_file=order_from_file)
    pd.testing.assert_frame_equal(ai.sort_events(ev.copy(), order_from_file=order_from_file), expected)


def test_filter_rows_equals_boolean_indexing() -> None:
    ev = _random_log(4)
    keep = np.random.default_rng(0).random(len(ev)) < 0.7
    pd.testing.assert_frame_equal(ai.filter_rows(ev, keep), ev[keep])
    assert ai.filter_rows(ev, np.ones(len(ev), dtype=bool)) is ev


def test_order_within_user_equals_groupby_cumcount() -> None:
    ev = _random_log(3)
    got = ai.order_within_user(ai.event_codes(ev))
    assert np.array_equal(got, ev.groupby("user_id", sort=False).cumcount().to_numpy())


def test_sorted_input_is_not_copied() -> None:
    ev = _random_log(5, shuffle=False)
    out, _ = ai.sort_canonical(ev)
    assert np.shares_memory(out["timestamp"].array.asi8, ev["timestamp"].array.asi8)


def test_missing_ids_are_refused_with_the_row() -> None:
    ev = _random_log(2, shuffle=False)
    ev.loc[17, "item_id"] = None
    with pytest.raises(InputError, match=r"log.csv: 1 event has no item id \(first at row 18\)"):
        prepare_events(ev, source="log.csv")


def test_parquet_log_end_to_end_matches_reference(tmp_path) -> None:
    """The validate/train path on a Parquet file: loaders -> prepare -> build, against the reference."""
    rng = np.random.default_rng(0)
    n = 20_000
    users, items = rng.integers(0, 500, n), rng.zipf(1.2, n) % 2000
    times = np.sort(1_700_000_000 + rng.integers(0, 30 * 86400, n))  # a time-ordered export, users interleaved
    raw = pd.DataFrame({"user_id": [f"u{x:05d}" for x in users], "item_id": [f"i{x}" for x in items],
                        "timestamp": times})
    path = tmp_path / "log.parquet"
    raw.to_parquet(path)
    events = load_events(path, "parquet")
    out, _ = prepare_events(events, source="log.parquet")
    ref, _, _ = _ref_prepare(events, PrepOptions())
    pd.testing.assert_frame_equal(out, ref)
    _assert_same_sequences(build_sequences(out), _ref_build(ref))


def test_decode_dictionaries_keeps_values_index_and_plain_columns() -> None:
    import pyarrow as pa

    frame = pd.DataFrame({"u": pd.Categorical(["a", "b", None, "a"]), "v": pd.Categorical([3, 1, 3, 2]),
                          "x": [1.0, 2.0, 3.0, 4.0]}, index=pd.Index([7, 8, 9, 10], name="idx"))
    table = pa.Table.from_pandas(frame)
    out = ai.decode_dictionaries(table).to_pandas()
    assert out["u"].tolist()[:2] == ["a", "b"] and pd.isna(out["u"].iloc[2])
    assert not isinstance(out["u"].dtype, pd.CategoricalDtype) and out["v"].dtype == np.int64
    assert out.index.tolist() == [7, 8, 9, 10] and out.index.name == "idx"
    plain = pa.table({"a": [1, 2]})
    assert ai.decode_dictionaries(plain) is plain

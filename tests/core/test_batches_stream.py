"""Streaming batches: the same windows, order, masking and trimming as the original pre-padded matrix."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seqrec_core.data import build_sequences
from seqrec_core.models.batches import (
    FlatSequences,
    batch_order,
    build_window_source,
    iterate_batches,
    training_time_windows,
    training_windows,
    window_bounds,
)


def reference_bounds(lengths, max_len: int, min_context: int | None):
    """The original per-user loop that cut the windows (kept here as the reference the numpy version must match)."""
    span = max_len + 1
    ctx = int(0.5 * max_len) if min_context is None else int(min_context)
    ctx = min(max(ctx, 0), max_len - 1)
    bounds = []
    for s, n in enumerate(lengths):
        end = int(n)
        while end >= 2:
            start = max(0, end - span)
            if start == 0:
                bounds.append((s, 0, end, 0))
                break
            bounds.append((s, start, end, ctx))
            end = start + 1 + ctx
    return bounds


def reference_matrix(sequences, bounds, span: int) -> np.ndarray:
    """The original pre-padded (N, max_len + 1) matrix."""
    windows = np.zeros((len(bounds), span), dtype=np.int64)
    for i, (s, start, end, _) in enumerate(bounds):
        windows[i, span - (end - start):] = sequences[s][start:end]
    return windows


def random_log(seed: int, n_users: int = 120):
    """Lengths from 1 to 4x max_len (most short, a few long), times strictly increasing per user."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        n = int(rng.choice([1, 2, 3, 5, 9, 12, 13, 14, 30, 57]))
        t = np.cumsum(rng.integers(1, 5000, size=n)) + 1_600_000_000
        rows += [(f"u{u:03d}", f"i{int(i)}", int(ti)) for i, ti in zip(rng.integers(0, 40, size=n), t, strict=True)]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    events["timestamp"] = pd.to_datetime(events["timestamp"], unit="s", utc=True)
    return build_sequences(events)


@pytest.mark.parametrize(("max_len", "min_context"), [(12, None), (12, 0), (12, 11), (5, 2), (1, None), (50, None)])
def test_numpy_bounds_match_the_original_loop(max_len: int, min_context: int | None) -> None:
    lengths = np.random.default_rng(max_len).integers(0, 200, size=300)
    got = window_bounds(lengths, max_len, min_context)
    ref = reference_bounds(lengths, max_len, min_context)
    assert [(int(s), int(a), int(a + n), int(m)) for s, a, n, m in
            zip(got.seq, got.start, got.lengths, got.masked, strict=True)] == ref


@pytest.mark.parametrize("seed", [0, 1])
def test_streamed_batches_equal_the_matrix_batches(seed: int) -> None:
    data = random_log(seed)
    max_len = 12
    seqs = [data.train_sequence(u) for u in range(data.n_users)]
    times = [data.times[u][:len(s)] for u, s in enumerate(seqs)]
    ref = reference_bounds([len(s) for s in seqs], max_len, None)
    windows = reference_matrix(seqs, ref, max_len + 1)
    time_windows = reference_matrix(times, ref, max_len + 1)
    lengths = np.array([e - a for _, a, e, _ in ref], dtype=np.int64)
    masked = np.array([m for *_, m in ref], dtype=np.int64)

    source = build_window_source(seqs, max_len, times=data.times)  # full time arrays: only the prefixes count
    assert source.items.values is data.sequences[0].base  # SequenceData's arrays are used in place, not copied
    np.testing.assert_array_equal(source.lengths, lengths)
    np.testing.assert_array_equal(source.masked, masked)
    for epoch in range(2):  # same rng -> same order; batch 7 leaves ragged last batches
        old = list(iterate_batches(windows, lengths, batch_order(lengths, 7, np.random.default_rng(epoch)), masked,
                                   time_windows))
        new = list(source.iterate(batch_order(source.lengths, 7, np.random.default_rng(epoch))))
        assert len(old) == len(new) > 10
        for a, b in zip(old, new, strict=True):
            assert len(a) == len(b) == 3
            for x, y in zip(a, b, strict=True):
                assert x.dtype == y.dtype and x.shape == y.shape and x.is_contiguous() and y.is_contiguous()
                assert bool((x == y).all())
    # the matrix API callers still use is the same matrix as before
    w2, l2, m2 = training_windows(seqs, max_len)
    np.testing.assert_array_equal(w2, windows)
    np.testing.assert_array_equal(l2, lengths)
    np.testing.assert_array_equal(m2, masked)
    np.testing.assert_array_equal(training_time_windows(times, max_len), time_windows)
    assert source.n_targets == int((lengths - 1 - masked).sum())


def test_separate_arrays_are_concatenated_and_counted_like_the_originals() -> None:
    seqs = [np.arange(1, 31), np.array([5]), np.array([3, 4]), np.array([], dtype=np.int64)]
    flat = FlatSequences.from_arrays(seqs)
    assert flat.starts.tolist() == [0, 30, 31, 33] and flat.lengths.tolist() == [30, 1, 2, 0]
    np.testing.assert_array_equal(flat.bincount(minlength=32), np.bincount(np.concatenate(seqs), minlength=32))
    base = np.arange(100, dtype=np.int64)
    gapped = FlatSequences.from_arrays([base[0:10][:-2], base[10:40][:-2], base[40:41]])
    assert gapped.values is base and gapped.starts.tolist() == [0, 10, 40]
    np.testing.assert_array_equal(gapped.bincount(minlength=100),
                                  np.bincount(np.r_[base[0:8], base[10:38], base[40:41]], minlength=100))


def test_streaming_memory_is_the_events_plus_a_small_table() -> None:
    data = random_log(2, n_users=400)
    seqs = [data.train_sequence(u) for u in range(data.n_users)]
    source = build_window_source(seqs, 50)
    table = sum(a.nbytes for a in (source.bounds.seq, source.bounds.start, source.bounds.lengths,
                                   source.bounds.masked))
    assert table == 32 * len(source)  # four int64 per window, against (max_len + 1) * 8 = 408 in the matrix
    assert source.items.values.nbytes == 8 * data.n_events  # the log itself, shared with SequenceData

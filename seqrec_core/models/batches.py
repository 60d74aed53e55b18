"""Training windows and batches for every neural family.

Windows are a small bounds table (sequence, start, length, masked targets) over the sequences laid out as one
flat event array (CSR-like; zero-copy when the sequences are views of one array, as ``SequenceData`` builds
them), and each batch is gathered from it on demand. Memory is O(events) once plus O(batch), never a
(windows x (max_len + 1)) matrix: at millions of short histories that matrix is many times the log itself.
Batches are trimmed to the longest window in the batch and group windows of similar length ("sortish"
order), so a batch of short histories does not pay for 50 positions of padding.

The matrix functions (:func:`training_windows`, :func:`training_time_windows`, :func:`iterate_batches`) stay for
small callers and tests; :class:`WindowSource` yields exactly the same batches without the matrix.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

MIN_CONTEXT_SHARE = 0.5  # a target in a cut window is trained only with >= this share of max_len events before it
MATRIX_CHUNK = 8192  # windows gathered at a time when the old-style matrix is asked for


@dataclass(frozen=True)
class WindowBounds:
    """Every training window as four (N,) int64 columns; depends only on the sequence lengths, so item and
    time windows are cut identically. Order: sequence by sequence, newest window first (the order batches
    index)."""

    seq: np.ndarray  # (N,) sequence of each window
    start: np.ndarray  # (N,) first event of the window inside its sequence
    lengths: np.ndarray  # (N,) real events of the window (inputs + 1)
    masked: np.ndarray  # (N,) leading targets hidden from the loss (trained in the older window)

    def __len__(self) -> int:
        return len(self.seq)


def window_bounds(lengths: Sequence[int] | np.ndarray, max_len: int, min_context: int | None = None) -> WindowBounds:
    """The windows :func:`training_windows` documents, computed with numpy (no loop over users).

    A sequence of n > max_len + 1 events is cut from its end: window j ends at n - j * step with
    step = max_len - min_context, until a window reaches the sequence start (that last one masks nothing)."""
    span = max_len + 1
    ctx = int(MIN_CONTEXT_SHARE * max_len) if min_context is None else int(min_context)
    ctx = min(max(ctx, 0), max_len - 1)  # each window must train at least one new target
    step = max_len - ctx  # >= 1
    n = np.asarray(lengths, dtype=np.int64).reshape(-1)  # (S,)
    count = np.where(n < 2, 0, 1 + np.maximum(0, -(-(n - span) // step)))  # (S,) windows per sequence
    seq = np.repeat(np.arange(len(n), dtype=np.int64), count)  # (N,)
    first = np.cumsum(count) - count  # (S,) index of each sequence's first window
    j = np.arange(len(seq), dtype=np.int64) - first[seq]  # (N,) window number inside its sequence, 0 = newest
    end = n[seq] - j * step  # (N,)
    start = np.maximum(end - span, 0)
    masked = np.where(start > 0, ctx, 0).astype(np.int64)
    return WindowBounds(seq=seq, start=start, lengths=end - start, masked=masked)


@dataclass(frozen=True)
class FlatSequences:
    """Sequences as one flat array plus where each begins and how long it is (gaps allowed, e.g. the held-out
    events after each user's training prefix)."""

    values: np.ndarray  # (E,) every event value
    starts: np.ndarray  # (S,) int64 offset of sequence s in ``values``
    lengths: np.ndarray  # (S,) int64

    @classmethod
    def from_arrays(cls, arrays: Sequence[np.ndarray]) -> FlatSequences:
        """Zero-copy when every array is a 1-D view of one contiguous array (``np.split`` output and prefixes of
        it, which is what SequenceData holds); otherwise one concatenated copy."""
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        shared = _shared_base(arrays)
        if shared is not None:
            return cls(values=shared[0], starts=shared[1], lengths=lengths)
        values = np.concatenate([np.asarray(a, dtype=np.int64) for a in arrays]) if len(arrays) else \
            np.zeros(0, dtype=np.int64)
        return cls(values=values, starts=np.cumsum(lengths) - lengths, lengths=lengths)

    def bincount(self, minlength: int = 0) -> np.ndarray:
        """Counts of each value over the sequences only (not the gaps), without copying the events."""
        if int(self.lengths.sum()) == len(self.values):  # no gaps: every value belongs to a sequence
            return np.bincount(self.values, minlength=minlength)
        delta = np.zeros(len(self.values) + 1, dtype=np.int8)  # +1 where a sequence starts, -1 after it ends
        np.add.at(delta, self.starts, 1)
        np.add.at(delta, self.starts + self.lengths, -1)
        inside = np.cumsum(delta, dtype=np.int8)[:-1].astype(bool)  # (E,) sequences never overlap: 0 or 1
        return np.bincount(self.values[inside], minlength=minlength)


def _shared_base(arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """(base, starts) when all arrays are unit-stride int64 views of one 1-D contiguous base, else None."""
    if not arrays or not isinstance(arrays[0], np.ndarray):
        return None
    base = arrays[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or base.dtype != np.int64 or not base.flags.c_contiguous:
        return None
    origin = base.__array_interface__["data"][0]
    starts = np.empty(len(arrays), dtype=np.int64)
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray) or a.base is not base or a.ndim != 1 or (len(a) > 1 and a.strides[0] != 8):
            return None
        starts[i] = (a.__array_interface__["data"][0] - origin) // 8
    return base, starts


def _gather(flat: FlatSequences, bounds: WindowBounds, idx: np.ndarray, width: int) -> np.ndarray:
    """(B, width) windows ``idx`` left-padded with 0 to ``width`` columns (width >= their lengths)."""
    lens = bounds.lengths[idx]  # (B,)
    first = flat.starts[bounds.seq[idx]] + bounds.start[idx]  # (B,) offset of each window's first event
    offset = np.arange(width, dtype=np.int64)[None, :] - (width - lens)[:, None]  # (B, width) < 0 = padding
    real = offset >= 0
    out = flat.values.take(np.where(real, first[:, None] + offset, 0))  # (B, width)
    out[~real] = 0
    return out


@dataclass(frozen=True)
class WindowSource:
    """Training windows of a set of sequences (and optionally their times) that batches are cut from on demand."""

    items: FlatSequences
    bounds: WindowBounds
    times: FlatSequences | None = None

    def __len__(self) -> int:
        return len(self.bounds)

    @property
    def lengths(self) -> np.ndarray:
        """(N,) real events per window: what :func:`batch_order` sorts by."""
        return self.bounds.lengths

    @property
    def masked(self) -> np.ndarray:
        return self.bounds.masked

    @property
    def n_targets(self) -> int:
        """Targets trained once per epoch (each training event after a sequence's first, exactly once)."""
        return int((self.bounds.lengths - 1 - self.bounds.masked).sum())

    def iterate(self, batches: Sequence[np.ndarray]) -> Iterator[tuple[torch.Tensor, ...]]:
        """The same tensors :func:`iterate_batches` yields for the matrix of these windows and these batches."""
        for idx in batches:
            idx = np.asarray(idx, dtype=np.int64)
            w = int(self.bounds.lengths[idx].max())  # real events in the longest window, inputs + 1
            block = _gather(self.items, self.bounds, idx, w)  # (B, W + 1)
            yield _batch_tensors(block, w, self.bounds.lengths[idx], self.bounds.masked[idx],
                                 None if self.times is None else _gather(self.times, self.bounds, idx, w))


def build_window_source(sequences: Sequence[np.ndarray], max_len: int, min_context: int | None = None,
                        times: Sequence[np.ndarray] | None = None) -> WindowSource:
    """Windows of :func:`training_windows` (and, with ``times``, :func:`training_time_windows`) without the matrix.

    ``times[s]`` must be at least as long as ``sequences[s]``; its first len(sequences[s]) values are used."""
    items = FlatSequences.from_arrays(sequences)
    flat_times = None
    if times is not None:
        flat_times = FlatSequences.from_arrays(times)
        if len(flat_times.lengths) != len(items.lengths) or (flat_times.lengths < items.lengths).any():
            raise ValueError("times must give one array per sequence, at least as long as it")
    return WindowSource(items=items, bounds=window_bounds(items.lengths, max_len, min_context), times=flat_times)


def _batch_tensors(block: np.ndarray, w: int, lengths: np.ndarray, masked: np.ndarray | None,
                   times: np.ndarray | None) -> tuple[torch.Tensor, ...]:
    """(inputs, targets[, times]) of one (B, W + 1) block; shared by the matrix and the streaming path."""
    targets = block[:, 1:].copy()  # (B, W)
    if masked is not None:
        first_trained = w - lengths + masked  # (B,) column of the first target that is trained
        targets[np.arange(w - 1)[None, :] < first_trained[:, None]] = 0
    inputs = torch.from_numpy(block[:, :-1].copy())  # (B, W)
    if times is None:
        return inputs, torch.from_numpy(targets)
    return inputs, torch.from_numpy(targets), torch.from_numpy(np.ascontiguousarray(times))  # times (B, W + 1)


def _matrix(sequences: Sequence[np.ndarray], max_len: int, min_context: int | None) -> tuple[np.ndarray, WindowBounds]:
    """The (N, max_len + 1) matrix, filled in chunks so the gather's index arrays stay small beside it."""
    flat = FlatSequences.from_arrays(sequences)
    bounds = window_bounds(flat.lengths, max_len, min_context)
    windows = np.empty((len(bounds), max_len + 1), dtype=np.int64)  # (N, L + 1)
    for lo in range(0, len(bounds), MATRIX_CHUNK):
        hi = min(lo + MATRIX_CHUNK, len(bounds))
        windows[lo:hi] = _gather(flat, bounds, np.arange(lo, hi), max_len + 1)
    return windows, bounds


def training_time_windows(times: Sequence[np.ndarray], max_len: int, min_context: int | None = None) -> np.ndarray:
    """(N, max_len + 1) event times aligned with :func:`training_windows` of the sequences these times belong
    to (same cuts, same left padding with 0); a window's last column is its last target's time."""
    return _matrix(times, max_len, min_context)[0]


def training_windows(sequences: Sequence[np.ndarray], max_len: int,
                     min_context: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left-padded windows (N, max_len + 1) covering every training event exactly once as a trained target.

    A sequence longer than max_len + 1 is cut from its end into overlapping windows. Each window's first
    ``min_context`` targets (default half of max_len) are masked: they are trained in the older window, where
    they sit at its end with a full context. Without the overlap, a target just after a cut would be trained
    from one or two events; a pattern spanning 20-40 events (the demo's trigger -> response pairs) then looks
    like noise in a large share of windows, and the model never learns it. Sequences with fewer than 2 events
    teach nothing and are skipped.
    Returns (windows, lengths, masked): lengths (N,) counts the real events of each window, masked (N,) the
    leading targets of each window that ``iterate_batches`` hides from the loss.
    The whole matrix is built at once: for large logs use :func:`build_window_source`.
    """
    windows, bounds = _matrix(sequences, max_len, min_context)
    return windows, bounds.lengths, bounds.masked


def batch_order(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 64) -> list[np.ndarray]:
    """Shuffled batches of window indices, each drawn from a pool of similar lengths.

    Windows are shuffled, then sorted by length within pools of ``pool`` batches and cut into batches, whose
    order is shuffled again: batches differ every epoch but carry little padding.
    """
    perm = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    chunk = batch_size * pool
    for start in range(0, len(perm), chunk):
        part = perm[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def iterate_batches(windows: np.ndarray, lengths: np.ndarray, batches: list[np.ndarray],
                    masked: np.ndarray | None = None, times: np.ndarray | None = None,
                    ) -> Iterator[tuple[torch.Tensor, ...]]:
    """(inputs, targets) LongTensors (B, W) trimmed to the longest window of each batch (CPU; caller moves);
    with ``times`` (the :func:`training_time_windows`) a third tensor (B, W + 1): the inputs' times followed by
    the last target's, i.e. column t + 1 = the query time of input column t.

    Targets are 0 (ignored by the loss) at padding and at each window's ``masked`` leading targets."""
    for idx in batches:
        w = int(lengths[idx].max())  # real events in the longest window, inputs + 1
        block = windows[idx, windows.shape[1] - w:]  # (B, W + 1)
        yield _batch_tensors(block, w, lengths[idx], None if masked is None else masked[idx],
                             None if times is None else times[idx, times.shape[1] - w:])

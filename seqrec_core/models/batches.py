"""Training windows and batches for every neural family.

Batches are built with numpy from one pre-padded matrix (no per-sample Python work per step) and trimmed to
the longest sequence in the batch; batches group sequences of similar length ("sortish" order), so a batch of
short histories does not pay for 50 positions of padding.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

MIN_CONTEXT_SHARE = 0.5  # a target in a cut window is trained only with >= this share of max_len events before it


def _window_bounds(lengths: Sequence[int], max_len: int, min_context: int | None) -> list[tuple[int, int, int, int]]:
    """(sequence, start, end, masked targets) of every training window; depends only on the lengths, so item and
    time windows are cut identically."""
    span = max_len + 1
    ctx = int(MIN_CONTEXT_SHARE * max_len) if min_context is None else int(min_context)
    ctx = min(max(ctx, 0), max_len - 1)  # each window must train at least one new target
    bounds = []
    for s, n in enumerate(lengths):
        end = int(n)
        while end >= 2:
            start = max(0, end - span)
            if start == 0:
                bounds.append((s, 0, end, 0))
                break
            bounds.append((s, start, end, ctx))
            end = start + 1 + ctx  # the older window ends with the targets masked here
    return bounds


def _fill_windows(sequences: Sequence[np.ndarray], bounds: list[tuple[int, int, int, int]], span: int) -> np.ndarray:
    windows = np.zeros((len(bounds), span), dtype=np.int64)  # (N, L + 1)
    for i, (s, start, end, _) in enumerate(bounds):
        windows[i, span - (end - start):] = sequences[s][start:end]
    return windows


def training_time_windows(times: Sequence[np.ndarray], max_len: int, min_context: int | None = None) -> np.ndarray:
    """(N, max_len + 1) event times aligned with :func:`training_windows` of the sequences these times belong
    to (same cuts, same left padding with 0); a window's last column is its last target's time."""
    bounds = _window_bounds([len(t) for t in times], max_len, min_context)
    return _fill_windows(times, bounds, max_len + 1)


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
    """
    bounds = _window_bounds([len(s) for s in sequences], max_len, min_context)
    windows = _fill_windows(sequences, bounds, max_len + 1)
    lengths = np.fromiter((end - start for _, start, end, _ in bounds), dtype=np.int64, count=len(bounds))
    return windows, lengths, np.fromiter((m for *_, m in bounds), dtype=np.int64, count=len(bounds))


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
        targets = block[:, 1:].copy()  # (B, W)
        if masked is not None:
            first_trained = w - lengths[idx] + masked[idx]  # (B,) column of the first target that is trained
            targets[np.arange(w - 1)[None, :] < first_trained[:, None]] = 0
        if times is None:
            yield torch.from_numpy(block[:, :-1].copy()), torch.from_numpy(targets)
        else:
            yield (torch.from_numpy(block[:, :-1].copy()), torch.from_numpy(targets),
                   torch.from_numpy(times[idx, times.shape[1] - w:].copy()))  # (B, W + 1)

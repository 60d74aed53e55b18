"""Repeat consumption: how often users come back to items they had before, after how long, and which items
are re-consumed on a regular cycle (coffee beans every ~3 weeks, a weekly magazine).

Why it matters for the model: a log dominated by repeats rewards "recommend what they had" (and the
"exclude seen items" metric option changes the picture); regular-cycle items are predictable from time alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from seqrec_core.patterns.burstiness import get_iet_histogram
from seqrec_core.patterns.common import times_seconds

HOUR = 3600
_NULL_K = (2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64)
_NULL_DRAWS = 50_000


@lru_cache(maxsize=1)
def _null_cv() -> np.ndarray:
    """Sorted cv of k memoryless (exponential) return times, _NULL_DRAWS draws per k in _NULL_K (fixed seed)."""
    rng = np.random.default_rng(0)
    rows = []
    for k in _NULL_K:
        x = rng.standard_exponential((_NULL_DRAWS, k), dtype=np.float32)
        rows.append(np.sort(x.std(axis=1) / x.mean(axis=1)))
    return np.stack(rows)  # (len(_NULL_K), _NULL_DRAWS)


def _cv_p_value(k: np.ndarray, cv: np.ndarray) -> np.ndarray:
    """P(cv of k exponential intervals <= observed cv). Uses the largest tabulated k not above k (its null
    is wider, so the p-value is conservative); the floor is 1 / (draws + 1)."""
    table = _null_cv()
    row = np.searchsorted(np.asarray(_NULL_K), np.maximum(k, 2), side="right") - 1
    below = np.zeros(len(cv), dtype=np.int64)
    for r in np.unique(row):  # one vectorised lookup per tabulated k
        at = row == r
        below[at] = np.searchsorted(table[r], cv[at], side="right")
    return (below + 1) / (_NULL_DRAWS + 1)


def _bh_keep(p: np.ndarray, alpha: float) -> np.ndarray:
    """Benjamini-Hochberg: which hypotheses to reject at false-discovery rate alpha."""
    order = np.argsort(p)
    passed = p[order] <= alpha * np.arange(1, len(p) + 1) / max(len(p), 1)
    keep = np.zeros(len(p), dtype=bool)
    if passed.any():
        keep[order[: int(np.flatnonzero(passed).max()) + 1]] = True
    return keep


@dataclass(frozen=True)
class RepeatStats:
    repeat_share: float  # share of events whose item the user had before (any earlier event of the pair)
    intervals: pd.DataFrame  # re-consumption interval histogram: bin_left_s, bin_right_s, count, density (log bins)
    regular_items: pd.DataFrame  # item, repeats, median_interval_hours, cv, p_value; most repeats first


def _sorted_pairs(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pair code, item code, time) of every event, sorted by (user, item, time); and the item ids."""
    t = times_seconds(events)
    users, _ = pd.factorize(events["user_id"], sort=False)
    items, item_ids = pd.factorize(events["item_id"], sort=False)
    n_items = max(len(item_ids), 1)
    pair = users.astype(np.int64) * n_items + items.astype(np.int64)
    ids = np.asarray(item_ids, dtype=object)
    if len(t) and int(pair.max()) < (1 << 31) and int(t.max()) - int(t.min()) < (1 << 32):
        t_min = int(t.min())
        key = np.sort((pair << 32) | (t - t_min))  # one int64 sort instead of a lexsort (same order)
        pair = key >> 32
        return pair, pair % n_items, (key & 0xFFFFFFFF) + t_min, ids
    order = np.lexsort((t, pair))
    return pair[order], items.astype(np.int64)[order], t[order], ids


def get_repeat_stats(events: pd.DataFrame, *, min_repeats: int = 3, max_cv: float = 0.5,
                     min_interval_hours: float = 1.0, alpha: float | None = 0.01,
                     bins_per_decade: int = 5) -> RepeatStats:
    """Share of repeat events, the distribution of re-consumption intervals, and items with a regular cycle.

    An item has a regular cycle when at least ``min_repeats`` of its re-consumption intervals (pooled over
    users) are longer than ``min_interval_hours`` and their coefficient of variation (std / mean) is below
    ``max_cv`` (an exponential, memoryless return time has cv = 1). Shorter intervals are re-clicks inside
    one session, not a new consumption: they count as repeats but not towards a cycle.

    A few random intervals often have cv < 0.5 by chance (3 exponential intervals do so 30% of the time, and
    return times bounded by the log's span are less variable still), so with ``alpha`` set an item must also
    beat memoryless returns: ``p_value`` = P(cv of as many exponential intervals <= observed), simulated once
    with a fixed seed; items are kept at false-discovery rate ``alpha`` (Benjamini-Hochberg over the items
    tested). ``alpha=None`` keeps the plain thresholds.
    """
    pair, items, t, item_ids = _sorted_pairs(events)
    empty = pd.DataFrame({"item": pd.Series(dtype="str"), "repeats": pd.Series(dtype="int64"),
                          "median_interval_hours": pd.Series(dtype="float64"), "cv": pd.Series(dtype="float64"),
                          "p_value": pd.Series(dtype="float64")})
    if len(t) == 0:
        return RepeatStats(float("nan"), get_iet_histogram(np.zeros(0), bins_per_decade), empty)
    again = np.concatenate([[False], pair[1:] == pair[:-1]])  # (N,) this event repeats an earlier pair event
    gaps = np.diff(t)[again[1:]].astype(np.float64)  # re-consumption intervals in seconds
    gap_items = items[again]
    hist = get_iet_histogram(gaps, bins_per_decade)

    long = gaps >= min_interval_hours * HOUR
    g_items, g = gap_items[long], gaps[long]
    order = np.lexsort((g, g_items))  # by item, then interval: medians by position
    g_items, g = g_items[order], g[order]
    n = np.bincount(g_items, minlength=len(item_ids))
    s1 = np.bincount(g_items, weights=g, minlength=len(item_ids))
    s2 = np.bincount(g_items, weights=g * g, minlength=len(item_ids))
    cand = np.flatnonzero(n >= max(min_repeats, 2))
    if len(cand) == 0:
        return RepeatStats(float(again.mean()), hist, empty)
    start = np.concatenate([[0], np.cumsum(n)[:-1]])[cand]
    k = n[cand]
    median = 0.5 * (g[start + (k - 1) // 2] + g[start + k // 2])
    mean = s1[cand] / k
    cv = np.sqrt(np.maximum(s2[cand] / k - mean ** 2, 0.0)) / mean
    p_value = _cv_p_value(k, cv)
    keep = cv < max_cv
    if alpha is not None:
        keep &= _bh_keep(p_value, alpha)
    regular = pd.DataFrame({"item": pd.array(item_ids[cand][keep].astype(str), dtype="str"),
                            "repeats": k[keep].astype(np.int64), "median_interval_hours": median[keep] / HOUR,
                            "cv": cv[keep], "p_value": p_value[keep]})
    regular = regular.sort_values(["repeats", "cv"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return RepeatStats(repeat_share=float(again.mean()), intervals=hist, regular_items=regular)

"""User bursts (binge sessions): Kleinberg's *continuous* automaton on each user's inter-event gaps
(Kleinberg 2002, "Bursty and hierarchical structure in streams").

State ``i`` = exponential gaps with rate ``s**i`` times the user's own mean rate, so level k means about ``s**k``
times faster than *that user's* usual pace: hundreds of ratings within minutes stand out, a steady heavy user
does not. Its bursts are Kleinberg's hierarchy: a level-k burst lies inside a burst of every lower level.
Climbing a level costs ``gamma * ln(n)`` (``n`` = the user's gaps); going down is free.

Apart from the item automaton (:mod:`seqrec_core.patterns.bursts`, binned shares of all activity) because this
one runs over gaps, not bins, and needs its own machinery to stay linear: Viterbi is sequential in time, and one
Python step per gap made one user with 1M events take 70 s. So each user's gaps are cut into blocks, the loop runs
over positions within a block (vectorised over every block of every user), and blocks are joined by min-plus
products of their L x L transfer costs (:func:`_continuous_levels`). The Viterbi transition itself is shared
with the item automaton (:mod:`seqrec_core.patterns.burst_automaton`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from seqrec_core.patterns.burst_automaton import _check_params, _climb, _runs, _utc
from seqrec_core.patterns.common import GroupedTimes, group_times

USER_BURST_COLUMNS = ["user", "start", "end", "level", "events", "minutes"]
_BLOCK_GAPS = 4096  # a user with more gaps is cut into blocks of this many (see _continuous_levels)


def _empty_user_bursts() -> pd.DataFrame:
    return pd.DataFrame({
        "user": pd.array([], dtype="str"), "start": _utc(np.zeros(0)), "end": _utc(np.zeros(0)),
        "level": np.zeros(0, np.int64), "events": np.zeros(0, np.int64), "minutes": np.zeros(0, np.float64)})


def _gap_viterbi(gaps: np.ndarray, first: np.ndarray, length: np.ndarray, rates: np.ndarray, climb: np.ndarray,
                 entry: np.ndarray, back: np.ndarray) -> np.ndarray:
    """Forward Viterbi pass over R runs of consecutive gaps, ``gaps[first[r]:first[r] + length[r]]``, rows sorted
    by decreasing length (the rows still running at position j are a prefix). Row r starts from state
    ``entry[r]`` at cost 0, emits with ``rates[r]`` (L,) and climbs at ``climb[r]`` a level. Returns the (R, L)
    cost of ending each row in each state and writes back pointers to ``back`` (indexed like gaps)."""
    cost = np.full(rates.shape, np.inf)  # (R, L)
    cost[np.arange(len(entry)), entry] = 0.0
    neg_ln_rate = -np.log(rates)
    active = np.searchsorted(-length, -np.arange(int(length.max(initial=0))), side="left")  # rows longer than j
    for j, na in enumerate(active.tolist()):
        k = first[:na] + j  # (na,) flat gap index
        step, back[k] = _climb(cost[:na], climb[:na])
        cost[:na] = step + rates[:na] * gaps[k][:, None] + neg_ln_rate[:na]  # -ln exponential density
    return cost


def _transfer_costs(gaps: np.ndarray, first: np.ndarray, length: np.ndarray, rates: np.ndarray,
                    climb: np.ndarray) -> np.ndarray:
    """(B, L, L) cheapest cost through each block (rows as in :func:`_gap_viterbi`) from each entry state (axis
    1) to each exit state (axis 2): a cost-only pass from every entry state at once, the same floats as
    :func:`_climb`. Levels lead the layout: a Python loop over L row-wise minima is ~4x faster than numpy's
    accumulate along a short last axis, and this pass is L times the work of the others."""
    n_lev = rates.shape[1]
    rows = len(first) * n_lev  # row b * L + e: block b entered from state e
    cost = np.full((n_lev, rows), np.inf)
    cost[np.tile(np.arange(n_lev), len(first)), np.arange(rows)] = 0.0
    rate = np.repeat(rates, n_lev, axis=0).T  # (L, rows)
    neg_ln_rate = -np.log(rate)
    climb, start = np.repeat(climb, n_lev), np.repeat(first, n_lev)
    active = np.searchsorted(-length, -np.arange(int(length.max(initial=0))), side="left") * n_lev
    for j, na in enumerate(active.tolist()):
        now = cost[:, :na]
        best = now.copy()
        for lev in range(n_lev - 2, -1, -1):  # stay or go down: the min over the states at or above
            np.minimum(best[lev], best[lev + 1], out=best[lev])
        up = now[0].copy()  # min over i < lev of cost_i - climb * i: climb from below
        for lev in range(1, n_lev):
            np.minimum(best[lev], up + climb[:na] * lev, out=best[lev])
            np.minimum(up, now[lev] - climb[:na] * lev, out=up)
        cost[:, :na] = best + rate[:, :na] * gaps[start[:na] + j][None, :] + neg_ln_rate[:, :na]
    return cost.T.reshape(len(first), n_lev, n_lev)


def _continuous_levels(times: np.ndarray, offsets: np.ndarray, n_gaps: np.ndarray, s: float, gamma: float,
                       levels: int, block_gaps: int | None = None) -> np.ndarray:
    """Level of every gap ``times[k+1] - times[k]`` (indexed by k) for the users given by offsets / gap counts.

    Viterbi is sequential in time, so some Python loop over gap positions is unavoidable; a loop over all of a
    user's positions made one user with 1M events take 70 s (~70 us a step). So users are cut into blocks of
    ``block_gaps`` gaps (default _BLOCK_GAPS; more, the square root of the longest user's gaps, for users so
    long that the loop over blocks would dominate) and the loops run over positions within a block, each step
    vectorised over every block of every user. The state at each block boundary comes from min-plus products
    of the blocks' L x L transfer costs (:func:`_transfer_costs`); given its entry and exit states, a block's
    own Viterbi pass with back pointers retraces the optimal path's piece, so the levels are those of one pass
    over the whole user (up to exact ties). A user with at most ``block_gaps`` gaps is one block: one plain pass.
    """
    gaps = np.diff(times).astype(np.float64)  # gap k lies between events k and k + 1
    level = np.zeros(len(times), dtype=np.int8)
    if len(n_gaps) == 0:
        return level
    ng = np.asarray(n_gaps, dtype=np.int64)
    alpha = ng / np.maximum(times[offsets + ng] - times[offsets], 1).astype(np.float64)  # (U,) events per second
    rates = alpha[:, None] * s ** np.arange(levels)[None, :]  # (U, L)
    climb = gamma * np.log(np.maximum(ng, 2)).astype(np.float64)  # (U,) cost of one level up
    block = max(block_gaps or _BLOCK_GAPS, int(np.ceil(np.sqrt(ng.max()))))  # bounds the loop over blocks too
    n_blocks = -(-ng // block)  # (U,)
    user = np.repeat(np.arange(len(ng)), n_blocks)  # (B,) each block's user, blocks in (user, position) order
    pos = np.arange(len(user)) - np.repeat(np.cumsum(n_blocks) - n_blocks, n_blocks)  # (B,) block of its user
    first = offsets[user] + pos * block  # (B,) flat index of the block's first gap
    length = np.minimum(block, ng[user] - pos * block)  # (B,)
    entry = np.zeros(len(user), dtype=np.int64)  # state before the block (a user's automaton starts at 0)
    exit_state = np.full(len(user), -1, dtype=np.int64)  # state of its last gap; -1: its own pass's argmin
    if (n_blocks > 1).any():
        entry, exit_state = _block_boundaries(gaps, first, length, user, n_blocks, rates, climb, levels)
    order = np.argsort(-length, kind="stable")  # rows still running at position j are a prefix
    first, length, entry, exit_state = first[order], length[order], entry[order], exit_state[order]
    back = np.zeros((len(times), levels), dtype=np.int8)  # (E, L) indexed like gaps
    cost = _gap_viterbi(gaps, first, length, rates[user[order]], climb[user[order]], entry, back)
    state = np.where(exit_state >= 0, exit_state, np.argmin(cost, axis=1))
    active = np.searchsorted(-length, -np.arange(int(length[0])), side="left")
    for j in range(int(length[0]) - 1, -1, -1):
        na = int(active[j])
        k = first[:na] + j
        level[k] = state[:na]
        state[:na] = back[k, state[:na]]
    return level


def _block_boundaries(gaps: np.ndarray, first: np.ndarray, length: np.ndarray, user: np.ndarray,
                      n_blocks: np.ndarray, rates: np.ndarray, climb: np.ndarray,
                      levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit state of every block on its user's optimal path (blocks of one-block users: 0 and -1)."""
    entry = np.zeros(len(user), dtype=np.int64)
    exit_state = np.full(len(user), -1, dtype=np.int64)
    multi = np.flatnonzero(n_blocks[user] > 1)  # blocks of users with several
    order = np.argsort(-length[multi], kind="stable")
    transfer = np.empty((len(multi), levels, levels))  # (M, entry, exit)
    at = multi[order]
    transfer[order] = _transfer_costs(gaps, first[at], length[at], rates[user[at]], climb[user[at]])
    users = np.unique(user[multi])
    users = users[np.argsort(-n_blocks[users], kind="stable")]  # users with more than p blocks are a prefix
    start = np.searchsorted(multi, np.searchsorted(user, users))  # (Um,) row in ``multi`` of each first block
    cost = transfer[start, 0]  # (Um, L): the first block enters from the base state
    best_entry = np.zeros((len(multi), levels), dtype=np.int64)  # per block and exit state: the best entry
    final = np.zeros(len(users), dtype=np.int64)
    alive = np.searchsorted(-n_blocks[users], -np.arange(int(n_blocks[users[0]]) + 1), side="left")
    for p in range(1, int(n_blocks[users[0]])):
        na = int(alive[p])
        cand = cost[:na, :, None] + transfer[start[:na] + p]  # (na, entry, exit)
        best_entry[start[:na] + p] = np.argmin(cand, axis=1)
        cost[:na] = np.min(cand, axis=1)
        done = int(alive[p + 1])  # users [done, na) end with block p
        final[done:na] = np.argmin(cost[done:na], axis=1)
    state = final
    for p in range(int(n_blocks[users[0]]) - 1, 0, -1):
        na = int(alive[p])
        at = multi[start[:na] + p]
        exit_state[at] = state[:na]
        state[:na] = best_entry[start[:na] + p, state[:na]]
        entry[at] = state[:na]
    exit_state[multi[start]] = state  # first blocks: entry 0
    return entry, exit_state


def _auto_levels(grouped: GroupedTimes, keep: np.ndarray, s: float, max_levels: int) -> int:
    """Enough levels for the fastest gap (floored at 1 s) of any user relative to that user's mean rate."""
    t, off, n = grouped.times, grouped.offsets, grouped.counts
    gaps = np.append(np.diff(t).astype(np.float64), np.inf)  # (E,) gap after each event
    gaps[off + n - 1] = np.inf  # a user's last event has no gap
    fastest = np.maximum(np.minimum.reduceat(gaps, off)[keep], 1.0)  # (U,)
    mean_gap = np.maximum(t[off + n - 1] - t[off], 1)[keep] / (n[keep] - 1)  # (U,)
    need = 2 + int(np.ceil(np.log(max(float((mean_gap / fastest).max(initial=1.0)), 1.0)) / np.log(s)))
    return int(min(need, max_levels))


def get_user_bursts(events: pd.DataFrame, *, min_events: int = 20, s: float = 2.0, gamma: float = 1.0,
                    levels: int | None = None, max_levels: int = 16, min_burst_events: int = 5) -> pd.DataFrame:
    """Users' activity bursts (binge sessions): Kleinberg's continuous automaton on each user's gaps.

    A user's base rate is their own mean rate (events over their active span), so level k means about ``s**k``
    times faster than *that user's* usual pace. ``levels=None`` takes enough levels (at most ``max_levels``) for
    the fastest gap in the log. Bursts are Kleinberg's hierarchy: for every level k, each maximal run of gaps at
    level >= k is a burst; a run that equals its parent's interval is listed once, at its highest level, so the
    rows nest (a level-5 binge lies inside the user's level-2 busy weeks). Only users with ``min_events``
    events are analysed; bursts with fewer than ``min_burst_events`` events are dropped. Columns: user, start,
    end (UTC, first and last event inside), level, events, minutes (end - start). Sorted by level, then events,
    descending. Raises InputError for a log without timestamps.
    """
    _check_params(s, gamma, 2 if levels is None else levels)
    grouped = group_times(events, "user")
    keep = np.flatnonzero(grouped.counts >= max(int(min_events), 2))
    if len(keep) == 0:
        return _empty_user_bursts()
    n_lev = _auto_levels(grouped, keep, s, max(int(max_levels), 2)) if levels is None else int(levels)
    t = grouped.times
    level = _continuous_levels(t, grouped.offsets[keep], grouped.counts[keep] - 1, s, gamma, n_lev)
    parts = []
    for k in range(1, int(level.max(initial=0)) + 1):  # runs never cross users: a user's last event has level 0
        starts, ends = _runs(level >= k)
        parts.append(np.stack([starts, ends, np.full(len(starts), k)], axis=1))
    found = np.concatenate(parts) if parts else np.zeros((0, 3), np.int64)
    found = found[found[:, 1] - found[:, 0] + 1 >= max(int(min_burst_events), 2)]
    if len(found) == 0:
        return _empty_user_bursts()
    found = found[np.lexsort((-found[:, 2], found[:, 1], found[:, 0]))]  # same interval: highest level first
    same = np.r_[False, (found[1:, 0] == found[:-1, 0]) & (found[1:, 1] == found[:-1, 1])]
    starts, ends, lev = found[~same].T
    n_ev = ends - starts + 1
    order = np.lexsort((-n_ev, -lev))
    starts, ends, lev, n_ev = starts[order], ends[order], lev[order], n_ev[order]
    users = np.asarray(grouped.ids, dtype=object)[grouped.codes[starts]].astype(str)
    return pd.DataFrame({
        "user": pd.array(users, dtype="str"), "start": _utc(t[starts]), "end": _utc(t[ends]),
        "level": lev.astype(np.int64), "events": n_ev.astype(np.int64), "minutes": (t[ends] - t[starts]) / 60.0})

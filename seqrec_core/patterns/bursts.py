"""Burst detection with Kleinberg's automata (Kleinberg 2002, "Bursty and hierarchical structure in streams").

Items: the *batched* (binomial) automaton. Time is cut into bins; in bin ``t`` an item has ``r_t`` of the
``d_t`` events (or of the active users, see :class:`BurstConfig`). State ``i`` emits the item with probability
``p0 * s**i`` (``p0`` = the item's share), and the cheapest state sequence is found by Viterbi. Because the rate
is a *share of all activity in the bin*, the log's daily and weekly rhythm (busy evenings, quiet nights) does
not make an item look bursty: only a rise in the item's share does.

Users: the *continuous* automaton on each user's inter-event gaps (state ``i`` = exponential gaps with rate
``s**i`` times the user's mean rate), which finds binge sessions such as hundreds of ratings within minutes.
Its bursts are Kleinberg's hierarchy: a level-k burst lies inside a burst of every lower level.

Both Viterbi passes are vectorised across streams: the only Python loop runs over time bins (items) or over the
gap position ``j`` within a block of a user's gaps (arrays over every block longer than ``j``; a long user's
blocks are joined by min-plus products, see :func:`_continuous_levels`), never over items or users.
Climbing a level costs ``gamma * ln(n)`` (``n`` = bins, or a user's gaps); going down is free.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqrec_core.errors import InputError
from seqrec_core.patterns.common import GroupedTimes, group_times, times_seconds

log = logging.getLogger(__name__)

ITEM_BURST_COLUMNS = ["item", "start", "end", "level", "events", "share"]
USER_BURST_COLUMNS = ["user", "start", "end", "level", "events", "minutes"]
_P_CAP = 1.0 - 1e-9  # a state's emission probability must stay below 1 (ln(1 - p) is finite)
_CHUNK_CELLS = 1 << 24  # streams x bins x levels handled at once: bounds the back-pointer memory (~16 MB)
_BLOCK_GAPS = 4096  # a user with more gaps is cut into blocks of this many (see _continuous_levels)


@dataclass(frozen=True)
class BurstConfig:
    """Item-burst detection settings.

    ``bin_hours``: width of a time bin; a burst's start and end are bin edges (UTC, aligned to the epoch).
    ``s``: rate ratio between neighbouring levels. ``gamma``: cost of climbing a level, in units of ln(bins);
    larger means fewer, longer bursts. 2 rather than Kleinberg's 1 because hundreds of items are tested at once:
    with 1, a constant-share Poisson log of 800 items shows ~8 false bursts, with 1.5 or 2 none. ``levels``:
    states including the base state 0. ``min_events``: items with fewer events are not analysed.
    ``max_bins``: a long log gets wider bins (a multiple of ``bin_hours``) so that at most this many are used.
    ``baseline_days``: an item's base rate is its share over the surrounding +-baseline_days (None: over the
    whole log, as in Kleinberg's paper). A slow rise over weeks (an accessory bought late in everyone's
    history) is then a trend, not a burst. ``distinct_users``: count users, not events, per bin (r = users who
    touched the item, d = active users): one user's session of related events is not independent draws, and
    counting events makes popular items over-dispersed (variance ~2x binomial on the demo) and falsely bursty.
    """

    bin_hours: float = 6.0
    s: float = 2.0
    gamma: float = 2.0
    levels: int = 3
    min_events: int = 20
    max_bins: int = 4000
    baseline_days: float | None = 14.0
    distinct_users: bool = True


def _check_params(s: float, gamma: float, levels: int) -> None:
    if not s > 1.0:
        raise InputError(f"burst rate ratio s={s} must be greater than 1 (e.g. 2)")
    if not gamma >= 0.0:
        raise InputError(f"burst transition cost gamma={gamma} must be 0 or more (e.g. 1)")
    if not 2 <= int(levels) <= 64:
        raise InputError(f"burst levels={levels} must be between 2 (the base state and one burst state) and 64")


def _climb(cost: np.ndarray, climb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Viterbi transition: best cost of reaching each state, and the state it came from.

    ``cost`` (n, L) best path cost ending in each state, ``climb`` (n,) cost per level up (down is free). The
    min over from-states is a suffix min (stay or go down) against a prefix min of ``cost_i - climb * i``
    (go up), so a step is O(L) rather than O(L^2).
    """
    n, n_lev = cost.shape
    idx = np.arange(n_lev)[None, :]  # (1, L)
    suf = np.minimum.accumulate(cost[:, ::-1], axis=1)[:, ::-1]  # (n, L) min over i >= j
    suf_at = np.minimum.accumulate(np.where(cost == suf, idx, n_lev)[:, ::-1], axis=1)[:, ::-1]  # its argmin
    up = cost - climb[:, None] * idx  # (n, L)
    pre = np.minimum.accumulate(up, axis=1)  # (n, L) min over i <= j
    pre_at = np.maximum.accumulate(np.where(up == pre, idx, 0), axis=1)  # its argmin
    from_below = np.full_like(cost, np.inf)
    from_below[:, 1:] = pre[:, :-1] + climb[:, None] * idx[:, 1:]  # (n, L) best from i < j
    go_up = from_below < suf
    best = np.where(go_up, from_below, suf)  # (n, L)
    back = np.where(go_up, np.concatenate([np.zeros((n, 1), np.int64), pre_at[:, :-1]], axis=1), suf_at)
    return best, back.astype(np.int8)


def _local_base(counts: np.ndarray, totals: np.ndarray, window: int | None) -> np.ndarray:
    """(N, T) base rate per stream and bin: its share of all events, over the log or over bins t-w..t+w."""
    if window is None:
        p0 = counts.sum(axis=1) / max(float(totals.sum()), 1.0)  # (N,)
        return np.broadcast_to(p0[:, None], counts.shape)
    n, t_len = counts.shape
    lo = np.clip(np.arange(t_len) - window, 0, t_len)  # (T,)
    hi = np.clip(np.arange(t_len) + window + 1, 0, t_len)  # (T,)
    cum = np.zeros((n, t_len + 1))
    np.cumsum(counts, axis=1, out=cum[:, 1:])
    cum_tot = np.concatenate([[0.0], np.cumsum(totals)])
    return (cum[:, hi] - cum[:, lo]) / np.maximum(cum_tot[hi] - cum_tot[lo], 1.0)[None, :]  # (N, T)


def _viterbi_batched(counts: np.ndarray, totals: np.ndarray, s: float, gamma: float, levels: int,
                     window: int | None) -> np.ndarray:
    """One chunk of streams: (N, T) counts -> (N, T) int8 levels."""
    n, t_len = counts.shape
    base = _local_base(counts, totals, window)  # (N, T)
    ratio = s ** np.arange(levels)[None, :]  # (1, L)
    climb = np.full(n, gamma * np.log(max(t_len, 2)))  # (N,)
    cost = np.full((n, levels), np.inf)  # (N, L) best path cost ending in each state
    cost[:, 0] = 0.0  # the automaton starts in the base state
    back = np.empty((t_len, n, levels), dtype=np.int8)  # (T, N, L) best previous state
    for t in range(t_len):
        r = counts[:, t].astype(np.float64)[:, None]  # (N, 1)
        p = np.minimum(base[:, t, None] * ratio, _P_CAP)  # (N, L)
        with np.errstate(divide="ignore", invalid="ignore"):  # p = 0 only where r = 0 in the whole window
            emit = np.where(r > 0, -r * np.log(p), 0.0) - (totals[t] - r) * np.log1p(-p)  # (N, L) -ln binomial
        cost, back[t] = _climb(cost, climb)
        cost += emit  # (N, L)
    out = np.empty((n, t_len), dtype=np.int8)
    state = np.argmin(cost, axis=1)  # (N,)
    for t in range(t_len - 1, -1, -1):
        out[:, t] = state
        state = back[t][np.arange(n), state]
    return out


def kleinberg_levels(counts: np.ndarray, totals: np.ndarray, *, s: float = 2.0, gamma: float = 1.0,
                     levels: int = 3, window: int | None = None) -> np.ndarray:
    """Kleinberg's batched burst automaton for N streams over the same T bins: (N, T) int8 level per bin.

    ``counts[k, t]`` = stream k's events in bin t, ``totals[t]`` = all events in bin t (>= every count). The
    base rate p0 of stream k is its share of all events (Kleinberg's choice), or with ``window`` its share over
    bins t-window..t+window, so that a slow trend is followed rather than reported as one long burst. Level i
    means rate ``p0 * s**i`` (capped below 1); climbing a level costs ``gamma * ln(T)``, going down is free.
    ``gamma=1`` is the paper's value for one stream; :class:`BurstConfig` uses 2 for many items at once.
    """
    _check_params(s, gamma, levels)
    counts = np.asarray(counts)
    totals = np.asarray(totals, dtype=np.float64)
    if counts.ndim != 2 or totals.shape != (counts.shape[1],):
        raise InputError(f"counts must be (streams, bins) and totals (bins,); got {counts.shape} and {totals.shape}")
    if counts.size and (counts.min() < 0 or np.any(counts > totals[None, :])):
        raise InputError("burst counts must be between 0 and the bin's total number of events")
    if window is not None and window < 0:
        raise InputError(f"burst baseline window={window} must be 0 or more bins (or None for the whole log)")
    n, t_len = counts.shape
    out = np.zeros((n, t_len), dtype=np.int8)
    if n == 0 or t_len == 0:
        return out
    step = max(1, _CHUNK_CELLS // (t_len * int(levels)))
    for lo in range(0, n, step):
        out[lo:lo + step] = _viterbi_batched(counts[lo:lo + step], totals, s, gamma, int(levels), window)
    return out


def _runs(active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and exclusive end indices of runs of True in a flat bool array."""
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _utc(seconds: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(seconds, dtype=np.int64), unit="s", utc=True)).as_unit("ns")


def _empty_item_bursts() -> pd.DataFrame:
    return pd.DataFrame({
        "item": pd.array([], dtype="str"), "start": _utc(np.zeros(0)), "end": _utc(np.zeros(0)),
        "level": np.zeros(0, np.int64), "events": np.zeros(0, np.int64), "share": np.zeros(0, np.float64)})


def get_item_bursts(events: pd.DataFrame, cfg: BurstConfig = BurstConfig()) -> pd.DataFrame:
    """Items whose share of all activity rises for a while: one row per burst, strongest first.

    Columns: item, start, end (UTC; bin edges, end exclusive), level (highest level inside), events (the item's
    events inside), share (those events over all events inside). Sorted by level, then events, descending.
    Raises InputError for a log without timestamps.
    """
    _check_params(cfg.s, cfg.gamma, cfg.levels)
    if not cfg.bin_hours > 0 or cfg.max_bins < 1:
        raise InputError(f"burst bin_hours={cfg.bin_hours} must be > 0 and max_bins={cfg.max_bins} at least 1")
    t = times_seconds(events)
    if len(t) == 0:
        return _empty_item_bursts()
    width = max(1, int(round(cfg.bin_hours * 3600)))
    t0 = (int(t.min()) // width) * width
    n_bins = int((int(t.max()) - t0) // width) + 1
    if n_bins > cfg.max_bins:
        factor = -(-n_bins // cfg.max_bins)
        width *= factor
        t0 = (int(t.min()) // width) * width
        n_bins = int((int(t.max()) - t0) // width) + 1
        log.info("item bursts: %d-hour bins (log spans more than max_bins=%d bins of %s h)",
                 width // 3600, cfg.max_bins, cfg.bin_hours)
    bins = (t - t0) // width  # (E,)
    totals = np.bincount(bins, minlength=n_bins).astype(np.int64)  # (T,) all events per bin
    codes, uniques = pd.factorize(events["item_id"], sort=False)
    per_item = np.bincount(codes, minlength=len(uniques))
    kept = np.flatnonzero(per_item >= cfg.min_events)
    if len(kept) == 0:
        return _empty_item_bursts()
    local = np.full(len(uniques), -1, dtype=np.int64)
    local[kept] = np.arange(len(kept))
    ev_local = local[codes]
    key = ev_local * n_bins + bins  # (E,) item-bin cell, negative for items not analysed
    if cfg.distinct_users:  # one count per (user, item, bin) and per (user, bin), from one sort
        users = pd.factorize(events["user_id"], sort=False)[0].astype(np.int64)
        slot = len(kept) + 1  # item slot len(kept) = an item not analysed
        triple = np.sort((users * n_bins + bins) * slot + np.where(ev_local >= 0, ev_local, len(kept)))
        triple = triple[np.r_[True, triple[1:] != triple[:-1]]]  # (user, bin, item) once each
        user_bin, item = np.divmod(triple, slot)
        first = np.r_[True, user_bin[1:] != user_bin[:-1]]
        det_totals = np.bincount(user_bin[first] % n_bins, minlength=n_bins).astype(np.int64)  # (T,) active users
        analysed = item < len(kept)
        cells = np.sort(item[analysed] * n_bins + user_bin[analysed] % n_bins)
    else:
        det_totals, cells = totals, np.sort(key[key >= 0])
    window = None if cfg.baseline_days is None else max(1, int(round(cfg.baseline_days * 86400 / width)))
    step = max(1, _CHUNK_CELLS // (n_bins * int(cfg.levels)))
    ev_keys = np.sort(key[key >= 0])
    cum_tot = np.concatenate([[0], np.cumsum(totals)])
    found = []
    for lo in range(0, len(kept), step):
        hi = min(lo + step, len(kept))
        shape, first = (hi - lo, n_bins), lo * n_bins
        a, b = np.searchsorted(cells, [first, hi * n_bins])
        det = np.bincount(cells[a:b] - first, minlength=shape[0] * n_bins).reshape(shape)  # (n, T)
        lev = kleinberg_levels(det, det_totals, s=cfg.s, gamma=cfg.gamma, levels=cfg.levels, window=window)
        padded = np.zeros((shape[0], n_bins + 1), dtype=np.int8)
        padded[:, :n_bins] = lev  # (n, T+1): a zero column keeps runs from crossing items
        starts, ends = _runs(padded.ravel() >= 1)
        if len(starts) == 0:
            continue
        a, b = np.searchsorted(ev_keys, [first, hi * n_bins])
        counts = np.zeros((shape[0], n_bins + 1), dtype=np.int64)  # (n, T+1) raw events, for the report
        counts[:, :n_bins] = np.bincount(ev_keys[a:b] - first, minlength=shape[0] * n_bins).reshape(shape)
        cum = np.concatenate([[0], np.cumsum(counts.ravel())])
        row, c0 = np.divmod(starts, n_bins + 1)
        c1 = ends - row * (n_bins + 1)
        n_in = cum[ends] - cum[starts]
        found.append(pd.DataFrame({
            "item": kept[row + lo], "start": t0 + c0 * width, "end": t0 + c1 * width,
            "level": np.maximum.reduceat(padded.ravel(), starts).astype(np.int64),
            "events": n_in.astype(np.int64), "share": n_in / np.maximum(cum_tot[c1] - cum_tot[c0], 1)}))
    if not found:
        return _empty_item_bursts()
    df = pd.concat(found, ignore_index=True)
    df = df.sort_values(["level", "events"], ascending=False, kind="stable").reset_index(drop=True)
    out = pd.DataFrame({
        "item": pd.array(np.asarray(uniques, dtype=object)[df["item"].to_numpy()].astype(str), dtype="str"),
        "start": _utc(df["start"].to_numpy()), "end": _utc(df["end"].to_numpy()),
        "level": df["level"].to_numpy(), "events": df["events"].to_numpy(), "share": df["share"].to_numpy()})
    out.attrs["bin_hours"] = width / 3600
    return out


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


def burst_f1(found: pd.DataFrame, truth: list[dict], min_overlap: float = 0.5) -> dict:
    """Precision, recall and F1 of found item bursts against planted ones.

    A planted interval [start, end) of item x is recovered when a found burst of the same item covers at least
    ``min_overlap`` of it: |found ∩ planted| / |planted| >= min_overlap. Matching is one-to-one (each planted
    interval takes the found burst that covers most of it; a found burst counts for one planted interval at
    most). precision = matched found / found, recall = matched planted / planted.
    """
    n_found, n_truth = len(found), len(truth)
    used: set[int] = set()
    if n_found:
        f_item = found["item"].astype(str).to_numpy()
        f_start = pd.DatetimeIndex(found["start"]).as_unit("ns").asi8
        f_end = pd.DatetimeIndex(found["end"]).as_unit("ns").asi8
    for tr in truth:
        if not n_found:
            break
        t_start, t_end = pd.Timestamp(tr["start"]).as_unit("ns").value, pd.Timestamp(tr["end"]).as_unit("ns").value
        inter = np.clip(np.minimum(f_end, t_end) - np.maximum(f_start, t_start), 0, None)
        cover = np.where(f_item == str(tr["item"]), inter / max(t_end - t_start, 1), 0.0)
        cover[list(used)] = 0.0
        best = int(np.argmax(cover))
        if cover[best] >= min_overlap and cover[best] > 0:
            used.add(best)
    tp = len(used)
    precision = tp / n_found if n_found else (1.0 if n_truth == 0 else 0.0)
    recall = tp / n_truth if n_truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "found": n_found, "planted": n_truth, "matched": tp}

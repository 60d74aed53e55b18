"""Burst detection with Kleinberg's automata (Kleinberg 2002, "Bursty and hierarchical structure in streams").

Items: the *batched* (binomial) automaton. Time is cut into bins; in bin ``t`` an item has ``r_t`` of the
``d_t`` events (or of the active users, see :class:`BurstConfig`). State ``i`` emits the item with probability
``p0 * s**i`` (``p0`` = the item's share), and the cheapest state sequence is found by Viterbi. Because the rate
is a *share of all activity in the bin*, the log's daily and weekly rhythm (busy evenings, quiet nights) does
not make an item look bursty: only a rise in the item's share does.

Users: the *continuous* automaton on each user's inter-event gaps finds binge sessions; it lives in
:mod:`seqrec_core.patterns.user_bursts` (its blocked Viterbi keeps one user with 1M events linear) and
``get_user_bursts`` / ``USER_BURST_COLUMNS`` are re-exported here, where callers import them from.

The Viterbi pass is vectorised across items: the only Python loop runs over time bins, never over items.
Climbing a level costs ``gamma * ln(T)`` (``T`` = bins); going down is free. The transition step and the
parameter check are shared with the user automaton (:mod:`seqrec_core.patterns.burst_automaton`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqrec_core.errors import InputError
from seqrec_core.patterns.burst_automaton import _check_params, _climb, _runs, _utc
from seqrec_core.patterns.common import times_seconds
from seqrec_core.patterns.user_bursts import USER_BURST_COLUMNS, get_user_bursts

log = logging.getLogger(__name__)

ITEM_BURST_COLUMNS = ["item", "start", "end", "level", "events", "share"]
_P_CAP = 1.0 - 1e-9  # a state's emission probability must stay below 1 (ln(1 - p) is finite)
_CHUNK_CELLS = 1 << 24  # streams x bins x levels handled at once: bounds the back-pointer memory (~16 MB)

__all__ = ["ITEM_BURST_COLUMNS", "USER_BURST_COLUMNS", "BurstConfig", "burst_f1", "get_item_bursts",
           "get_user_bursts", "kleinberg_levels"]  # the user names are re-exported from user_bursts


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

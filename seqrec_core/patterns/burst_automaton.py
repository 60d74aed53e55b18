"""What Kleinberg's two burst automata share: the parameter check, one Viterbi transition, and turning levels
into bursts (runs of True, UTC timestamps).

Kept apart so that the item automaton (:mod:`seqrec_core.patterns.bursts`) and the user automaton
(:mod:`seqrec_core.patterns.user_bursts`) both import from here and neither from the other: ``bursts`` still
re-exports the user functions, which an import of ``bursts`` from ``user_bursts`` would turn into a cycle.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from seqrec_core.errors import InputError


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


def _runs(active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and exclusive end indices of runs of True in a flat bool array."""
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _utc(seconds: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(seconds, dtype=np.int64), unit="s", utc=True)).as_unit("ns")

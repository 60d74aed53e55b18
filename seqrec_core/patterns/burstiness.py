"""Burstiness and memory of inter-event times (IETs), per user and for the whole log.

- Burstiness B (Goh & Barabasi 2008) compares the spread of the IETs with their mean: r = sigma / mu, B = (r - 1) /
  (r + 1); B = -1 for a strictly periodic sequence, ~0 for Poisson arrivals, -> 1 for extreme bursts. With few
  events the classical B is biased (its maximum for n gaps is not 1), so we use Kim & Jo's (2016) finite-size
  form A_n = (sqrt(n+1) r - sqrt(n-1)) / ((sqrt(n+1) - 2) r + sqrt(n-1)), which spans [-1, 1] for every n.
  n is the number of gaps: Kim & Jo count n events with n IETs (periodic boundary), and with n gaps the
  largest possible r is exactly sqrt(n-1), where A_n = 1. sigma is the population standard deviation.
- Memory M (Goh & Barabasi 2008): the Pearson correlation between consecutive gaps (tau_i, tau_{i+1}); M > 0
  when long gaps follow long gaps (e.g. slow and busy phases), ~0 for independent gaps.

Per-user values are computed for all users at once from sorted gaps with np.bincount (no loop per user).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from seqrec_core.patterns.common import GroupedTimes, group_times
from seqrec_core.patterns.segments import BURSTY_B, REGULAR_B


def _kim_jo(r: np.ndarray, n: np.ndarray) -> np.ndarray:
    a, b = np.sqrt(n + 1.0), np.sqrt(n - 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * r - b) / ((a - 2.0) * r + b)


def burstiness(iet: np.ndarray) -> float:
    """Kim & Jo finite-size corrected burstiness of one IET sequence; NaN if < 2 gaps or all gaps are zero."""
    x = np.asarray(iet, dtype=np.float64)
    if len(x) < 2 or x.mean() <= 0:
        return float("nan")
    return float(_kim_jo(np.array([x.std() / x.mean()]), np.array([float(len(x))]))[0])


def memory_coefficient(iet: np.ndarray) -> float:
    """Goh & Barabasi memory: correlation of consecutive gaps; NaN if < 3 gaps or either side is constant."""
    x = np.asarray(iet, dtype=np.float64)
    if len(x) < 3:
        return float("nan")
    a, b = x[:-1], x[1:]
    sa, sb = a.std(), b.std()
    if sa <= 0 or sb <= 0:
        return float("nan")
    return float(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb))


def _gaps(g: GroupedTimes) -> tuple[np.ndarray, np.ndarray]:
    """Gaps (seconds, float64) between consecutive events of the same group, and each gap's group code."""
    same = g.codes[1:] == g.codes[:-1]
    return np.diff(g.times)[same].astype(np.float64), g.codes[1:][same]


def get_inter_event_times(events: pd.DataFrame, by: Literal["user", "item", "global"] = "user") -> np.ndarray:
    """All inter-event times in seconds (float64): gaps between consecutive events within each user / item,
    or of the whole log (``"global"``). Zero gaps (same-second events) are kept."""
    return _gaps(group_times(events, by))[0]


def get_iet_histogram(iet: np.ndarray, bins_per_decade: int = 5) -> pd.DataFrame:
    """Log-binned IET histogram: [0, 1) s holds same-second gaps, then bins_per_decade bins per factor of 10.

    Why log bins: human IETs span seconds to months; linear bins would put everything in the first bar.
    ``density`` is count / (total * width), comparable across bins of different widths.
    """
    x = np.asarray(iet, dtype=np.float64)
    x = x[np.isfinite(x) & (x >= 0)]
    cols = ["bin_left_s", "bin_right_s", "count", "density"]
    if len(x) == 0:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c != "count" else "int64") for c in cols})
    top = max(1.0, float(x.max()))
    n_log = int(np.floor(np.log10(top) * bins_per_decade)) + 1  # last edge > the largest gap
    edges = np.concatenate([[0.0], np.logspace(0, n_log / bins_per_decade, n_log + 1)])
    counts = np.histogram(x, bins=edges)[0]
    last = int(np.flatnonzero(counts).max()) + 1
    edges, counts = edges[:last + 1], counts[:last]
    width = np.diff(edges)
    return pd.DataFrame({"bin_left_s": edges[:-1], "bin_right_s": edges[1:], "count": counts.astype(np.int64),
                         "density": counts / (len(x) * width)})


def _per_group(gaps: np.ndarray, codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                             np.ndarray]:
    """Per-group burstiness, memory, gap count and consecutive-pair count, all from bincount sums."""
    n = np.bincount(codes, minlength=n_groups).astype(np.float64)
    s1 = np.bincount(codes, weights=gaps, minlength=n_groups)
    s2 = np.bincount(codes, weights=gaps * gaps, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = s1 / n
        sigma = np.sqrt(np.maximum(s2 / n - mu * mu, 0.0))
        b = np.where((n >= 2) & (mu > 0), _kim_jo(sigma / mu, n), np.nan)
    pair = codes[1:] == codes[:-1]  # consecutive gaps of the same group
    a, c, k = gaps[:-1][pair], gaps[1:][pair], codes[1:][pair]
    m = np.bincount(k, minlength=n_groups).astype(np.float64)
    sa, sc = np.bincount(k, a, n_groups), np.bincount(k, c, n_groups)
    saa, scc = np.bincount(k, a * a, n_groups), np.bincount(k, c * c, n_groups)
    sac = np.bincount(k, a * c, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma, mc = sa / m, sc / m
        va, vc = saa / m - ma * ma, scc / m - mc * mc
        cov = sac / m - ma * mc
        scale = np.sqrt(np.maximum(va, 0) * np.maximum(vc, 0))
        tiny = 1e-12 * np.maximum(ma * ma + mc * mc, 1e-300)  # float round-off guard for constant sides
        mem = np.where((n >= 3) & (va > tiny) & (vc > tiny), np.clip(cov / scale, -1.0, 1.0), np.nan)
    return b, mem, n, m


def get_user_burstiness(events: pd.DataFrame, min_events: int = 5) -> pd.DataFrame:
    """Every user with their event count, burstiness and memory (NaN below ``min_events`` events)."""
    g = group_times(events, "user")
    gaps, codes = _gaps(g)
    b, mem, _, _ = _per_group(gaps, codes, len(g.ids))
    enough = g.counts >= min_events
    out = pd.DataFrame({"user": g.ids, "events": g.counts, "burstiness": np.where(enough, b, np.nan),
                        "memory": np.where(enough, mem, np.nan)})
    out["user"] = out["user"].astype("str")
    return out


@dataclass(frozen=True)
class BurstinessSummary:
    """The log's burstiness and memory, as a typical user experiences them.

    ``burstiness``: per-user corrected B averaged with weights = each user's gap count; ``memory``: per-user M
    averaged with weights = consecutive-pair count. Why not one B over all pooled gaps: users differ in
    activity rate, and mixing a slow and a fast Poisson user already gives heavy-tailed pooled gaps (B > 0),
    which is heterogeneity, not burstiness. ``pooled_burstiness`` keeps that pooled value for reference.
    """

    burstiness: float
    memory: float
    users_scored: int
    pooled_burstiness: float = float("nan")


def get_burstiness_summary(events: pd.DataFrame, min_events: int = 5) -> BurstinessSummary:
    g = group_times(events, "user")
    gaps, codes = _gaps(g)
    b, mem, n, m = _per_group(gaps, codes, len(g.ids))
    use = (g.counts >= min_events) & np.isfinite(b)
    w = n * use
    b_mean = float((b[use] * w[use]).sum() / w[use].sum()) if w.sum() > 0 else float("nan")
    use_m = use & np.isfinite(mem)
    wm = m * use_m
    m_mean = float((mem[use_m] * wm[use_m]).sum() / wm[use_m].sum()) if wm.sum() > 0 else float("nan")
    pooled = burstiness(gaps[use[codes]]) if len(gaps) else float("nan")
    return BurstinessSummary(burstiness=b_mean, memory=m_mean, users_scored=int(use.sum()), pooled_burstiness=pooled)


def describe_burstiness(b: float, memory: float) -> str:
    """Burstiness B and memory M in plain words, for a page's first-time reader (B's thresholds are the user
    segments' own, ``segments.BURSTY_B`` / ``REGULAR_B``; |M| under 0.1 reads as no memory)."""
    if not np.isfinite(b):
        return "Too few users with enough events to say how bursty the activity is."
    if b > BURSTY_B:
        pace = "activity comes in bursts: quick runs of events, then long pauses"
    elif b < REGULAR_B:
        pace = "activity is more even than chance: events spaced out regularly"
    else:
        pace = "activity is about as regular as chance (events at random times)"
    words = f"B {b:+.2f} (−1 clockwork, 0 random, +1 extreme bursts): {pace}."
    if np.isfinite(memory):
        if memory > 0.1:
            words += f" M {memory:+.2f}: a long pause tends to follow a long pause."
        elif memory < -0.1:
            words += f" M {memory:+.2f}: long and short pauses tend to alternate."
        else:
            words += f" M {memory:+.2f}: one pause says little about the next."
    return words

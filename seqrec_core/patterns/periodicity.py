"""Periodicity of event times: dominant periods with a significance test, harmonics folded.

Method (global and per entity): bin event times (hourly; whole bins only, as a partly observed last bin would
pose as a drop in rate), remove the mean and linear trend, apply a Hann window (so a strong daily line does not
leak into neighbouring frequencies and pose as its own period), and take the periodogram by FFT. Power is
normalised to the share of variance a sinusoid at that frequency explains, so ``strength`` is comparable.

The null (a smooth spectrum, no line), its exact law, the counting-noise floor and the Bonferroni count of the
max-over-periods search live in spectral_null.py, with why each is needed. The global test splits alpha: half
for the daily and weekly periods, named before looking, half for the blind search (``_search_fap``). Peaks are
located on the zero-padded spectrum and carry the FAP of the tested frequencies within half a Fourier bin.
bench/periodicity_null.py measures the false-alarm rate on Poisson-user and constant-rate logs and one user with
1M events.

Series: the global series counts events per hour, or active users per hour when ``users`` is given (then a
binge of 300 ratings in ten minutes counts once; on ml-latest-small that lifts the daily and weekly rhythms
from buried to FAP < 1e-40). Per-user series are hourly presence, per-item series hourly counts. Entities
(and logs) active in fewer than MIN_ACTIVE_BINS distinct hours get no period: a handful of bursts has a
deterministic comb for a spectrum, not a noise floor.

Harmonics: a daily profile with two peaks (12:00 and 20:00) puts more power at 8 h and 12 h than at 24 h.
Fundamentals are picked greedily by the summed power of their harmonic comb (f, 2f, ..., 6f) among
significant peaks; peaks at integer combinations a*f1 + b*f2 of picked fundamentals (harmonics, and the
daily x weekly sidebands) are folded into them. A 6-term comb keeps the weekly fundamental (1/168 h) from
claiming the daily line, which is its 7th harmonic.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import fft as sfft
from scipy import ndimage, signal, stats

from seqrec_core.errors import InputError
from seqrec_core.patterns.common import group_times
from seqrec_core.patterns.spectral_null import (
    EDGE_BINS,
    TESTED_PER_BIN,
    beats_null,
    false_alarm_probability,
    hann_power_spectrum,
    local_background,
    white_noise_level,
)

log = logging.getLogger(__name__)

HOUR = 3600
COMB = 6  # harmonics in a fundamental's comb score
OVERSAMPLE = 8  # zero-padding of the global spectrum, for sub-bin period accuracy
FOLD_BINS = 3.0  # independent frequency bins: Hann main lobe (2) + first sidelobe
MAX_BINS = 1 << 22  # global series longer than this use coarser bins
BLOCK_CELLS = 1 << 23  # per-entity batch size (rows x bins), ~32 MB of float32
MIN_ACTIVE_BINS = 10  # distinct active hours needed before a period is looked for
SUB_REL = 0.05  # a sub-harmonic fundamental needs at least this share of its harmonic's power
CALENDAR_HOURS = (24.0, 168.0)  # daily and weekly: tested on a share of alpha of their own (_search_fap)
CALENDAR_SHARE = 0.5


@dataclass(frozen=True)
class Period:
    period_hours: float
    strength: float  # in [0, 1]: share of variance explained by the period and its folded harmonics
    significant: bool  # false_alarm < alpha
    false_alarm: float  # search-corrected FAP of the detected peak (local background and counting-noise floor)


def _peak_power(power: np.ndarray, pos: float, tol: float) -> float:
    lo, hi = max(1, int(np.floor(pos - tol))), min(len(power), int(np.ceil(pos + tol)) + 1)
    return float(power[lo:hi].max()) if hi > lo else 0.0


def _fundamental(z: np.ndarray, power: np.ndarray, pick: np.ndarray, lo: np.ndarray, hi: np.ndarray | float,
                 alpha: float) -> np.ndarray:
    """Move each row's pick (a frequency position in bins) down to pick/k, k = 6..2, when that sub-harmonic is
    itself elevated (p < alpha/5 at its bin, and at least SUB_REL of the pick's power) and its own harmonics
    that are not multiples of the pick carry excess power (sum of their z, Gamma-distributed under noise,
    p < alpha/5). Why: the daily two-peak profile makes 8 h the strongest line, and 24 h must win; a 48 h
    "fundamental" of a 24 h rhythm must not (its extra harmonics 48, 16, 9.6 h are noise, and a near-perfect
    daily comb has structured, not random, leakage between its lines: hence the power floor). These are a
    handful of targeted tests, not a search."""
    n, f = z.shape
    rows = np.arange(n)
    hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), (n,))
    out = pick.copy()
    done = np.zeros(n, dtype=bool)
    for k in range(COMB, 1, -1):
        sub = pick / k  # (N,)
        inside = (sub >= lo) & (sub <= hi)
        at = np.clip(np.round(sub).astype(np.int64), 0, f - 1)
        z_sub = z[rows, at]
        strong = power[rows, at] >= SUB_REL * power[rows, np.clip(np.round(pick).astype(np.int64), 0, f - 1)]
        ms = np.array([m for m in range(2, COMB + 1) if m % k])  # its own harmonics the pick does not explain
        pos = sub[:, None] * ms[None, :]  # (N, M)
        ok = (pos >= lo[:, None]) & (pos <= hi[:, None])
        zs = np.where(ok, z[rows[:, None], np.clip(np.round(pos).astype(np.int64), 0, f - 1)], 0.0)
        p = stats.gamma.sf(zs.sum(axis=1), np.maximum(ok.sum(axis=1), 1))
        up = ~done & inside & strong & (z_sub > np.log((COMB - 1) / alpha)) & (p < alpha / (COMB - 1))
        out = np.where(up, sub, out)
        done |= up
    return out


def _refine(f0: float, pos: np.ndarray, height: np.ndarray, free: np.ndarray, tol: float,
            hi_j: int) -> tuple[float, float]:
    """Fundamental frequency fitted to all its significant harmonics (k * f0 = pos_k, weights = power),
    and its strength = power of the fundamental plus those harmonics (share of variance, capped at 1)."""
    ks, ps, ws = [], [], []
    for k in range(1, int(hi_j / f0) + 2):
        near = np.flatnonzero(free & (np.abs(pos - k * f0) <= tol))
        if len(near):
            best = near[np.argmax(height[near])]
            ks.append(k)
            ps.append(pos[best])
            ws.append(height[best])
    if not ks:
        return f0, 0.0
    k, p, w = np.asarray(ks, float), np.asarray(ps), np.asarray(ws)
    return float((w * k * p).sum() / (w * k * k).sum()), min(1.0, float(w.sum()))


def _search_fap(p: np.ndarray, tested: np.ndarray, per_bin_h: float, step: float) -> np.ndarray:
    """Search-corrected FAP of single-frequency p-values ``p`` at padded bins ``tested``: a weighted Bonferroni.
    CALENDAR_SHARE of alpha goes to the daily and weekly periods, named before looking (the frequencies within
    half a Fourier bin of them), the rest to the blind search over every tested frequency; the chance of any
    false alarm stays below alpha, and the rhythms logs are most often asked about are not diluted by a
    search over thousands of frequencies (the 600-user demo's weekly rhythm: FAP 0.11 -> below 0.01)."""
    search = np.minimum(1.0, p * len(tested) / (1.0 - CALENDAR_SHARE))
    calendar = np.zeros(len(tested), dtype=bool)
    for hours in CALENDAR_HOURS:
        calendar |= np.abs(tested - per_bin_h / hours) <= step / 2
    if not calendar.any():
        return search
    return np.where(calendar, np.minimum(search, np.minimum(1.0, p * calendar.sum() / CALENDAR_SHARE)), search)


def get_periods(times_s: np.ndarray, *, min_hours: float = 2.0, max_hours: float | None = None, n_top: int = 3,
                alpha: float = 0.01, seed: int = 0, users: np.ndarray | None = None) -> list[Period]:
    """Dominant periods of the event-count series, strongest first, harmonics and sidebands folded.

    Significant fundamentals come first; if fewer than ``n_top`` are significant, the strongest remaining
    non-folded peaks fill the list flagged ``significant=False`` (so a caller can say "strongest candidate,
    not significant"). ``seed`` is accepted for API stability: the test is analytic, nothing is random.
    With ``users`` (one id or code per event) the series counts active users per bin instead of events, so
    one person's binge of 300 ratings in ten minutes counts once and does not drown the daily rhythm.
    """
    t = np.asarray(times_s, dtype=np.int64)
    if users is not None and len(users) != len(t):
        raise InputError(f"users has {len(users)} entries but there are {len(t)} event times")
    if len(t) < 10 or len(np.unique(t // HOUR)) < MIN_ACTIVE_BINS:
        return []
    if min_hours <= 0:
        raise InputError(f"min_hours must be positive, got {min_hours}")
    t0, t1 = int(t.min()), int(t.max())
    bin_s = min(float(HOUR), min_hours * HOUR / 2.0)
    observed_s = t1 - t0 + 1  # the last second is observed too
    if observed_s / bin_s > MAX_BINS:
        bin_s = observed_s / MAX_BINS
        log.info("periodicity: long log, %.1f h bins", bin_s / HOUR)
    n_bins = int(observed_s // bin_s)  # whole bins: a partly observed last bin would read as a drop in rate
    min_h = max(min_hours, 2 * bin_s / HOUR)
    span_h = n_bins * bin_s / HOUR
    max_h = span_h / 3.0 if max_hours is None else min(max_hours, span_h / 2.0)
    if max_h <= min_h:
        return []
    bins = ((t - t0) // bin_s).astype(np.int64)
    whole = bins < n_bins
    bins = bins[whole]
    if users is not None:
        codes = pd.factorize(np.asarray(users))[0].astype(np.int64)[whole]
        cells = np.unique(codes * n_bins + bins)  # one count per (user, bin)
        bins = cells % n_bins
        share = np.bincount(cells // n_bins) / n_bins  # each user's share of active bins
        noise_var = float((share * (1 - share)).sum())  # presence of independent users: Bernoulli variances add
    counts = np.bincount(bins, minlength=n_bins).astype(np.float64)
    if users is None:
        noise_var = float(counts.mean())  # Poisson counts: variance = mean
    x = signal.detrend(counts, type="linear")
    var = float(x.var())
    if np.ptp(counts) == 0 or var <= 0:
        return []  # a constant series: no variation, so no rhythm to test
    n_fft = sfft.next_fast_len(n_bins * OVERSAMPLE, real=True)
    power = hann_power_spectrum(x[None, :].copy(), np.array([n_bins]), n_fft, np.array([var]))[0]  # (F,)
    step = n_fft / n_bins  # padded bins per Fourier bin
    per_bin_h = n_fft * bin_s / HOUR  # period (h) = per_bin_h / bin index
    edge = int(np.ceil(EDGE_BINS * step))
    lo_j = max(edge, int(np.ceil(per_bin_h / max_h)))
    hi_j = min(len(power) - 1 - edge, int(np.floor(per_bin_h / min_h)))
    if hi_j <= lo_j + 2:
        return []
    level, r = local_background(power[None, :], step)
    floor = float(white_noise_level(noise_var, n_bins, var))
    z = power / np.maximum(level[0], floor)
    tested = np.unique(np.round(np.arange(lo_j, hi_j + 1, step / TESTED_PER_BIN)).astype(np.int64))
    fap = np.ones(len(power))
    fap[tested] = _search_fap(false_alarm_probability(power[tested], level[0, tested], r[tested], floor, 1),
                              tested, per_bin_h, step)
    # a peak on the padded spectrum carries the evidence of the tested frequencies within half a Fourier bin
    fap = ndimage.minimum_filter1d(fap, size=2 * int(step // 2) + 1, mode="nearest")

    j = np.arange(lo_j, hi_j + 1)
    is_peak = (power[j] >= power[j - 1]) & (power[j] > power[j + 1])
    peaks = j[is_peak]
    peaks = peaks[np.argsort(-power[peaks])][:400]
    log_p = np.log(np.maximum(power, np.finfo(power.dtype).tiny))
    num = log_p[peaks + 1] - log_p[peaks - 1]
    den = 2 * (2 * log_p[peaks] - log_p[peaks - 1] - log_p[peaks + 1])
    pos = peaks + np.clip(num / np.where(den > 0, den, np.inf), -0.5, 0.5)  # parabolic (log) refinement
    tol = FOLD_BINS * step
    chosen: list[tuple[float, float, float]] = []  # (pos, strength, fap)
    folded = np.zeros(len(peaks), dtype=bool)

    def explained(at: np.ndarray) -> np.ndarray:
        """Positions that are a * f1 + b * f2 (|b| <= 2) of chosen fundamentals: harmonics and sidebands."""
        out = np.zeros(len(at), dtype=bool)
        fund = [ch[0] for ch in chosen]
        for f1 in fund:
            for a in range(0, int(hi_j / f1) + 2):
                for f2 in fund:
                    for b in range(-2, 3):
                        target = a * f1 + b * f2
                        if target > 0:
                            out |= np.abs(at - target) <= tol
        return out

    sig = fap[peaks] < alpha
    while len(chosen) < n_top:
        cand = np.flatnonzero(sig & ~folded)
        if len(cand) == 0:
            break
        scores = [sum(_peak_power(power, k * pos[c], step) for k in range(1, COMB + 1)
                      if k * pos[c] <= hi_j + step) for c in cand]
        c = int(cand[int(np.argmax(scores))])
        detected = float(fap[peaks[c]])  # the search-corrected evidence that a rhythm is there
        f0 = float(_fundamental(z[None, :], power[None, :], np.array([pos[c]]), np.array([float(lo_j)]), hi_j,
                                alpha)[0])
        if f0 != pos[c]:  # a weaker fundamental under a strong harmonic: start from its nearest peak
            near = np.flatnonzero(np.abs(pos - f0) <= step)
            f0 = float(pos[near[np.argmax(power[peaks[near]])]]) if len(near) else f0
        if chosen and explained(np.array([f0]))[0]:  # its fundamental was already reported
            folded[c] = True
            continue
        f0, strength = _refine(f0, pos, power[peaks], sig & ~folded, tol, hi_j)
        chosen.append((f0, strength, detected))
        folded |= explained(pos)
    out = [Period(period_hours=per_bin_h / p, strength=s, significant=True, false_alarm=q) for p, s, q in chosen]
    rest = np.flatnonzero(~folded & ~sig)
    for c in rest[: max(0, n_top - len(out))]:
        out.append(Period(period_hours=float(per_bin_h / pos[c]), strength=min(1.0, float(power[peaks[c]])),
                          significant=False, false_alarm=float(fap[peaks[c]])))
    return sorted(out, key=lambda p: (not p.significant, -p.strength))


def _entity_block(times: np.ndarray, starts: np.ndarray, counts: np.ndarray, first: np.ndarray,
                  lengths: np.ndarray, n_cols: int, binary: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, n_cols) float32 hourly series of a block of entities, each from its first event's hour, made
    zero-mean over its own length (the tail is zeroed later by the window); each row's variance; and the
    variance its counting noise would have (presence: Bernoulli p(1 - p), its own variance; counts: Poisson,
    the mean), the floor of its background."""
    rows = np.repeat(np.arange(len(counts)), counts)
    idx = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts - starts, counts)
    cols = (times[idx] // HOUR - first[rows]).astype(np.int64)
    x = np.zeros((len(counts), n_cols), dtype=np.float32)
    cells, per_cell = np.unique(rows * n_cols + cols, return_counts=True)
    values = np.ones(len(cells)) if binary else per_cell.astype(np.float64)
    x.reshape(-1)[cells] = values
    s1 = np.bincount(cells // n_cols, weights=values, minlength=len(counts))
    s2 = np.bincount(cells // n_cols, weights=values ** 2, minlength=len(counts))
    mean = s1 / lengths
    x -= mean[:, None].astype(np.float32)
    var = np.maximum(s2 / lengths - mean ** 2, 0.0)
    return x, var, var if binary else mean


def get_dominant_periods(events: pd.DataFrame, by: Literal["user", "item"], *, min_events: int = 20,
                         max_entities: int | None = 5000, alpha: float = 0.01, min_hours: float = 2.0,
                         max_hours: float | None = 336.0) -> pd.DataFrame:
    """Each user's (or item's) dominant period: batch FFT of hourly series, the same local-background FAP.

    Users are binned as activity presence per hour (a session of ten clicks is one active hour, not ten
    correlated events); items as event counts per hour (many independent users). The most active
    ``max_entities`` entities with at least ``min_events`` events are scored (others are left out of the
    table), in blocks grouped by series length so no Python loop runs per entity beyond block assembly.
    ``period_hours`` is NaN when no period is significant; ``best_period_hours`` keeps the best candidate.
    Entities active in fewer than MIN_ACTIVE_BINS distinct hours, or over less than three of the shortest
    periods, get NaN: the spectrum of two or three bursts is a deterministic comb (two rating sessions 32 h
    apart "explain" a 32 h period perfectly), not evidence of a rhythm.
    """
    if by not in ("user", "item"):
        raise InputError(f"unknown grouping {by!r}; use 'user' or 'item'")
    g = group_times(events, by)
    keep = np.flatnonzero(g.counts >= min_events)
    keep = keep[np.argsort(-g.counts[keep], kind="stable")]
    if max_entities is not None:
        keep = keep[:max_entities]
    first_h = g.times[g.offsets[keep]] // HOUR
    last_h = g.times[g.offsets[keep] + g.counts[keep] - 1] // HOUR
    lengths = (last_h - first_h + 1).astype(np.int64)
    cols = {"id": g.ids[keep], "events": g.counts[keep], "period_hours": np.full(len(keep), np.nan),
            "strength": np.zeros(len(keep)), "significant": np.zeros(len(keep), dtype=bool),
            "false_alarm": np.ones(len(keep)), "best_period_hours": np.full(len(keep), np.nan)}
    hours = g.times // HOUR
    new_hour = np.r_[True, (np.diff(hours) != 0) | (np.diff(g.codes) != 0)][: len(hours)]
    active = np.bincount(g.codes[new_hour], minlength=len(g.ids))[keep]  # distinct active hours per entity
    ok = (lengths >= 3 * max(min_hours, 2.0)) & (active >= MIN_ACTIVE_BINS)
    n_fft_all = np.maximum(64, 2 ** np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64))
    for n_fft in np.unique(n_fft_all[ok]):
        members = np.flatnonzero(ok & (n_fft_all == n_fft))
        per = max(1, BLOCK_CELLS // int(n_fft))
        for b in range(0, len(members), per):
            m = members[b:b + per]
            e = keep[m]
            x, var, noise = _entity_block(g.times, g.offsets[e], g.counts[e], first_h[m], lengths[m], int(n_fft),
                                   by == "user")
            res = _entity_periods(x, lengths[m], var, noise, int(n_fft), min_hours, max_hours, alpha)
            for name, values in res.items():
                cols[name][m] = values
    out = pd.DataFrame(cols)
    out["id"] = out["id"].astype("str")
    return out


def _entity_periods(x: np.ndarray, lengths: np.ndarray, var: np.ndarray, noise: np.ndarray, n_fft: int,
                    min_hours: float, max_hours: float | None, alpha: float) -> dict[str, np.ndarray]:
    """Dominant period per row: among significant bins, the one whose 6-harmonic comb holds most power.
    Same null as the global test; each row's Bonferroni count is the number of bins it searches (the padded
    grid holds 1-2 bins per Fourier bin, as n_fft is the power of two at or above the row's length)."""
    power = hann_power_spectrum(x, lengths, n_fft, var)  # (N, F)
    n, f = power.shape
    steps = n_fft / lengths  # (N,) padded bins per Fourier bin
    # strides and edges in the coarsest row's Fourier bins hold for every row of the block
    level, r = local_background(power, float(steps.max()))
    floor = white_noise_level(noise, lengths, var)[:, None]  # (N, 1)
    level = np.maximum(level.astype(power.dtype), np.finfo(power.dtype).tiny)
    z = power / np.maximum(level, floor.astype(power.dtype))  # (N, F)
    j = np.arange(f)
    max_h = np.minimum(lengths / 3.0, np.inf if max_hours is None else max_hours)  # (N,)
    lo = np.maximum(n_fft / max_h, EDGE_BINS * steps)  # (N,) lowest bin index searched
    hi = np.minimum(n_fft / min_hours, f - 1 - EDGE_BINS * steps)  # (N,) highest
    in_band = (j[None, :] >= lo[:, None]) & (j[None, :] <= hi[:, None]) & (var > 0)[:, None]
    tested = np.maximum(in_band.sum(axis=1), 1)[:, None]  # (N, 1)
    comb = np.zeros_like(power)
    for k in range(1, COMB + 1):
        n_h = (f - 1) // k + 1
        comb[:, :n_h] += power[:, ::k][:, :n_h]
    sig = in_band & beats_null(power, level, r[None, :], floor, tested, alpha)
    best_any = np.argmax(np.where(in_band, z, -np.inf), axis=1)
    best_sig = np.argmax(np.where(sig, comb, -np.inf), axis=1)
    has = sig.any(axis=1)
    pick = np.where(has, best_sig, best_any)
    rows = np.arange(n)
    detected = pick
    pick = np.round(_fundamental(z, power, pick.astype(np.float64), lo, hi, alpha)).astype(np.int64)
    c = np.clip(pick, 1, f - 2)
    lp = np.log(np.maximum(power[rows[:, None], c[:, None] + np.arange(-1, 2)[None, :]], 1e-30))  # (N, 3)
    den = 2 * lp[:, 1] - lp[:, 0] - lp[:, 2]
    shift = np.clip(0.5 * (lp[:, 2] - lp[:, 0]) / np.where(den > 0, den, np.inf), -0.5, 0.5)
    period = n_fft / np.maximum(pick + shift, 1)
    valid = in_band.any(axis=1)
    return {"period_hours": np.where(has & valid, period, np.nan),
            "best_period_hours": np.where(valid, period, np.nan),
            "strength": np.where(valid, np.minimum(1.0, power[rows, pick]), 0.0),
            "significant": has & valid,
            "false_alarm": np.where(valid, false_alarm_probability(power[rows, detected], level[rows, detected],
                                                                  r[detected], floor[:, 0], tested[:, 0]), 1.0)}

"""The null hypothesis of the periodogram test and its exact law: what "no rhythm" means, and how surprising a
peak is under it. periodicity.py finds the peaks and folds harmonics; this module only says whether a power
could be noise. Kept apart because the statistics are the part that must be right (and were wrong before:
issue 16), and they are easier to check, and to reuse for another series, without the peak bookkeeping.

Spectra here are Hann-windowed periodograms normalised to the share of variance a sinusoid explains
(:func:`hann_power_spectrum`), one row per series.

The null, and why it is the right one. "No rhythm" cannot mean white noise: real logs drift, grow, end (users
with a fixed number of events stop one by one) and burst, all smooth extra power at low frequencies. The null
is "the spectrum S(f) is smooth: no line". Under it ordinates are S(f) x Exp(1), nearly independent INDEP_BINS
Fourier bins apart under the Hann window (power correlation 1/36; 4/9 one bin apart). S(f) is estimated from
the K such ordinates in a window centred on the frequency, top quarter censored (lines), as T_r / r with T_r
the r lowest summed plus (K - r) x the r-th ("total time on test"). By Renyi's representation of exponential
order statistics T_r / S(f) is exactly Gamma(r), so the single-frequency p-value of z = P / (T_r / r) is
exactly (1 + z / r)^-r. What the old test got wrong (measured: 7% of Poisson-user logs, most constant-rate
logs "significant" at 0.01), and what fixes each:
 - it used exp(-z), as if S(f) were known: with the ~25 ordinates a local median rests on, the tail at the z a
   search over hundreds of frequencies needs is ~30 times heavier (an empirical trial count hid part of it);
 - its window was clipped at zero frequency, so near the longest periods it measured the background *above*
   the tested frequency, and the red power of a drifting rate read as lines 3-7 cycles per log long (the
   100-130 h "periods" of Poisson users with fixed event counts). Windows are now centred, shrinking near the
   band's ends (r falls, and the test is honestly weaker there). Ordinates within EDGE_BINS of zero
   (suppressed by the detrending) and of Nyquist (chi-square, 1 degree of freedom) are neither tested nor used;
 - a log without randomness (one event per second) has constant counts up to deterministic ripples (the partly
   observed last bin, the event lattice aliased against the bin grid), so its estimated background was ~0 and
   any ripple "significant" (87.5 h). A second p-value must be small too: exp(-P / floor), the floor being the
   level the counting noise of a random process at the same rate has (Poisson: variance = mean count per bin;
   presence of independent users: sum of p(1 - p)). A rhythm must beat both.
Max over periods: G frequencies are tested, TESTED_PER_BIN per Fourier bin of the band (a line between two
loses at most 8% of its power), and FAP = min(1, G p): Bonferroni, valid however neighbours correlate (so
conservative: 0.2-0.3% of 600 Poisson logs fall below 0.01). The global test weights it: half of alpha for the
daily and weekly periods, named before looking, half for the search (periodicity._search_fap).
bench/periodicity_null.py measures the false-alarm rate on Poisson-user and constant-rate logs.
"""
from __future__ import annotations

import numpy as np
from scipy import fft as sfft

INDEP_BINS = 2  # Fourier bins between the ordinates a background estimate uses (Hann: nearly independent)
EDGE_BINS = 2  # Fourier bins next to zero and Nyquist frequency: neither tested nor used for the background
TESTED_PER_BIN = 2  # frequencies tested per Fourier bin: the Bonferroni count of the max-over-periods search


def hann_power_spectrum(x: np.ndarray, lengths: np.ndarray, n_fft: int, var: np.ndarray) -> np.ndarray:
    """Variance share (N, n_fft//2+1) that a sinusoid at each frequency explains in each row of ``x``.

    Rows of ``x`` are zero-mean over their first ``lengths`` bins; ``var`` is each row's variance there.
    ``x`` is Hann-windowed in place (so bins past a row's length are zeroed whatever they held). With window
    w a sinusoid's amplitude is 2|X_w(f)| / sum(w), so A^2/2 over ``var`` is its share: 1 for a pure sinusoid.
    """
    last = np.maximum(lengths - 1, 1)
    phase = np.minimum(np.arange(x.shape[1], dtype=x.dtype)[None, :], last[:, None].astype(x.dtype))  # (N, T)
    phase *= (2 * np.pi / last).astype(x.dtype)[:, None]  # t >= L-1 sits at 2 pi, where the window is 0
    np.cos(phase, out=phase)
    phase *= -0.5
    phase += 0.5  # Hann window, built in place
    x *= phase
    wsum = 0.5 * (lengths - 1)  # sum of a Hann window over L points (periodic endpoints: both zero)
    spec = sfft.rfft(x, n=n_fft, axis=1, workers=2)  # (N, F) complex
    ri = spec.view(x.real.dtype if spec.dtype == np.complex64 else np.float64).reshape(*spec.shape, 2)
    power = np.einsum("nfc,nfc->nf", ri, ri)  # |X|^2 without sqrt or temporaries
    power *= (2.0 / (np.maximum(wsum, 1.0) ** 2 * np.maximum(var, 1e-30)))[:, None].astype(power.dtype)
    return power


def white_noise_level(noise_var: np.ndarray | float, lengths: np.ndarray | float,
                      var: np.ndarray | float) -> np.ndarray:
    """Mean normalised power (as :func:`hann_power_spectrum` scales it) of white noise of variance ``noise_var``:
    E|X|^2 = noise_var * sum(w^2), and a Hann window over L points has sum(w^2) = 3 (L - 1) / 8."""
    last = np.maximum(np.asarray(lengths, dtype=np.float64) - 1, 1.0)
    return 3.0 * np.asarray(noise_var, dtype=np.float64) / (last * np.maximum(var, 1e-30))


def local_background(power: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Background level of ``power`` (N, F) and r (F,), the Gamma shape of its estimate (module docstring):
    T_r / r at ~48 log-spaced anchors (windows of half-width max(25 bins, 25%), centred, ``step`` padded bins
    per Fourier bin), interpolated in log space; between two anchors r is the smaller (conservative: the
    geometric mean of two estimates varies less than either)."""
    n, f = power.shape
    stride = max(1, int(np.ceil(INDEP_BINS * step)))
    lo_edge, hi_edge = int(np.ceil(EDGE_BINS * step)), int(np.floor(f - 1 - EDGE_BINS * step))
    anchors = np.unique(np.round(np.geomspace(max(lo_edge, 1), max(hi_edge, lo_edge, 1), 48)).astype(np.int64))
    lev = np.empty((n, len(anchors)), dtype=np.float64)
    r_at = np.empty(len(anchors), dtype=np.int64)
    for i, a in enumerate(anchors):
        half = max(0, int(min(step * max(25.0, 0.25 * a / step), a - lo_edge, hi_edge - a))) // stride * stride
        sample = power[:, a - half:a + half + 1:stride]  # a +- m * stride: K = 2m + 1, centred on a
        k = sample.shape[1]
        r = k - k // 4
        low = np.partition(sample, r - 1, axis=1)[:, :r].astype(np.float64)  # the r lowest, the r-th last
        lev[:, i] = (low.sum(axis=1) + (k - r) * low.max(axis=1)) / r
        r_at[i] = r
    log_lev = np.log(np.maximum(lev, 1e-300)).astype(power.dtype)  # float32 blocks stay float32
    if len(anchors) == 1:
        return np.exp(np.repeat(log_lev, f, axis=1)), np.full(f, r_at[0])
    cols = np.arange(f)
    right = np.clip(np.searchsorted(anchors, cols), 1, len(anchors) - 1)
    left = right - 1
    w = np.clip((cols - anchors[left]) / np.maximum(anchors[right] - anchors[left], 1), 0.0, 1.0).astype(power.dtype)
    return np.exp(log_lev[:, left] * (1 - w) + log_lev[:, right] * w), np.minimum(r_at[left], r_at[right])


def false_alarm_probability(power: np.ndarray, level: np.ndarray, r: np.ndarray, floor: np.ndarray,
                            tested: np.ndarray) -> np.ndarray:
    """FAP of ordinates ``power`` after a search over ``tested`` frequencies (Bonferroni) from the larger of the
    two p-values: (1 + z / r)^-r against ``level``, exp(-power / floor) against ``floor`` (0 where it is 0)."""
    power = np.asarray(power, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    p_est = np.exp(-r * np.log1p(power / (r * np.maximum(level, 1e-300))))
    floor = np.asarray(floor, dtype=np.float64)
    p_floor = np.exp(-power / np.where(floor > 0, floor, 1.0)) * (floor > 0)
    return np.minimum(1.0, np.asarray(tested, dtype=np.float64) * np.maximum(p_est, p_floor))


def beats_null(power: np.ndarray, level: np.ndarray, r: np.ndarray, floor: np.ndarray, tested: np.ndarray,
               alpha: float) -> np.ndarray:
    """``false_alarm_probability(...) < alpha`` without its float64 (N, F) temporaries: each ordinate is
    compared with the power that each of the two p-values needs."""
    log_m = np.log(np.asarray(tested, dtype=np.float64) / alpha)
    need = (np.asarray(r) * np.expm1(log_m / np.asarray(r))).astype(level.dtype)  # (1 + z / r)^-r = alpha/tested
    need *= level
    return (power > need) & (power > np.asarray(floor) * log_m)

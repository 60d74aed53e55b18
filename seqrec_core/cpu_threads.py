"""How many CPU threads torch computes with, on a machine shared with other work (issue 18).

Why: torch's intra-op threads meet at a barrier after every parallel kernel. With as many threads as cores and
one of those cores taken by another process (the Streamlit server rendering a page, a browser, a second job), the
thread that lost its core holds up the others at every barrier: measured on the 2-core box, the README's Beauty
training fell from 61 epochs to 4 in the same 480 s. So training (and the app's own heavy work) measures how
much CPU the *other* processes use and computes with the cores left over, re-checking every second or so.

The measure is torch-free and cheap (two reads of ``/proc/stat`` and ``os.times()``): busy time of the cores this
process may run on, minus this process's own CPU time, over the interval between two samples. It works while we
compute (our own use is subtracted), so no pause is needed. Where ``/proc/stat`` cannot be read (not Linux) the
policy keeps every allowed core, which is torch's behaviour.

Override with ``SEQREC_THREADS``: a whole number fixes the thread count (no adapting), ``auto`` (the default)
adapts. ``OMP_NUM_THREADS`` set by the user is respected as the upper bound.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from seqrec_core.errors import InputError

log = logging.getLogger(__name__)

ENV_THREADS = "SEQREC_THREADS"
RECHECK_SECONDS = 1.0  # how often a running computation re-measures the others' load
# Weight of the newest measure in the running estimate of the others' load: with 0.5 a one-second burst (a page
# render, another process starting up) moves the estimate half-way and changes nothing; two seconds of it do.
# Measured: without smoothing one of four quiet runs dropped to one thread for good after such a burst (bench).
SMOOTHING = 0.5
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def allowed_cores() -> int:
    """The cores this process may run on (the container's CPU set, not the host's count)."""
    return max(1, len(_cpu_set()))


def thread_limit() -> int:
    """The most threads to use: the allowed cores, or fewer when the user set ``OMP_NUM_THREADS``."""
    cores = allowed_cores()
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    return min(cores, int(text)) if text.isdigit() and int(text) > 0 else cores


def fixed_threads() -> int | None:
    """``SEQREC_THREADS`` as a thread count, or None for the adaptive default; a bad value is refused in one line."""
    text = os.environ.get(ENV_THREADS, "auto").strip().lower()
    if text in ("", "auto"):
        return None
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"{ENV_THREADS}={text!r} is not a thread count; use a whole number >= 1, or 'auto'")
    return int(text)


def _busy_ticks(cpus: set[int]) -> int | None:
    """Non-idle clock ticks so far of the given CPUs, from /proc/stat; None where it cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    busy = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        ticks = [int(x) for x in rest.split()]
        # user nice system idle iowait irq softirq steal ...: idle and iowait are not work
        busy += sum(ticks[:8]) - ticks[3] - ticks[4]
    return busy


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class LoadSample:
    wall: float
    busy_ticks: int
    own_seconds: float


def sample_load(cpus: set[int] | None = None) -> LoadSample | None:
    """A snapshot to difference later with :func:`others_busy_cores`; None where /proc/stat is unreadable."""
    cpus = cpus if cpus is not None else _cpu_set()
    ticks = _busy_ticks(cpus)
    return None if ticks is None else LoadSample(time.monotonic(), ticks, _own_seconds())


def others_busy_cores(before: LoadSample, after: LoadSample) -> float:
    """Cores' worth of CPU other processes used between two samples (0 = the machine was ours)."""
    wall = after.wall - before.wall
    if wall <= 0:
        return 0.0
    all_busy = (after.busy_ticks - before.busy_ticks) / CLOCK_TICKS
    own = after.own_seconds - before.own_seconds
    return max(0.0, (all_busy - own) / wall)


def threads_for(limit: int, others_busy: float) -> int:
    """Threads to compute with when other processes keep ``others_busy`` cores busy: the cores left, rounded (half a
    core busy elsewhere still leaves the thread), at least one."""
    return max(1, min(limit, int(limit - others_busy + 0.5)))


def _cpu_set() -> set[int]:
    """The CPUs this process may run on."""
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


@dataclass
class ThreadGovernor:
    """Keeps torch's intra-op thread count at the cores other processes leave free.

    Call :meth:`start` before the work and :meth:`tick` often (every step): at most every ``recheck`` seconds it
    re-measures, updates the smoothed estimate (``SMOOTHING``) and, when the count should change, calls
    ``set_threads`` (``torch.set_num_threads`` by default). ``history`` keeps each change as (seconds since start,
    others' busy cores, threads) for logs and benchmarks.
    """

    recheck: float = RECHECK_SECONDS
    set_threads: Callable[[int], None] | None = None
    threads: int = 0
    history: list[tuple[float, float, int]] = field(default_factory=list)
    others: float = 0.0  # the smoothed estimate of the cores other processes keep busy
    _limit: int = 0
    _fixed: int | None = None
    _cpus: set[int] = field(default_factory=set)
    _last: LoadSample | None = None
    _started: float = 0.0

    def start(self) -> int:
        """Measure briefly, set the thread count, return it."""
        if self.set_threads is None:
            import torch

            self.set_threads = torch.set_num_threads
        self._fixed = fixed_threads()
        self._limit = thread_limit()
        self._cpus = _cpu_set()
        self._started = time.monotonic()
        if self._fixed is not None:
            self._apply(self._fixed, 0.0)
            return self.threads
        first = sample_load(self._cpus)
        if first is None:  # no /proc/stat: every allowed core, as torch would
            self._apply(self._limit, 0.0)
            return self.threads
        time.sleep(0.1)  # a short look at the others before the first step; ticks are 10 ms
        self._last = sample_load(self._cpus)
        self.others = others_busy_cores(first, self._last)
        self._apply(threads_for(self._limit, self.others), self.others)
        return self.threads

    def tick(self) -> None:
        """Re-measure if ``recheck`` seconds have passed since the last measure; cheap otherwise."""
        if self._fixed is not None or self._last is None or time.monotonic() - self._last.wall < self.recheck:
            return
        now = sample_load(self._cpus)
        if now is None:
            return
        self.others += SMOOTHING * (others_busy_cores(self._last, now) - self.others)
        self._last = now
        wanted = threads_for(self._limit, self.others)
        if wanted != self.threads:
            self._apply(wanted, self.others)

    def _apply(self, n: int, others: float) -> None:
        self.threads = n
        assert self.set_threads is not None
        self.set_threads(n)
        self.history.append((round(time.monotonic() - self._started, 1), round(others, 2), n))
        log.info("computing with %d thread(s): other processes keep %.1f of %d core(s) busy", n, others, self._limit)

"""The thread policy: threads = the cores other processes leave free, measured from /proc/stat minus our own CPU
time, re-measured as the work goes on; ``SEQREC_THREADS`` fixes it, ``OMP_NUM_THREADS`` caps it."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqrec_core import cpu_threads
from seqrec_core.cpu_threads import LoadSample, ThreadGovernor, others_busy_cores, sample_load, threads_for
from seqrec_core.errors import InputError

needs_proc = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc/stat")


@pytest.mark.parametrize(("limit", "others", "expected"),
                         [(2, 0.0, 2), (2, 0.3, 2), (2, 0.5, 2), (2, 0.8, 1), (2, 1.0, 1), (2, 2.0, 1), (4, 1.2, 3),
                          (1, 0.0, 1)])
def test_threads_are_the_cores_left_free_at_least_one(limit, others, expected) -> None:
    assert threads_for(limit, others) == expected


@needs_proc
def test_a_busy_loop_elsewhere_counts_as_about_one_core() -> None:
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start
        before = sample_load()
        time.sleep(0.6)
        after = sample_load()
    finally:
        spinner.kill()
        spinner.wait()
    assert before is not None and after is not None
    others = others_busy_cores(before, after)
    assert 0.6 <= others <= cpu_threads.allowed_cores() + 0.1


@needs_proc
def test_our_own_work_is_not_counted_as_others() -> None:
    before = sample_load()
    end = time.perf_counter() + 0.6
    while time.perf_counter() < end:  # keep one core busy ourselves
        pass
    after = sample_load()
    assert before is not None and after is not None
    assert others_busy_cores(before, after) < 0.5


def _scripted(monkeypatch: pytest.MonkeyPatch, others_per_interval: list[float]) -> None:
    """sample_load returns samples one second apart in which the others used the given cores, we used none."""
    state = {"i": 0, "ticks": 0}

    def fake(_cpus=None) -> LoadSample:  # noqa: ANN001
        i = state["i"]
        if i > 0:
            state["ticks"] += round(others_per_interval[min(i - 1, len(others_per_interval) - 1)]
                                    * cpu_threads.CLOCK_TICKS)
        state["i"] += 1
        return LoadSample(wall=float(i), busy_ticks=state["ticks"], own_seconds=0.0)

    monkeypatch.setattr(cpu_threads, "sample_load", fake)
    monkeypatch.setattr(cpu_threads.time, "sleep", lambda _s: None)
    monkeypatch.setattr(cpu_threads, "thread_limit", lambda: 2)


def test_governor_gives_a_core_away_while_another_process_is_busy_and_takes_it_back(monkeypatch) -> None:
    monkeypatch.delenv("SEQREC_THREADS", raising=False)
    _scripted(monkeypatch, [0.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    calls: list[int] = []
    governor = ThreadGovernor(recheck=0.0, set_threads=calls.append)
    assert governor.start() == 2  # nobody else busy at first
    governor.tick()  # a busy loop appears: one second of it could be a burst
    assert governor.threads == 2
    governor.tick()  # two seconds: it is there
    assert governor.threads == 1
    governor.tick()  # still there: no change, no call
    governor.tick()  # gone, one second
    governor.tick()
    assert governor.threads == 2
    assert calls == [2, 1, 2]
    assert [n for _, _, n in governor.history] == [2, 1, 2]


def test_a_one_second_burst_elsewhere_changes_nothing(monkeypatch) -> None:
    monkeypatch.delenv("SEQREC_THREADS", raising=False)
    _scripted(monkeypatch, [0.0, 1.0, 0.0, 0.0])
    calls: list[int] = []
    governor = ThreadGovernor(recheck=0.0, set_threads=calls.append)
    governor.start()
    for _ in range(3):
        governor.tick()
    assert calls == [2]


def test_seqrec_threads_fixes_the_count_and_turns_adapting_off(monkeypatch) -> None:
    monkeypatch.setenv("SEQREC_THREADS", "3")
    _scripted(monkeypatch, [2.0])
    calls: list[int] = []
    governor = ThreadGovernor(recheck=0.0, set_threads=calls.append)
    assert governor.start() == 3
    governor.tick()
    assert calls == [3]


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_seqrec_threads_is_refused_in_one_line(monkeypatch, value) -> None:
    monkeypatch.setenv("SEQREC_THREADS", value)
    with pytest.raises(InputError, match="SEQREC_THREADS.*whole number >= 1, or 'auto'"):
        ThreadGovernor(set_threads=lambda _n: None).start()


def test_omp_num_threads_caps_the_count(monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cpu_threads.thread_limit() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert cpu_threads.thread_limit() == cpu_threads.allowed_cores()

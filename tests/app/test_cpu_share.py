"""The dashboard's own torch threads follow the jobs it runs: every core when none runs, one fewer per running job
(at least one), and ``SEQREC_THREADS`` fixes the count."""
from __future__ import annotations

import pytest
import torch

from ui import cpu_share


@pytest.fixture(autouse=True)
def _restore_threads(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202
    before = torch.get_num_threads()
    monkeypatch.setattr(cpu_share, "_last", {"at": -float("inf"), "threads": 0})
    monkeypatch.setattr(cpu_share, "thread_limit", lambda: 2)
    yield
    torch.set_num_threads(before)


def _running(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    from seqrec_core.jobs import runner

    monkeypatch.setattr(runner, "list_jobs", lambda _root, kind=None: [object()] * n)
    monkeypatch.setattr(runner, "is_alive", lambda _job: True)


@pytest.mark.parametrize(("jobs", "threads"), [(0, 2), (1, 1), (3, 1)])
def test_the_dashboard_leaves_a_core_to_each_running_job(monkeypatch, jobs, threads) -> None:
    monkeypatch.delenv("SEQREC_THREADS", raising=False)
    _running(monkeypatch, jobs)
    assert cpu_share.share_cores_with_jobs() == threads
    assert torch.get_num_threads() == threads


def test_seqrec_threads_fixes_the_dashboards_threads(monkeypatch) -> None:
    monkeypatch.setenv("SEQREC_THREADS", "2")
    _running(monkeypatch, 1)
    assert cpu_share.share_cores_with_jobs() == 2


def test_a_bad_seqrec_threads_leaves_the_pages_working(monkeypatch) -> None:
    monkeypatch.setenv("SEQREC_THREADS", "many")
    _running(monkeypatch, 1)
    assert cpu_share.share_cores_with_jobs() == 1

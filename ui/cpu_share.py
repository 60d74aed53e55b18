"""The dashboard's own torch threads: the cores its running jobs leave free (issue 18's thread policy).

Why: a training or analysis job started from the dashboard computes in its own process and gives cores away to
whatever else is busy (``seqrec_core.cpu_threads``). The dashboard's live work (one user's explanation, a what-if)
comes in bursts; computing those with every core while a job trains would make the job's threads and ours wait on
each other at every barrier. So on every page view the dashboard sets its threads to the allowed cores minus the
jobs running now (at least one); with no job running it uses every core, as torch would. ``SEQREC_THREADS`` fixes the
count here too.
"""
from __future__ import annotations

import sys
import time

from seqrec_core.cpu_threads import fixed_threads, thread_limit
from seqrec_core.errors import InputError

RECOUNT_SECONDS = 2.0  # page views closer together than this reuse the last count
_last = {"at": -float("inf"), "threads": 0}


def dashboard_threads(running_jobs: int) -> int:
    """Threads for the dashboard's own computing while ``running_jobs`` jobs run."""
    try:
        fixed = fixed_threads()
    except InputError:
        fixed = None  # the jobs report a bad SEQREC_THREADS in one line; the pages go on sharing as if unset
    return fixed if fixed is not None else max(1, thread_limit() - running_jobs)


def share_cores_with_jobs() -> int | None:
    """Set torch's threads for this server process from the jobs running now; None while torch is not imported
    (nothing to set: the stored-analysis pages never import it)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    from seqrec_core.jobs.runner import is_alive, list_jobs
    from ui.state import runs_root

    now = time.monotonic()
    if now - _last["at"] >= RECOUNT_SECONDS:
        running = sum(1 for job in list_jobs(runs_root()) if is_alive(job))
        _last.update(at=now, threads=dashboard_threads(running))
    if torch.get_num_threads() != _last["threads"]:
        torch.set_num_threads(_last["threads"])
    return _last["threads"]

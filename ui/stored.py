"""The pages' side of stored analyses: look up the result for the settings on screen, say when and how it was
computed, and offer "Compute now" (a background analysis job with progress and cancel) for what is missing.

Why here and not in every page: every page that shows an analysis does the same three things (show the stored
result at once; say it is missing or out of date and why; show the job computing it), and doing them one way
means a person learns the pattern once. Nothing here computes an analysis inside a page run: the job does.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import streamlit as st

from seqrec_core.analysis.lookup import Found, find
from seqrec_core.analysis.store import StoredUnit
from seqrec_core.data.dataset import Dataset
from seqrec_core.jobs import runner
from ui import state

JOBS_KEY = "analysis_jobs"  # names of the analysis jobs this session started


@st.cache_resource(show_spinner=False, max_entries=256)
def _shared_unit(folder: str, created: str, _unit: StoredUnit) -> StoredUnit:
    """The first StoredUnit read for a folder and write time, kept and shared by every session, so each table is
    read from disk once per process (``StoredUnit.table`` hands out copies)."""
    return _unit


def lookup(run, ds: Dataset, kind: str, **overrides: object) -> Found:  # noqa: ANN001 - LazyRun
    """The stored ``kind`` for these settings (defaults + ``overrides``) and whether it is fresh for this run."""
    found = find(run.path, kind, overrides, ds.fingerprint)
    if found.unit is not None:
        found.unit = _shared_unit(str(found.unit.folder), found.unit.created, found.unit)
    return found


def caption(found: Found, settings: str = "") -> None:
    """'Stored analysis, computed ... in ... s · <settings>': where the numbers on screen come from."""
    if found.unit is not None:
        st.caption(f"Stored analysis, {found.unit.describe()}" + (f" · {settings}" if settings else "")
                   + ". Recomputed only when the run or the data change.")


# ------------------------------------------------------------------------------------------------ jobs
def active_jobs(run) -> list[runner.Job]:  # noqa: ANN001 - LazyRun
    """Jobs analysing this run right now (an analyze job, or a train job analysing the run it saved)."""
    jobs = []
    for job in runner.list_jobs(state.runs_root()):
        if str(job.run_dir) != str(run.path):
            continue
        if job.kind == "analyze" and runner.is_alive(job):
            jobs.append(job)
        elif job.kind == "train" and job.analyze_after and runner.status(job, runner.read_events(job)) == "analysing":
            jobs.append(job)
    return jobs


def start_analysis(run, ds: Dataset, units: Sequence[Found], what: str,  # noqa: ANN001 - LazyRun
                   users: Sequence[str] = (), sample: int | None = None) -> runner.Job:
    """Start an analysis job computing exactly ``units`` of ``run`` (on the data this page holds); stale units are
    recomputed (fresh ones are kept), per-user units add ``users`` (and a sample, unless ``sample`` is 0)."""
    from seqrec_core.jobs.spec import AnalysisRequest, AnalyzeSpec

    request = AnalysisRequest(units=tuple({"kind": f.kind, "params": f.params} for f in units), users=tuple(users),
                              sample=sample)
    data = runner.prepare_data(ds, state.runs_root())
    spec = AnalyzeSpec(run=str(run.path), request=request, device="auto", data=data)
    job = runner.start_job(spec, state.runs_root(), dataset=ds.name, fingerprint=ds.fingerprint, label=what)
    st.session_state.setdefault(JOBS_KEY, []).append(job.name)
    return job


@st.fragment(run_every=1.0)
def job_progress(job: runner.Job, key: str) -> None:
    """A running analysis job: which part, how far, how long; a Cancel button; the page reloads when it ends."""
    events = runner.read_events(job)
    status = runner.status(job, events)
    if status not in ("running", "analysing"):
        if st.session_state.get(f"_ended_{job.name}") != status:
            st.session_state[f"_ended_{job.name}"] = status
            st.rerun(scope="app")  # the page now finds what the job stored
        return
    where = runner.analysis_progress(events)
    elapsed = max(0.0, (events[-1].get("time", job.started) if events else job.started) - job.started)
    text = (f"{job.label or 'Analysing the run'} · part {max(where['index'], 1)} of {max(where['total'], 1)}"
            + (f": {where['label']}" if where["label"] else "") + f" · {elapsed:.0f} s so far")
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    c1.progress(where["share"], text=text)
    if c2.button("Cancel", key=f"cancel_{key}_{job.name}", help="Stop after the current step; the parts already "
                 "finished stay stored."):
        runner.cancel(job)
        st.toast("Cancelling: what is finished stays stored.")


def offer(run, ds: Dataset, missing: Found | Sequence[Found], what: str, key: str,  # noqa: ANN001 - LazyRun
          cost: str = "") -> None:
    """Say that ``what`` is not stored for these settings (or out of date, and why) and offer to compute it as a
    background job; while a job analyses this run, show its progress instead."""
    found = [missing] if isinstance(missing, Found) else list(missing)
    running = active_jobs(run)
    if running:
        st.info(f"**{what.capitalize()}** is being computed in the background; this part of the page fills in when "
                "the job has stored it. You can change pages meanwhile.")
        job_progress(running[0], key)
        return
    stale = [f for f in found if f.status == "stale"]
    if stale:
        text = f"The stored **{what}** is out of date: {stale[0].why}."
    else:
        text = f"**{what.capitalize()}** has not been computed for these settings yet."
    st.info(text + " It runs as a background job" + (f" ({cost})" if cost else "") + " and is stored with the run, "
            "so it is computed once.")
    if st.button("Compute now", key=f"compute_{key}", type="primary"):
        start_analysis(run, ds, found, what)
        st.rerun()


def settings_text(params: dict, names: dict[str, str]) -> str:
    """'500 users · IG · 20 steps' from a unit's parameters (only those named)."""
    parts = []
    for key, label in names.items():
        if key in params:
            value = params[key]
            parts.append(label.format(value) if "{" in label else f"{label} {value}")
    return " · ".join(parts) if parts else json.dumps(params)


def example_user(run, ds: Dataset) -> str:  # noqa: ANN001 - LazyRun or None
    """The user Explain, Recommendations and Compare open on (:func:`seqrec_core.analysis.job.default_user`),
    chosen with the run's stored test ranks at the log's "exclude seen" default when they are fresh, as the
    analysis job chose the users it explained."""
    from ui import compute

    found = None
    if run is not None:
        found = lookup(run, ds, "evaluation", exclude_seen=bool(compute.exclude_seen_default(ds.fingerprint, ds)))
    if found is None or not found.fresh:
        return _example_user(ds.fingerprint, "", "", ds, None)
    return _example_user(ds.fingerprint, str(found.unit.folder), found.unit.created, ds, found.unit)


@st.cache_data(show_spinner=False, max_entries=32)
def _example_user(fingerprint: str, folder: str, created: str, _ds: Dataset, _unit: StoredUnit | None) -> str:
    from seqrec_core.analysis.job import default_user, heldout_ranks
    from seqrec_core.analysis.kinds_eval import RUN, load_evaluation

    if _unit is None:
        return default_user(_ds)
    result = load_evaluation(_unit, RUN).results[RUN]
    return default_user(_ds, heldout_ranks(result, _ds.sequences.vocab))

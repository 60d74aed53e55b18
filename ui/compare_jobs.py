"""The Compare page's use of stored analyses: evaluations that are missing (one button computes them all, one
job per run), per-segment metrics, and one user's top-K lists and explanations, all read from each run's store."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from seqrec_core import compare
from seqrec_core.analysis.kinds_eval import load_model_ties
from seqrec_core.data.dataset import Dataset
from ui import explain_cache as ecache
from ui import stored


def offer_missing(missing: list, ds: Dataset) -> None:
    """Runs without a stored evaluation for this setting: say which, and compute them (one job per run)."""
    running = [job for run, _ in missing for job in stored.active_jobs(run)]
    names = ", ".join(run.path.name for run, _ in missing)
    if running:
        st.info(f"Evaluating {names} in the background; the comparison fills in when the jobs have stored it.")
        for job in running:
            stored.job_progress(job, key=f"compare_{job.name}")
        return
    st.info(f"{len(missing)} run{'s have' if len(missing) != 1 else ' has'} no stored evaluation for this setting "
            f"({names}), so {'they are' if len(missing) != 1 else 'it is'} left out below. Each evaluation runs "
            "as a background job and is stored with its run.")
    if st.button("Compute the missing evaluations", key="compare_compute", type="primary"):
        for run, found in missing:
            stored.start_analysis(run, ds, [found], f"evaluating {run.path.name}")
        st.rerun()


def segments(runs: dict, evaluations: dict, first: str, ds: Dataset, exclude_seen: bool,
             with_baselines: bool) -> pd.DataFrame | None:
    """Metrics per user segment from every run's stored model-ties analysis, or None when one lacks it."""
    frames = []
    for name, run in runs.items():
        if name not in evaluations:
            continue
        found = stored.lookup(run, ds, "model_ties", exclude_seen=exclude_seen)
        if not found.fresh:
            return None
        table, _ = load_model_ties(found.unit, name)
        keep = table["model"] == name
        if with_baselines and name == first:
            keep |= table["model"].isin(compare.BASELINE_NAMES)
        frames.append(table[keep])
    return pd.concat(frames, ignore_index=True) if frames else None


def stored_topk(pair: dict, ds: Dataset, user: str, k: int, exclude_seen: bool) -> pd.DataFrame | None:
    """Both runs' stored top-K for ``user`` as the page's long frame, or None when either lacks it."""
    from seqrec_core.analysis.kinds_explain import load_recommendations

    recs = {}
    for name, run in pair.items():
        found = stored.lookup(run, ds, "recommendations")
        got = load_recommendations(found.unit, ds.sequences.vocab, user, k, exclude_seen) if found.fresh else None
        if got is None:
            return None
        recs[name] = got[0]
    return compare.combine_topk(recs, ds.sequences, user)


def stored_ig(run, ds: Dataset, user: str, target_kind: str):  # noqa: ANN001, ANN201 - LazyRun -> Attribution|None
    """The run's stored IG explanation (50 steps) of ``user`` for "top" or "heldout", or None."""
    found = stored.lookup(run, ds, "explanations")
    if not found.fresh:
        return None
    return ecache.stored_attribution(str(found.unit.folder), found.unit.created, user, target_kind, "ig",
                                     found.unit, ds.sequences.vocab)


def planted_head_to_head(pair: dict, ds: Dataset) -> None:
    """On the demo: how often each run's explanation finds the planted trigger 20-40 events back (the Explain
    page's planted check, stored with each run), the clearest test of whether a run learned long-range pairs."""
    from seqrec_core.data.dataset import DEMO

    if ds.source is None or ds.source.path != DEMO:
        return
    found = {label: stored.lookup(run, ds, "planted", demo_seed=int(ds.source.demo_seed))
             for label, run in pair.items()}
    if not all(f.fresh for f in found.values()):
        return
    st.markdown("**Long-range pairs planted in the demo** (Explain → Planted truth check): for held-out planted "
                "responses a run ranks in its top 10, how often is the planted trigger, 20–40 events back, among "
                "the 3 events its integrated gradients credit most?")
    cols = st.columns(len(found))
    for col, (label, f) in zip(cols, found.items(), strict=True):
        cases = f.unit.table("cases")
        share = float(cases["hit"].mean()) if len(cases) else None
        col.metric(f"Run {label}: trigger found", "no cases" if share is None else f"{share:.0%}",
                   help=f"{len(cases):,} held-out planted responses in the run's top 10 "
                        f"({pair[label].path.name}, {pair[label].config['model'].get('positions', 'n/a')} positions).")
        col.caption(f"{len(cases):,} planted responses ranked in the top 10")


"""The sidebar every page shares: the dataset in use and the run in use, with a way to change the run."""
from __future__ import annotations

import streamlit as st

from ui import state


def _run_label(info) -> str:  # noqa: ANN001 - seqrec_core.runs.RunInfo
    ndcg = (info.metrics or {}).get("NDCG@10")
    score = f" · NDCG@10 {ndcg:.3f}" if isinstance(ndcg, (int, float)) else ""
    return f"{info.name} ({info.family}{score})"


def render_sidebar() -> None:
    from seqrec_core.runs import list_runs

    ds = state.get_dataset()
    with st.sidebar:
        st.caption("IN USE")
        if ds is None:
            st.markdown("**Dataset:** none yet")
            st.page_link("pages/0_Home.py", label="Load the demo on Home")
            return
        seqs = ds.sequences
        st.markdown(f"**Dataset:** {ds.name}  \n{seqs.n_users:,} users · {seqs.vocab.n_items:,} items · "
                    f"{seqs.n_events:,} events")
        runs = [r for r in list_runs(state.runs_root()) if r.fingerprint == ds.fingerprint]
        if not runs:
            st.markdown("**Model:** none trained on this data yet")
            st.page_link("pages/3_Train.py", label="Train one")
            return
        paths = [str(r.path) for r in runs]
        current = st.session_state.get(state.RUN_KEY)
        if current not in paths:  # nothing chosen for this data yet: the newest usable run is the natural default
            current = state.first_loadable(paths) or paths[0]
            state.set_run(current)
        index = paths.index(current)
        choice = st.selectbox("Model (run)", paths, index=index, format_func=lambda p: _run_label(runs[paths.index(p)]),
                              placeholder="Pick a trained run", help="Runs trained on this dataset, newest first.")
        if choice != current:
            state.set_run(choice)
        run = state.get_run()
        for note in getattr(run, "warnings", None) or []:  # parts of the run folder that loading ignored
            st.caption(f"⚠ {note}")

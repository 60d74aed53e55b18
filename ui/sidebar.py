"""The sidebar every page shares: the dataset in use and the run in use, with a way to change the run.

The run is chosen by its folder name, which is also the ``run`` parameter of the page's address (a link to a view
names its run); reading the runs list touches only JSON, never a model."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import state


def _run_caption(info) -> str:  # noqa: ANN001 - seqrec_core.runs.RunInfo
    ndcg = (info.metrics or {}).get("NDCG@10")
    score = f" · test NDCG@10 {ndcg:.3f}" if isinstance(ndcg, (int, float)) else ""
    return f"{info.family}{score} · trained {info.created[:10]}" if info.created else f"{info.family}{score}"


def _use_chosen_run() -> None:
    name = st.session_state.get("run")
    if name:
        state.set_run(state.runs_root() / name)


def render_sidebar() -> None:
    from seqrec_core.runs import list_runs

    ds = state.get_dataset()
    with st.sidebar:
        st.caption("IN USE")
        if ds is None:
            st.markdown("**Dataset:** none yet")
            st.page_link("app_pages/0_Home.py", label="Load the demo on Home")
            return
        seqs = ds.sequences
        st.markdown(f"**Dataset:** {ds.name}  \n{seqs.n_users:,} users · {seqs.vocab.n_items:,} items · "
                    f"{seqs.n_events:,} events")
        runs = [r for r in list_runs(state.runs_root()) if r.fingerprint == ds.fingerprint]
        if not runs:
            st.markdown("**Model:** none trained on this data yet")
            st.page_link("app_pages/3_Train.py", label="Train one")
            return
        names = [r.name for r in runs]
        current = Path(st.session_state.get(state.RUN_KEY) or "").name
        if current not in names:  # nothing chosen for this data yet: the newest usable run is the natural default
            path = state.first_loadable([str(r.path) for r in runs]) or str(runs[0].path)
            state.set_run(path)
            current = Path(path).name
        if st.session_state.get("run") != current:  # another page (e.g. Train's "Use this run") changed it
            st.session_state["run"] = current
        st.selectbox("Model (run)", names, key="run", bind="query-params", on_change=_use_chosen_run,
                     help="Runs trained on this dataset, newest first. The page's address names the run, so a "
                          "copied link opens the same one.")
        st.caption(_run_caption(runs[names.index(current)]))
        run = state.get_run()
        for note in getattr(run, "warnings", None) or []:  # parts of the run folder that loading ignored
            st.caption(f"⚠ {note}")

"""The pre-trained demo runs: installed into the runs folder the first time a session uses the demo log."""
from __future__ import annotations

import logging

import streamlit as st

from seqrec_core.data.dataset import DEMO
from seqrec_core.demo_run import install_demo_runs
from ui import state

log = logging.getLogger(__name__)
CHECKED_KEY = "demo_run_checked"


def ensure_demo_run() -> None:
    """With the demo log (seed 0) in use, put the shipped demo runs in the runs folder (once per session) and use
    the first when no run is in use, so every page works (from stored analyses, at once) without training first."""
    ds = st.session_state.get(state.DATASET_KEY)
    source = getattr(ds, "source", None)  # None for an uploaded log
    if source is None or source.path != DEMO or source.demo_seed != 0 or st.session_state.get(CHECKED_KEY):
        return
    st.session_state[CHECKED_KEY] = True
    try:
        paths = install_demo_runs(state.runs_root(), ds.fingerprint)
    except OSError as err:  # a read-only runs folder: the app works on, without the demo model
        log.warning("could not install the demo runs: %s", err)
        return
    if paths and st.session_state.get(state.RUN_KEY) is None:
        state.set_run(paths[0])

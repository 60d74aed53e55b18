"""The pre-trained demo model: installed into the runs folder the first time a session uses the demo log."""
from __future__ import annotations

import logging

import streamlit as st

from seqrec_core.data.dataset import DEMO
from seqrec_core.demo_run import install_demo_run
from ui import state

log = logging.getLogger(__name__)
CHECKED_KEY = "demo_run_checked"


def ensure_demo_run() -> None:
    """With the demo log (seed 0) in use, put the shipped demo run in the runs folder (once per session) and use
    it when no run is in use, so Explain, Evaluate and Recommendations work without training first."""
    ds = st.session_state.get(state.DATASET_KEY)
    source = getattr(ds, "source", None)  # None for an uploaded log
    if source is None or source.path != DEMO or source.demo_seed != 0 or st.session_state.get(CHECKED_KEY):
        return
    st.session_state[CHECKED_KEY] = True
    try:
        path = install_demo_run(state.runs_root(), ds.fingerprint)
    except OSError as err:  # a read-only runs folder: the app works on, without the demo model
        log.warning("could not install the demo run: %s", err)
        return
    if path is not None and st.session_state.get(state.RUN_KEY) is None:
        state.set_run(path)

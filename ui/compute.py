"""Cached wrappers around the heavy library calls, keyed by run path + data fingerprint + parameters.

Arguments starting with an underscore are not hashed by Streamlit; the string keys before them identify the work.
Results are ``st.cache_data`` (each session gets its own copy, so one page changing a result cannot change
another session's); only the fitted baselines are shared objects (``st.cache_resource``), which scoring only reads.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from seqrec_core.data.dataset import Dataset
from seqrec_core.evaluation import EvalResult, default_exclude_seen, evaluate
from seqrec_core.models.baselines import fit_baselines
from seqrec_core.recommend import get_all_recommendations


@st.cache_data(show_spinner=False, max_entries=8)
def exclude_seen_default(fingerprint: str, _ds: Dataset) -> bool:
    """Whether this log calls for excluding seen items (no repeat consumption); see evaluation.default_exclude_seen."""
    return default_exclude_seen(_ds.sequences)


@st.cache_resource(show_spinner="Fitting the baselines…", max_entries=4)
def _fitted_baselines(fingerprint: str, _ds: Dataset) -> dict:
    return fit_baselines(_ds.sequences)


def baselines(fingerprint: str, ds: Dataset) -> dict:
    """Name -> fitted baseline scorer; the dict is the caller's, the scorers are shared and only read."""
    return dict(_fitted_baselines(fingerprint, ds))


@st.cache_data(show_spinner=False, max_entries=16)
def evaluation(run_key: str, fingerprint: str, exclude_seen: bool, _run, _ds: Dataset) -> dict[str, EvalResult]:
    """The model and every baseline on the test split, same protocol."""
    progress = st.progress(0.0, text="Ranking the whole catalogue for every user…")
    scorers = {_run.path.name: _run.scorer(), **baselines(fingerprint, _ds)}
    results = {}
    for i, (name, scorer) in enumerate(scorers.items()):
        def tick(done: int, total: int, i: int = i, name: str = name) -> None:
            progress.progress(min((i + done / max(total, 1)) / len(scorers), 1.0),
                              text=f"Evaluating {name}: {done:,}/{total:,} users")

        results[name] = evaluate(scorer, _ds.sequences, "test", exclude_seen=exclude_seen, progress=tick)
    progress.empty()
    return results


@st.cache_data(show_spinner=False, max_entries=4)
def all_recommendations(run_key: str, fingerprint: str, k: int, exclude_seen: bool, _run, _ds: Dataset) -> pd.DataFrame:
    progress = st.progress(0.0, text="Scoring every user…")
    frame = get_all_recommendations(_run.scorer(), _ds.sequences, k, exclude_seen=exclude_seen,
                                    progress=lambda d, t: progress.progress(min(d / max(t, 1), 1.0),
                                                                            text=f"Scoring every user: {d:,}/{t:,}"))
    progress.empty()
    return frame


def run_key(run) -> str:  # noqa: ANN001 - seqrec_core.runs.Run
    """Identifies a run's content: its path plus the model file's modification time."""
    weights = run.path / "model.safetensors"
    mtime = weights.stat().st_mtime if weights.exists() else 0
    return f"{run.path}@{mtime:.0f}"

"""Small cached helpers the pages share: the data's "exclude seen" default, a stored evaluation read back, and
the key that identifies a run's content in every cache.

Arguments starting with an underscore are not hashed by Streamlit; the string keys before them identify the work.
Results are ``st.cache_data`` (each session gets its own copy, so one page changing a result cannot change
another session's). The heavy evaluations themselves are stored analyses (ui.stored), never computed here.
"""
from __future__ import annotations

import streamlit as st

from seqrec_core.analysis.kinds_eval import StoredEvaluation, load_evaluation
from seqrec_core.data.dataset import Dataset
from seqrec_core.evaluation import default_exclude_seen


@st.cache_data(show_spinner=False, max_entries=8)
def exclude_seen_default(fingerprint: str, _ds: Dataset) -> bool:
    """Whether this log calls for excluding seen items (no repeat consumption); see evaluation.default_exclude_seen."""
    return default_exclude_seen(_ds.sequences)


@st.cache_data(show_spinner=False, max_entries=32)
def _stored_evaluation(folder: str, created: str, run_name: str, _unit) -> StoredEvaluation:  # noqa: ANN001
    return load_evaluation(_unit, run_name)


def stored_evaluation(unit, run_name: str) -> StoredEvaluation:  # noqa: ANN001 - StoredUnit
    """A stored evaluation read back (once per unit and write time; each session gets its own copy)."""
    return _stored_evaluation(str(unit.folder), unit.created, run_name, unit)


def run_key(run) -> str:  # noqa: ANN001 - seqrec_core.runs.Run
    """Identifies a run's content: its path plus the model file's modification time."""
    weights = run.path / "model.safetensors"
    mtime = weights.stat().st_mtime if weights.exists() else 0
    return f"{run.path}@{mtime:.0f}"

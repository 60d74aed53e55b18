"""Cached steps of the Compare page, each keyed by run path + weights mtime (``compute.run_key``) and the data
fingerprint, so adding a run evaluates only that run and returning to the page is instant.

Why per-run caching rather than one cache for "all runs": the set of runs grows one training at a time; a cache
keyed on the whole set would re-rank the catalogue for every old run whenever a new one appears. Arguments
starting with an underscore are not hashed by Streamlit; the string keys before them identify the work. Results
are ``st.cache_data`` (every session gets its own copy), runs are each session's own copies (``state.session_run``).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from seqrec_core import compare
from seqrec_core.data.dataset import Dataset
from seqrec_core.evaluation import EvalResult
from ui import compute, state


@st.cache_data(show_spinner=False, max_entries=256)
def run_meta(path: str, mtime: float) -> compare.RunMeta:
    return compare.get_run_meta(path)


def list_metas(root: Path, fingerprint: str) -> list[compare.RunMeta]:
    """Runs trained on this data, newest first; each read once per config modification time."""
    from seqrec_core.runs import list_runs

    metas = []
    for info in list_runs(root):
        if info.fingerprint != fingerprint:
            continue
        config = info.path / "config.json"
        try:
            metas.append(run_meta(str(info.path), config.stat().st_mtime))
        except (OSError, ValueError):  # vanished or damaged since list_runs read it
            continue
    return metas


def load(path: str | Path):  # noqa: ANN201 - seqrec_core.runs.Run
    """This session's copy of the run at ``path`` (read once per config mtime, shared loader cache)."""
    return state.session_run(path)


def _bar(text: str):  # noqa: ANN202 - (tick, bar)
    bar = st.progress(0.0, text=text)

    def tick(name: str, done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{text} {name}: {done:,}/{total:,} users")

    return tick, bar


@st.cache_data(show_spinner=False, max_entries=64)  # data, not resource: each caller gets its own copy
def run_evaluation(run_key: str, fingerprint: str, exclude_seen: bool, _run, _ds: Dataset) -> EvalResult:
    """One run on the test split (full ranking); named by its folder."""
    tick, bar = _bar("Ranking the whole catalogue for")
    result = compare.evaluate_scorers({_run.path.name: _run.scorer()}, _ds.sequences, exclude_seen=exclude_seen,
                                      progress=tick)[_run.path.name]
    bar.empty()
    return result


@st.cache_data(show_spinner=False, max_entries=8)
def baseline_evaluations(fingerprint: str, exclude_seen: bool, _ds: Dataset) -> dict[str, EvalResult]:
    """Popularity, Markov and item-kNN under the same protocol (fitted once per dataset, shared with Evaluate)."""
    tick, bar = _bar("Ranking the whole catalogue for")
    results = compare.evaluate_scorers(compute.baselines(fingerprint, _ds), _ds.sequences, exclude_seen=exclude_seen,
                                       progress=tick)
    bar.empty()
    return results


@st.cache_data(show_spinner="Bootstrapping the 95% intervals…", max_entries=16)
def metrics_table(keys: tuple[str, ...], fingerprint: str, exclude_seen: bool,
                  _results: list[EvalResult]) -> pd.DataFrame:
    return compare.get_metrics_with_ci(_results)


@st.cache_data(show_spinner="Bootstrapping the paired differences…", max_entries=16)
def paired(keys: tuple[str, ...], fingerprint: str, exclude_seen: bool, reference: str,
           _results: list[EvalResult]) -> pd.DataFrame:
    return compare.get_paired_differences(_results, reference)


@st.cache_data(show_spinner="Bootstrapping the head-to-head difference…", max_entries=32)
def head_to_head(key_a: str, key_b: str, fingerprint: str, exclude_seen: bool, _a: EvalResult,
                 _b: EvalResult) -> pd.DataFrame:
    """Run A minus run B on the same test users (NDCG@10, HR@10), paired bootstrap 95% intervals."""
    return compare.get_paired_difference(_a, _b, labels=("A", "B"))


@st.cache_data(show_spinner="Splitting by history length…", max_entries=32)
def history_buckets(keys: tuple[str, ...], fingerprint: str, exclude_seen: bool, metric: str,
                    _results: list[EvalResult]) -> pd.DataFrame:
    return compare.get_history_length_across(_results, metric=metric)


@st.cache_data(show_spinner="Splitting by user segment…", max_entries=16)
def segment_metrics(keys: tuple[str, ...], fingerprint: str, exclude_seen: bool, _results: list[EvalResult],
                    _ds: Dataset) -> pd.DataFrame:
    """Metrics per temporal user segment; the segments come from the Patterns page's cached report."""
    from ui import patterns_cache

    report = patterns_cache.base_report(fingerprint, _ds)
    return compare.get_segments_across(_results, _ds.sequences, report.per_user)


@st.cache_data(show_spinner="Ranking the catalogue for this user…", max_entries=64)
def topk(keys: tuple[str, ...], fingerprint: str, user: str, k: int, exclude_seen: bool, _runs: dict,
         _ds: Dataset) -> pd.DataFrame:
    scorers = {name: run.scorer() for name, run in _runs.items()}
    return compare.get_topk_comparison(scorers, _ds.sequences, user, k, exclude_seen=exclude_seen)

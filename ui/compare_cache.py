"""Cached steps of the Compare page: every run's stored evaluation read once, and the cheap statistics on top of
them (paired bootstrap differences) computed once per set of runs, data and setting.

Why per-run stores rather than one cache for "all runs": the set of runs grows one training at a time; each run
carries its own evaluation (computed once by its analysis job), so adding a run reads one more table and never
re-ranks the catalogue for the old ones. Arguments starting with an underscore are not hashed by Streamlit; the
string keys before them identify the work. Results are ``st.cache_data`` (every session gets its own copy).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from seqrec_core import compare
from seqrec_core.data.dataset import Dataset
from seqrec_core.evaluation import EvalResult


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


def metrics_table(stored: dict, baselines_from: str) -> pd.DataFrame:
    """The runs' stored metrics rows (95% intervals included) and the baselines' rows from one of them, with
    ``kind`` ("run" / "baseline") as :func:`seqrec_core.compare.get_metrics_with_ci` gives it."""
    rows = [ev.metrics[ev.metrics["model"] == name] for name, ev in stored.items()]
    base = stored[baselines_from].metrics
    rows.append(base[base["model"].isin(compare.BASELINE_NAMES)])
    table = pd.concat(rows, ignore_index=True)
    table.insert(1, "kind", ["baseline" if m in compare.BASELINE_NAMES else "run" for m in table["model"]])
    return table


def history_table(stored: dict, baselines_from: str, metric: str, with_baselines: bool) -> pd.DataFrame:
    """Metric per history-length bucket for every run (and the baselines), from the stored evaluations."""
    frames = []
    for name, ev in stored.items():
        frames.append(ev.by_history[(ev.by_history["model"] == name) & (ev.by_history["metric"] == metric)])
    if with_baselines:
        by = stored[baselines_from].by_history
        frames.append(by[by["model"].isin(compare.BASELINE_NAMES) & (by["metric"] == metric)])
    frame = pd.concat(frames, ignore_index=True).drop(columns="metric")
    order = list(dict.fromkeys(stored[baselines_from].by_history["bucket"].astype(str)))
    frame["bucket"] = pd.Categorical(frame["bucket"].astype(str), categories=order, ordered=True)
    return frame


@st.cache_data(show_spinner="Bootstrapping the paired differences…", max_entries=16)
def paired(keys: tuple[str, ...], fingerprint: str, exclude_seen: bool, reference: str,
           _results: list[EvalResult]) -> pd.DataFrame:
    # AUC / GAUC join in when every result has its candidate counts (a stored evaluation from before AUC lacks them)
    return compare.get_paired_differences(_results, reference, metrics=compare.metrics_known(_results))


@st.cache_data(show_spinner="Bootstrapping the head-to-head difference…", max_entries=32)
def head_to_head(key_a: str, key_b: str, fingerprint: str, exclude_seen: bool, _a: EvalResult,
                 _b: EvalResult) -> pd.DataFrame:
    """Run A minus run B on the same test users (NDCG@10, HR@10), paired bootstrap 95% intervals."""
    return compare.get_paired_difference(_a, _b, labels=("A", "B"))


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

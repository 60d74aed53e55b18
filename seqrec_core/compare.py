"""Several runs on one dataset side by side: which family and options predict best, for whom, and why.

Why a separate module: the Evaluate and Explain pages look at one run; a reviewer choosing between runs needs the
same numbers for every run under one protocol (test split, full ranking, one exclude-seen rule, the same bootstrap
seed), so differences between rows are differences between models, not between evaluations. Everything here reads
runs through their JSON and safetensors header (no weights) or takes already-evaluated results, so the dashboard
can cache each expensive step on its own.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from seqrec_core.compare_options import differing_options, get_all_options, get_setup, options_for_display
from seqrec_core.compare_options import get_options_table as _options_table
from seqrec_core.compare_paired import (  # re-exported: the page and the tests use compare.<name>
    describe_paired_difference,
    get_paired_difference,
    get_paired_differences,
    paired_difference_for_display,
    paired_differences_for_display,
)
from seqrec_core.data.sequences import SequenceData
from seqrec_core.errors import InputError
from seqrec_core.evaluation import (
    AUC_METRICS,
    EvalResult,
    evaluate,
    get_metrics_by_history_length,
    get_metrics_table,
)
from seqrec_core.models.base import Scorer
from seqrec_core.run_files import read_json, read_safetensors_header

log = logging.getLogger(__name__)

RANK_METRICS = ("HR@10", "NDCG@10", "MRR")  # known for every evaluation, also one stored before AUC existed
# The runs table, its chart, the paired differences and the per-user breakdowns (history length, segments)
COMPARE_METRICS = (*RANK_METRICS, *AUC_METRICS)
NO_AUC = "— (evaluated before AUC)"  # a run whose stored evaluation has no candidate counts: recompute it
BASELINE_NAMES = ("popularity", "markov", "itemknn")  # what models.baselines.fit_baselines returns
Progress = Callable[[int, int], None]


def metrics_known(results: Sequence[EvalResult]) -> tuple[str, ...]:
    """:data:`COMPARE_METRICS` when every result has the candidate counts AUC / GAUC need, else the rank metrics
    alone (an evaluation stored before AUC existed lacks them)."""
    return COMPARE_METRICS if all(r.has_auc for r in results) else RANK_METRICS


@dataclass(frozen=True)
class RunMeta:
    """What the runs table shows about a run besides its metrics, read without loading the weights."""

    path: Path
    name: str
    family: str
    created: str
    fingerprint: str | None
    train_seconds: float | None
    n_params: int | None
    device: str | None
    epochs: int | None
    setup: str  # family + the model options that differ from its defaults, e.g. "sasrec · time features · loss gbce"
    options: dict = field(default_factory=dict, hash=False)  # every model and training option (compare_options)


# Tensors a run stores that are data, not learned parameters: the frozen item-text matrix (a persistent buffer of
# models.text_features.TextItemFeatures, saved so a loaded run needs no encoder). Counting it would make a text run
# look tens of times larger than it is (n_items x the encoder's width).
FROZEN_TENSORS = frozenset({"item_emb.text.text"})


def count_parameters(weights: str | Path) -> int | None:
    """Number of learned values in a safetensors file, read from its JSON header (no tensor is loaded, size and
    nesting bounded); the stored frozen tensors (:data:`FROZEN_TENSORS`) are left out. None when unreadable."""
    try:
        header, _body = read_safetensors_header(Path(weights))
    except InputError:
        return None
    total = 0
    for name, entry in header.items():
        shape = entry.get("shape", [])
        if name in FROZEN_TENSORS or not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
            continue
        total += math.prod(shape)
    return total


def get_run_meta(path: str | Path) -> RunMeta:
    """Family, creation time, data fingerprint, training time, parameters and device of a run folder."""
    folder = Path(path)
    config = read_json(folder / "config.json", "config")  # size- and depth-bounded: one line, never a RecursionError
    if not isinstance(config, dict) or not isinstance(config.get("family"), str):
        raise InputError(f"{folder / 'config.json'}: lacks the model 'family'; the run folder is damaged")
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    seconds = config.get("train_seconds")
    epochs = config.get("epochs_trained")
    return RunMeta(path=folder, name=folder.name, family=config["family"], created=str(config.get("created", "")),
                   fingerprint=data.get("fingerprint"),
                   train_seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
                   n_params=count_parameters(folder / "model.safetensors"),
                   device=str(config["device"]) if config.get("device") else None,
                   epochs=int(epochs) if isinstance(epochs, int) else None,
                   setup=get_setup(config["family"], model, train),
                   options=get_all_options({"family": config["family"], "model": model, "train": train}))


def list_run_metas(root: str | Path | None = None, fingerprint: str | None = None) -> list[RunMeta]:
    """Every readable run under ``root`` (newest first), only those trained on ``fingerprint`` when given."""
    from seqrec_core.runs import list_runs

    metas = []
    for info in list_runs(root):
        if fingerprint is not None and info.fingerprint != fingerprint:
            continue
        try:
            metas.append(get_run_meta(info.path))
        except InputError as err:
            log.warning("skipping run %s: %s", info.path, err)
    return metas


def evaluate_scorers(scorers: Mapping[str, Scorer], data: SequenceData, *, exclude_seen: bool,
                     progress: Callable[[str, int, int], None] | None = None) -> dict[str, EvalResult]:
    """Every scorer on the test split under one protocol; results are named by the mapping's keys."""
    results = {}
    for name, scorer in scorers.items():
        tick = None if progress is None else (lambda d, t, name=name: progress(name, d, t))
        res = evaluate(scorer, data, "test", exclude_seen=exclude_seen, progress=tick)
        res.name = name
        results[name] = res
    return results


def get_metrics_with_ci(results: Sequence[EvalResult], n_boot: int = 1000) -> pd.DataFrame:
    """One row per evaluated model (runs and baselines): every metric with its 95% bootstrap bounds
    ("<metric> lo" / "<metric> hi"), users, exclude_seen, and ``kind`` ("run" or "baseline")."""
    table = get_metrics_table(list(results), n_boot=n_boot)
    table.insert(1, "kind", ["baseline" if m in BASELINE_NAMES else "run" for m in table["model"]])
    return table


def get_runs_table(metas: Sequence[RunMeta], metrics: pd.DataFrame,
                   columns: Sequence[str] = COMPARE_METRICS) -> pd.DataFrame:
    """The Compare page's main table: one row per run, in the order of ``metas``.

    ``metrics`` is :func:`get_metrics_with_ci`'s table (rows matched on the run name); a run missing there gets
    NaN metrics rather than disappearing, so the table always lists every run.
    """
    by_name = metrics.set_index("model") if len(metrics) else pd.DataFrame()
    rows = []
    for meta in metas:
        row: dict = {"family": meta.family, "run": meta.name, "setup": meta.setup, "created": meta.created}
        hit = by_name.loc[meta.name] if meta.name in by_name.index else None
        for m in columns:
            for suffix in ("", " lo", " hi"):
                value = hit.get(f"{m}{suffix}") if hit is not None else None
                row[f"{m}{suffix}"] = float(value) if value is not None and pd.notna(value) else float("nan")
        row["test users"] = int(hit["users"]) if hit is not None else 0
        row["exclude_seen"] = bool(hit["exclude_seen"]) if hit is not None else None
        row["train seconds"] = meta.train_seconds
        row["epochs"] = meta.epochs
        row["parameters"] = meta.n_params
        row["device"] = meta.device
        row["data fingerprint"] = meta.fingerprint
        row["path"] = str(meta.path)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        cols = ["family", "run", "setup", "created", *[f"{m}{s}" for m in columns for s in ("", " lo", " hi")],
                "test users", "exclude_seen", "train seconds", "epochs", "parameters", "device", "data fingerprint",
                "path"]
        return pd.DataFrame(columns=cols)
    for col in ("parameters", "epochs"):
        frame[col] = pd.array(frame[col], dtype="Int64")
    return frame


def get_options_table(metas: Sequence[RunMeta]) -> pd.DataFrame:
    """Every model and training option of every run, one row per run (columns: run, family, then the options
    as text; "" where a run's family lacks the option). :func:`options_for_display` hides the shared ones."""
    return _options_table({m.name: {"family": m.family, **m.options} for m in metas})


def _fmt_ci(value: float, lo: float, hi: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.4f} ({lo:.4f}–{hi:.4f})" if np.isfinite(lo) and np.isfinite(hi) else f"{value:.4f}"


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "n/a"
    return f"{seconds:.1f} s" if seconds < 60 else f"{seconds / 60:.1f} min" if seconds < 3600 else \
        f"{seconds / 3600:.1f} h"


def runs_table_for_display(table: pd.DataFrame, columns: Sequence[str] = COMPARE_METRICS) -> pd.DataFrame:
    """The runs table as people read it: which run and its setup (what differs from the family's defaults), then
    "value (95% CI lo–hi)" per metric, then cost (training time, parameters, device) and provenance (created,
    data fingerprint). A run with rank metrics but no AUC (stored before AUC existed) says so: :data:`NO_AUC`."""
    out = pd.DataFrame({"run": table["run"], "setup": table["setup"]})
    evaluated = pd.to_numeric(table[columns[0]], errors="coerce").notna() if columns else None
    for m in columns:
        cells = [_fmt_ci(v, lo, hi) for v, lo, hi in zip(table[m], table[f"{m} lo"], table[f"{m} hi"], strict=True)]
        if m in AUC_METRICS and evaluated is not None:
            cells = [NO_AUC if cell == "n/a" and seen else cell for cell, seen in zip(cells, evaluated, strict=True)]
        out[f"{m} (95% CI)"] = cells
    out["training time"] = [_fmt_duration(s) for s in pd.to_numeric(table["train seconds"], errors="coerce")]
    out["parameters"] = [f"{int(n):,}" if pd.notna(n) else "n/a" for n in table["parameters"]]
    out["device"] = table["device"].fillna("n/a")
    out["epochs"] = table["epochs"]
    out["created"] = [c.replace("T", " ")[:16] for c in table["created"].astype(str)]
    out["data fingerprint"] = table["data fingerprint"].fillna("n/a")
    return out


def get_history_length_across(results: Sequence[EvalResult], metric: str = "NDCG@10",
                              n_boot: int = 1000) -> pd.DataFrame:
    """Metric per history-length bucket for every result (the Evaluate page's buckets), with 95% bounds."""
    return get_metrics_by_history_length(list(results), metric=metric, n_boot=n_boot)


def get_segments_across(results: Sequence[EvalResult], data: SequenceData, segments: pd.DataFrame,
                        metrics: Sequence[str] | None = None, n_boot: int = 1000) -> pd.DataFrame:
    """Metrics per temporal user segment (``segments``: the pattern report's ``per_user``) for every result;
    ``metrics`` defaults to :data:`COMPARE_METRICS`, without AUC / GAUC when a result lacks their counts."""
    from seqrec_core.patterns.model_ties import get_metrics_by_segment

    if metrics is None:
        metrics = metrics_known(results)
    frames = [get_metrics_by_segment(r, data, segments, metrics=metrics, n_boot=n_boot) for r in results]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ----------------------------------------------------------------------------------------- one user, two runs
def get_topk_comparison(scorers: Mapping[str, Scorer], data: SequenceData, user: str, k: int = 10, *,
                        exclude_seen: bool = True) -> pd.DataFrame:
    """Each scorer's top-k for ``user`` from the history before the held-out event, long form.

    Columns: run, rank, item_id, title, category, score, heldout (the item is the user's real next event),
    in_all (every other run also lists it). Why long: any number of runs; :func:`topk_side_by_side` lays two out.
    """
    from seqrec_core.recommend import get_recommendations

    if not data.vocab.has_user(user):
        raise InputError(f"user '{user}' is not in this log; pick one of e.g. {', '.join(data.vocab.user_ids[:3])}")
    return combine_topk({name: get_recommendations(scorer, data, user, k, exclude_seen=exclude_seen, holdout=True)
                         for name, scorer in scorers.items()}, data, user)


def combine_topk(recs: Mapping[str, pd.DataFrame], data: SequenceData, user: str) -> pd.DataFrame:
    """:func:`get_topk_comparison`'s long frame from each run's top-k already at hand (e.g. stored ones)."""
    seq = data.sequences[data.vocab.user_index(user)]
    heldout = data.vocab.item_id(int(seq[-1])) if len(seq) >= 2 else None
    frames = []
    for name, frame in recs.items():
        frame = frame.copy()
        frame.insert(0, "run", name)
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["run", "rank", "item_id", "title", "category", "score"])
    frame["heldout"] = frame["item_id"] == heldout if heldout is not None else False
    lists = {name: set(group["item_id"]) for name, group in frame.groupby("run", sort=False)}
    frame["in_all"] = [all(item in items for other, items in lists.items() if other != run)
                       for run, item in zip(frame["run"], frame["item_id"], strict=True)]
    return frame


def topk_side_by_side(frame: pd.DataFrame, runs: Sequence[str],
                      labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Two (or more) runs' top-k as aligned columns: rank, then per run "<label>: item" (title, else "id ...",
    with "✓" when every other run lists it too and "★" for the user's real next item), "<label>: id" and
    "<label>: score". ``labels`` name the runs in the headers (default: the run names)."""
    out = pd.DataFrame({"rank": sorted(set(frame["rank"]))}) if len(frame) else pd.DataFrame({"rank": []})
    for run in runs:
        head = (labels or {}).get(run, run)
        part = frame[frame["run"] == run].set_index("rank").reindex(out["rank"])
        text = []
        for title, item, held, shared in zip(part["title"], part["item_id"], part["heldout"], part["in_all"],
                                             strict=True):
            if not isinstance(item, str):
                text.append("")
                continue
            name = title if isinstance(title, str) and title else f"id {item}"
            text.append(name + (" ✓" if shared is True else "") + (" ★" if held is True else ""))
        out[f"{head}: item"] = text
        out[f"{head}: id"] = part["item_id"].fillna("").astype(str).to_numpy()
        out[f"{head}: score"] = part["score"].to_numpy(dtype=float)
    return out


def align_attributions(attributions: Mapping[str, object]) -> pd.DataFrame:
    """Several runs' attributions of one user's history as aligned columns, one row per history event.

    ``attributions``: run name -> :class:`seqrec_core.explain.attribution.Attribution` over the same history.
    Rows are matched by lag (1 = the latest event), so runs with different history windows line up on the
    same events; an event outside a run's window is NaN in that run's column. Columns: position, lag, item_id,
    title, category, timestamp, seconds_before (to the prediction; NaN without time), then one column per run.
    """
    if not attributions:
        return pd.DataFrame(columns=["position", "lag", "item_id", "title", "category", "timestamp", "seconds_before"])
    frames = {name: a.to_frame() for name, a in attributions.items()}  # type: ignore[attr-defined]
    longest = max(frames.values(), key=len)
    base = longest[["lag", "item_id", "title", "category", "timestamp", "seconds_before"]].copy()
    for name, fr in frames.items():
        longer = fr.set_index("lag")
        shared = base["lag"].isin(longer.index)
        if not (base.loc[shared, "item_id"].to_numpy()
                == longer.loc[base.loc[shared, "lag"], "item_id"].to_numpy()).all():
            raise InputError(f"the attributions of '{name}' are over another history than the others; explain the "
                             "same user with holdout on for every run")
        base[name] = base["lag"].map(longer["attribution"]).astype("float64")
    base.insert(0, "position", np.arange(1, len(base) + 1))
    return base.reset_index(drop=True)


def get_attribution_targets(attributions: Mapping[str, object]) -> pd.DataFrame:
    """Per run: which item its attribution explains and how well IG converged (for the page's header rows)."""
    rows = []
    for name, a in attributions.items():
        rows.append({"run": name, "target_item": a.target_item,  # type: ignore[attr-defined]
                     "target_title": a.target_title,  # type: ignore[attr-defined]
                     "target_score": a.target_score, "baseline_score": a.baseline_score,  # type: ignore[attr-defined]
                     "convergence_delta": a.convergence_delta,  # type: ignore[attr-defined]
                     "target_rank": a.target_rank, "events_seen": len(a.scores),  # type: ignore[attr-defined]
                     "steps": a.steps})  # type: ignore[attr-defined]
    return pd.DataFrame(rows, columns=["run", "target_item", "target_title", "target_score", "baseline_score",
                                       "convergence_delta", "target_rank", "events_seen", "steps"])


def get_attribution_comparison(runs: Mapping[str, object], data: SequenceData, user: str,
                               target: str | None = "heldout", *, steps: int = 50) -> tuple[pd.DataFrame, pd.DataFrame]:
    """IG attributions of ``user``'s held-out prediction for every run: (aligned events, per-run targets).

    ``target``: "heldout" explains the same real next item in every run (comparable columns); None explains each
    run's own top recommendation; an item id explains that item.
    """
    from seqrec_core.explain.attribution import attribute

    attrs = {name: attribute(run, data, user, target, "ig", steps=steps, holdout=True) for name, run in runs.items()}
    return align_attributions(attrs), get_attribution_targets(attrs)


__all__ = ["BASELINE_NAMES", "COMPARE_METRICS", "NO_AUC", "RANK_METRICS", "RunMeta", "align_attributions",
           "combine_topk", "count_parameters",
           "describe_paired_difference", "differing_options", "evaluate_scorers", "get_attribution_comparison",
           "get_attribution_targets", "get_history_length_across", "get_metrics_with_ci", "get_options_table",
           "get_paired_difference", "get_paired_differences", "get_run_meta", "get_runs_table", "get_segments_across",
           "get_topk_comparison", "list_run_metas", "metrics_known", "options_for_display",
           "paired_difference_for_display", "paired_differences_for_display",
           "runs_table_for_display", "topk_side_by_side"]

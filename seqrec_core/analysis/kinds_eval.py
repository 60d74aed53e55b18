"""Stored evaluation: the run and the three baselines on the test split (ranks per user, metrics with 95%
intervals, metrics by history length), and the Patterns page's model view (metrics per user segment, inside vs
outside bursts, attribution by time).

The run is stored under the placeholder name :data:`RUN` and renamed to the run's folder name when read, so a run
that is copied or renamed (the shipped demo run is installed under another name) keeps its stored evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqrec_core.analysis.registry import AnalysisContext, Computed, Kind, Progress, log_default_exclude_seen, register
from seqrec_core.analysis.store import StoredUnit
from seqrec_core.errors import InputError
from seqrec_core.evaluation import ALL_METRICS, EvalResult, default_exclude_seen
from seqrec_core.explain_methods import time_mass_keys

RUN = "<run>"  # the run's name inside stored tables


def _both_settings(ctx: AnalysisContext) -> list[dict]:
    """The data's default "exclude seen" setting first, then the other: the pages' toggle never waits."""
    first = default_exclude_seen(ctx.data)
    return [{"exclude_seen": first}, {"exclude_seen": not first}]


def evaluation_results(ctx: AnalysisContext, exclude_seen: bool, progress: Progress | None = None) -> dict:
    """Name -> EvalResult for the run (as :data:`RUN`) and every baseline; computed once per job and setting."""
    from seqrec_core.evaluation import evaluate
    from seqrec_core.models.baselines import fit_baselines

    key = ("evaluation", bool(exclude_seen))
    if key in ctx.cache:
        return ctx.cache[key]
    if "baselines" not in ctx.cache:
        ctx.cache["baselines"] = fit_baselines(ctx.data)
    scorers = {RUN: ctx.run.scorer(device=ctx.device), **ctx.cache["baselines"]}
    results = {}
    for i, (name, scorer) in enumerate(scorers.items()):
        tick = None if progress is None else (
            lambda done, total, i=i: progress(i * total + done, len(scorers) * total))
        result = evaluate(scorer, ctx.data, "test", exclude_seen=exclude_seen, progress=tick)
        result.name = name
        results[name] = result
    ctx.cache[key] = results
    return results


def _compute_evaluation(ctx: AnalysisContext, params: dict, progress: Progress | None) -> Computed:
    from seqrec_core.evaluation import get_metrics_by_history_length, get_metrics_table

    results = evaluation_results(ctx, params["exclude_seen"], progress)
    ranks = pd.concat([pd.DataFrame({"model": name, "user": r.users.astype(np.int64), "rank": r.ranks.astype(np.int64),
                                     "history_len": r.history_len.astype(np.int64),
                                     "candidates": r.n_candidates, "ties": r.ties}) for name, r in results.items()],
                      ignore_index=True)
    ordered = list(results.values())
    by_history = pd.concat([get_metrics_by_history_length(ordered, metric=m).assign(metric=m) for m in ALL_METRICS],
                           ignore_index=True)
    by_history["bucket"] = by_history["bucket"].astype(str)
    info = {"users": int(len(ordered[0].users)), "models": list(results), "items": int(ctx.data.vocab.n_items)}
    return {"ranks": ranks, "metrics": get_metrics_table(ordered), "by_history": by_history}, info


# version 2: the ranks table also stores each user's candidates and ties, so AUC / GAUC (exact, with intervals)
# are in the metrics and by-history tables; a version-1 unit still loads, with AUC unknown (see load_evaluation)
EVALUATION = register(Kind(
    name="evaluation", version=2, defaults={"exclude_seen": False}, compute=_compute_evaluation,
    label="the run and the baselines on the test split", variants=_both_settings))


@dataclass
class StoredEvaluation:
    """What the Evaluate and Compare pages show, read back: per-model results (ranks), the metrics table with
    95% intervals and the metrics by history length (long form, one ``metric`` column)."""

    results: dict[str, EvalResult]
    metrics: pd.DataFrame
    by_history: pd.DataFrame
    unit: StoredUnit


def _named(frame: pd.DataFrame, run_name: str) -> pd.DataFrame:
    frame["model"] = frame["model"].astype(str).replace({RUN: run_name})
    return frame


def load_evaluation(unit: StoredUnit, run_name: str) -> StoredEvaluation:
    exclude = bool(unit.params["exclude_seen"])
    ranks = unit.table("ranks")
    results = {}
    for name, rows in ranks.groupby("model", sort=False):
        shown = run_name if name == RUN else str(name)
        counted = "candidates" in rows and "ties" in rows  # absent in units stored before AUC (version 1)
        result = EvalResult(name=shown, part="test", exclude_seen=exclude, users=rows["user"].to_numpy(np.int64),
                            ranks=rows["rank"].to_numpy(np.int64), history_len=rows["history_len"].to_numpy(np.int64),
                            metrics={}, n_candidates=rows["candidates"].to_numpy(np.int64) if counted else None,
                            ties=rows["ties"].to_numpy(np.int64) if counted else None)
        result.metrics = result.all_metrics()
        results[shown] = result
    if not results:
        raise InputError(f"{unit.folder}: the stored evaluation holds no ranks; compute it again")
    by_history = _named(unit.table("by_history"), run_name)
    order = list(dict.fromkeys(by_history["bucket"]))
    by_history["bucket"] = pd.Categorical(by_history["bucket"], categories=order, ordered=True)
    return StoredEvaluation(results=results, metrics=_named(unit.table("metrics"), run_name), by_history=by_history,
                            unit=unit)


# ------------------------------------------------------------------------------------ patterns and the model
def needs_time(ctx: AnalysisContext) -> str | None:
    return None if ctx.data.has_time else "the log has no timestamps (only an event order)"


def pattern_report(ctx: AnalysisContext):  # noqa: ANN201 - PatternReport
    from seqrec_core.patterns.report import get_pattern_report

    if "patterns" not in ctx.cache:
        ctx.cache["patterns"] = get_pattern_report(ctx.dataset.events, tz="UTC")
    return ctx.cache["patterns"]


def _compute_model_ties(ctx: AnalysisContext, params: dict, progress: Progress | None) -> Computed:
    from seqrec_core.patterns.model_ties import get_burst_split_metrics, get_metrics_by_segment

    report = pattern_report(ctx)
    results = evaluation_results(ctx, params["exclude_seen"], progress)
    seg = [get_metrics_by_segment(r, ctx.data, report.per_user, n_boot=500) for r in results.values()]
    burst = [get_burst_split_metrics(r, ctx.data, report.item_bursts, n_boot=500) for r in results.values()]
    return {"by_segment": pd.concat(seg, ignore_index=True), "by_burst": pd.concat(burst, ignore_index=True)}, {}


# version 3: MRR, AUC and GAUC per segment and burst group too (Compare's "For whom" offers them)
MODEL_TIES = register(Kind(
    name="model_ties", version=3, defaults={"exclude_seen": False}, compute=_compute_model_ties,
    label="metrics per user segment and inside vs outside bursts", skip=needs_time,
    variants=log_default_exclude_seen))


def load_model_ties(unit: StoredUnit, run_name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    return _named(unit.table("by_segment"), run_name), _named(unit.table("by_burst"), run_name)


def _explainable(ctx: AnalysisContext) -> str | None:
    from seqrec_core.analysis.kinds_explain import not_explainable

    return needs_time(ctx) or not_explainable(ctx)


def _compute_time_mass(ctx: AnalysisContext, params: dict, progress: Progress | None) -> Computed:
    from seqrec_core.patterns.model_ties import compute_attribution_time_mass

    report = pattern_report(ctx)
    mass = compute_attribution_time_mass(ctx.run, ctx.data, report.item_bursts, n_users=params["n_users"],
                                         method=params["method"], steps=params["steps"], tz=params["tz"],
                                         seed=params["seed"], progress=progress)
    return {"mass": mass}, {}


TIME_MASS = register(Kind(
    name="time_mass", version=1, defaults={"n_users": 200, "method": "ig", "steps": 20, "tz": "UTC", "seed": 0},
    compute=_compute_time_mass, label="attribution on bursts, same hour and same weekday", skip=_explainable,
    allowed={"n_users": (1, 100_000), "method": time_mass_keys(), "steps": (1, 1000)}))

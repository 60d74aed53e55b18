"""Stored explanations: how far back the model looks (attribution by lag and time gap, attention distance, the
history-truncation ablation), faithfulness curves, the demo's planted-truth check, and per-user explanations
(every method, the top recommendation and the held-out item), attention maps and top-K lists for a sample of users.

Per-user kinds (explanations, attention, recommendations) hold a set of users that grows: asking for more users
computes only those and merges them into what is stored (:mod:`seqrec_core.analysis.job`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from seqrec_core.analysis.registry import (
    AnalysisContext,
    Computed,
    Kind,
    Progress,
    log_default_exclude_seen,
    register,
)
from seqrec_core.analysis.store import StoredUnit
from seqrec_core.errors import InputError
from seqrec_core.explain_methods import describe, method_keys

TARGET_KINDS = {"top": None, "heldout": "heldout"}  # stored target kind -> attribute()'s target
TOP_K_STORED = 50  # the Recommendations page's largest K


def not_explainable(ctx: AnalysisContext) -> str | None:
    model = ctx.run.model
    if hasattr(model, "forward_hidden") and hasattr(model, "item_emb"):
        return None
    return f"the run's family ({ctx.run.family}) has no item-embedding layer to attribute to"


def _tick(progress: Progress | None, offset: int, total: int) -> Progress | None:
    return None if progress is None else (lambda done, _n: progress(offset + done, total))


# ------------------------------------------------------------------------------------- how far back it looks
def _compute_longrange(ctx: AnalysisContext, params: dict, progress: Progress | None) -> Computed:
    from seqrec_core.explain.attention import has_attention
    from seqrec_core.explain.longrange import get_longrange_stats

    method = describe(params["method"])
    if method is None or not method.applies_to(ctx.run.family, has_attention(ctx.run.model)):
        raise InputError(f"the run ({ctx.run.family}) cannot be explained with {params['method']}; use ig or occlusion")
    stats = get_longrange_stats(ctx.run, ctx.data, n_users=params["n_users"], method=params["method"],
                                steps=params["steps"], seed=params["seed"], target=params["target"], progress=progress)
    info = {"share_top_ge20": stats.share_top_ge20, "users": stats.users, "method": stats.method,
            "seconds": stats.seconds, "steps": stats.steps, "target": stats.target,
            "share_mass_ge20": share_beyond(stats.by_lag)}
    return {"by_lag": stats.by_lag, "by_time_gap": stats.by_time_gap,
            "attention_distance": stats.attention_distance}, info


def share_beyond(by_lag: pd.DataFrame, first_far_bucket: str = "21-50") -> float | None:
    """Share of the absolute attribution on events more than 20 steps back (the buckets from 21-50 on)."""
    if by_lag.empty or "bucket" not in by_lag:
        return None
    labels = [str(b) for b in by_lag["bucket"]]
    if first_far_bucket not in labels:
        return 0.0
    return float(by_lag["share_of_abs_attribution"].iloc[labels.index(first_far_bucket):].sum())


LONGRANGE = register(Kind(
    name="longrange", version=1, defaults={"n_users": 500, "method": "ig", "steps": 20, "seed": 0, "target": "top"},
    compute=_compute_longrange, label="attribution by lag and time gap, attention distance", skip=not_explainable,
    allowed={"n_users": (1, 1_000_000), "method": method_keys(), "steps": (1, 1000),
             "target": ("top", "heldout")}))


def load_longrange(unit: StoredUnit):  # noqa: ANN201 - LongRangeStats
    from seqrec_core.explain.longrange import LongRangeStats

    info = unit.info
    return LongRangeStats(by_lag=unit.table("by_lag"), by_time_gap=unit.table("by_time_gap"),
                          share_top_ge20=float(info["share_top_ge20"]),
                          attention_distance=unit.table("attention_distance"), users=int(info["users"]),
                          method=str(info["method"]), seconds=float(info["seconds"]), steps=int(info["steps"]),
                          target=str(info["target"]))


def _compute_truncation(ctx: AnalysisContext, params: dict, progress: Progress | None) -> Computed:
    from seqrec_core.explain.longrange import get_truncation_ablation

    frame = get_truncation_ablation(ctx.run, ctx.data, exclude_seen=params["exclude_seen"], progress=progress)
    return {"ablation": frame}, {"gain_beyond_20": truncation_gain(frame)}


def truncation_gain(frame: pd.DataFrame, k: str = "20") -> float | None:
    """NDCG@10 with the whole history minus NDCG@10 with the last ``k`` events: what older context is worth."""
    rows = frame.set_index("k")["NDCG@10"] if len(frame) else pd.Series(dtype=float)
    if "all" not in rows or k not in rows:
        return None
    return float(rows["all"] - rows[k])


TRUNCATION = register(Kind(
    name="truncation", version=1, defaults={"exclude_seen": False}, compute=_compute_truncation,
    label="test NDCG@10 with only the last k events", skip=not_explainable, variants=log_default_exclude_seen))


# ------------------------------------------------------------------------------------------- can we trust it
def _compute_faithfulness(ctx: AnalysisContext, params: dict, progress: Progress | None) -> Computed:
    from seqrec_core.explain.faithfulness import get_faithfulness

    faith = get_faithfulness(ctx.run, ctx.data, n_users=params["n_users"], max_k=params["max_k"],
                             steps=params["steps"], seed=params["seed"], progress=progress)
    return {"curves": faith.curves, "aopc": faith.aopc}, {"users": faith.users, "max_k": faith.max_k,
                                                          "steps": faith.steps}


# Version 2: LIME and Kernel SHAP joined the compared methods (explain_methods' in_faithfulness).
FAITHFULNESS = register(Kind(
    name="faithfulness", version=2, defaults={"n_users": 200, "max_k": 10, "steps": 20, "seed": 0},
    compute=_compute_faithfulness, label="deletion / insertion curves and AOPC per method", skip=not_explainable,
    allowed={"n_users": (1, 100_000), "max_k": (1, 100), "steps": (1, 1000)}))


def load_faithfulness(unit: StoredUnit):  # noqa: ANN201 - Faithfulness
    from seqrec_core.explain.faithfulness import Faithfulness

    info = unit.info
    return Faithfulness(curves=unit.table("curves"), aopc=unit.table("aopc"), users=int(info["users"]),
                        max_k=int(info["max_k"]), steps=int(info["steps"]))


# ------------------------------------------------------------------------------------------ planted truth
def _demo_seed(ctx: AnalysisContext) -> int | None:
    from seqrec_core.data.dataset import DEMO

    source = getattr(ctx.dataset, "source", None)
    return source.demo_seed if source is not None and source.path == DEMO else None


def _compute_planted(ctx: AnalysisContext, params: dict, progress: Progress | None) -> Computed:
    from seqrec_core.data.synthetic import make_demo_events
    from seqrec_core.explain.planted import get_planted_pair_check

    truth = make_demo_events(seed=params["demo_seed"])[1]
    cases = get_planted_pair_check(ctx.run, ctx.data, truth, steps=params["steps"], progress=progress)
    return {"cases": cases}, {"cases": int(len(cases)),
                              "hit_share": float(cases["hit"].mean()) if len(cases) else None}


PLANTED = register(Kind(
    name="planted", version=1, defaults={"steps": 50, "demo_seed": 0}, compute=_compute_planted,
    label="the demo's planted trigger -> response pairs",
    skip=lambda ctx: not_explainable(ctx) or (None if _demo_seed(ctx) is not None else "only the demo log has "
                                              "planted pairs"),
    variants=lambda ctx: [{"steps": 50, "demo_seed": int(_demo_seed(ctx) or 0)}]))


# --------------------------------------------------------------------------------------- per-user explanations
def explain_methods(model) -> list[str]:  # noqa: ANN001 - nn.Module
    """The registered methods that apply to the model (attention only where it has attention maps)."""
    from seqrec_core.explain.attention import has_attention
    from seqrec_core.explain_methods import applicable

    return list(applicable(None, has_attention(model)))


def _compute_explanations(ctx: AnalysisContext, params: dict, progress: Progress | None) -> Computed:
    from seqrec_core.explain.attribution import attribute

    methods = explain_methods(ctx.run.model)
    events, targets = [], []
    total = max(len(ctx.users) * len(TARGET_KINDS) * len(methods), 1)
    done = 0
    for user in ctx.users:
        for kind_name, target in TARGET_KINDS.items():
            for method in methods:
                try:
                    a = attribute(ctx.run, ctx.data, user, target, method, steps=params["steps"], holdout=True)
                except InputError as err:  # e.g. a user with one event: said once per user, not stored
                    targets.append({"user": user, "target_kind": kind_name, "method": method, "error": str(err)})
                    continue
                finally:
                    done += 1
                    if progress is not None:
                        progress(done, total)
                n = len(a.scores)
                events.append(pd.DataFrame({
                    "user": user, "target_kind": kind_name, "method": method, "item_index": a.item_index,
                    "lag": a.lags, "timestamp": (a.timestamps if a.timestamps is not None else np.full(n, -1)),
                    "seconds_before": (a.seconds_before if a.seconds_before is not None else np.full(n, np.nan)),
                    "attribution": a.scores.astype(np.float64)}))
                targets.append({"user": user, "target_kind": kind_name, "method": method,
                                "target_index": a.target_index, "target_score": a.target_score,
                                "baseline_score": a.baseline_score, "convergence_delta": a.convergence_delta,
                                "steps": a.steps, "samples": a.samples, "baseline": a.baseline,
                                "target_rank": a.target_rank, "note": a.note,
                                "query_time": a.query_time, "error": None})
    columns = ["user", "target_kind", "method", "item_index", "lag", "timestamp", "seconds_before", "attribution"]
    frame = pd.concat(events, ignore_index=True) if events else pd.DataFrame(columns=columns)
    frame["timestamp"] = frame["timestamp"].astype(np.int64)
    frame["seconds_before"] = frame["seconds_before"].astype(np.float64)
    return {"events": frame, "targets": pd.DataFrame(targets)}, {"methods": methods}


# Version 2: every registered method that applies, LIME and Kernel SHAP included (and their samples per target).
EXPLANATIONS = register(Kind(
    name="explanations", version=2, defaults={"steps": 50}, compute=_compute_explanations, per_user=True,
    label="every method's attributions for a sample of users", skip=not_explainable, allowed={"steps": (1, 1000)}))


def load_attribution(unit: StoredUnit, vocab, user: str, target_kind: str, method: str):  # noqa: ANN001, ANN201
    """The stored :class:`Attribution` of one user, target kind ("top"/"heldout") and method, or None."""
    from seqrec_core.explain.attribution import Attribution

    targets = unit.table("targets")
    row = targets[(targets["user"] == user) & (targets["target_kind"] == target_kind) & (targets["method"] == method)]
    if row.empty or (isinstance(row["error"].iloc[0], str) and row["error"].iloc[0]):
        return None
    t = row.iloc[0]
    ev = unit.table("events")
    ev = ev[(ev["user"] == user) & (ev["target_kind"] == target_kind) & (ev["method"] == method)]
    items = ev["item_index"].to_numpy(np.int64)
    ids = [vocab.item_id(int(i)) for i in items]
    stamps = ev["timestamp"].to_numpy(np.int64)
    timed = len(stamps) > 0 and bool((stamps >= 0).all())
    t_idx = int(t["target_index"])
    t_id = vocab.item_id(t_idx)

    def opt(name: str, cast=float):  # noqa: ANN001, ANN202
        value = t[name]
        return None if value is None or (isinstance(value, float) and np.isnan(value)) else cast(value)

    return Attribution(user=user, method=method, target_item=t_id, target_title=vocab.title(t_id), target_index=t_idx,
                       item_index=items, item_ids=ids, titles=[vocab.title(i) for i in ids],
                       categories=[vocab.category(i) for i in ids], lags=ev["lag"].to_numpy(np.int64),
                       timestamps=stamps if timed else None,
                       seconds_before=ev["seconds_before"].to_numpy(np.float64) if timed else None,
                       scores=ev["attribution"].to_numpy(np.float64), target_score=float(t["target_score"]),
                       baseline_score=opt("baseline_score"), convergence_delta=opt("convergence_delta"),
                       steps=opt("steps", int), baseline=opt("baseline", str), target_rank=opt("target_rank", int),
                       note=opt("note", str), query_time=opt("query_time", int),
                       samples=opt("samples", int) if "samples" in t.index else None)


def stored_users(unit: StoredUnit | None) -> list[str]:
    if unit is None:
        return []
    frame = unit.table("targets") if "targets" in unit.table_names else unit.table(unit.table_names[0])
    return list(dict.fromkeys(frame["user"].astype(str)))


# ------------------------------------------------------------------------------------------ attention maps
def _compute_attention(ctx: AnalysisContext, params: dict, progress: Progress | None) -> Computed:
    from seqrec_core.explain.attention import get_attention, has_attention
    from seqrec_core.explain.attribution import history_query_times
    from seqrec_core.models.base import uses_time

    if not has_attention(ctx.run.model):
        raise InputError(f"the run ({ctx.run.family}) has no attention maps")
    rows, items = [], []
    for done, user in enumerate(ctx.users, start=1):
        u = ctx.data.vocab.user_index(user)
        seq = ctx.data.sequences[u]
        if len(seq) < 2:
            continue
        times = history_query_times(ctx.data, u, len(seq) - 1, holdout=True) if uses_time(ctx.run.model) else None
        maps = get_attention(ctx.run.model, seq[:-1], ctx.run.max_len, times=times)
        n_layers, n_heads, size, _ = maps.weights.shape
        for layer in range(n_layers):
            for head in range(n_heads):
                for r in range(size):
                    rows.append((user, layer, head, r, maps.weights[layer, head, r].astype(np.float32)))
        items.append(pd.DataFrame({"user": user, "position": np.arange(len(maps.items)), "item_index": maps.items,
                                   "appended": maps.appended}))
        if progress is not None:
            progress(done, len(ctx.users))
    weights = pd.DataFrame(rows, columns=["user", "layer", "head", "row", "weights"])
    frame = pd.concat(items, ignore_index=True) if items else pd.DataFrame(
        columns=["user", "position", "item_index", "appended"])
    return {"weights": weights, "items": frame}, {}


def _no_attention(ctx: AnalysisContext) -> str | None:
    from seqrec_core.explain.attention import has_attention

    reason = not_explainable(ctx)
    if reason is None and not has_attention(ctx.run.model):
        return f"the run's family ({ctx.run.family}) has no attention maps"
    return reason


ATTENTION = register(Kind(name="attention", version=1, defaults={}, compute=_compute_attention, per_user=True,
                          label="attention maps for a sample of users", skip=_no_attention))


def load_attention(unit: StoredUnit, user: str):  # noqa: ANN201 - AttentionMaps | None
    from seqrec_core.explain.attention import AttentionMaps

    items = unit.table("items")
    items = items[items["user"] == user].sort_values("position")
    if items.empty:
        return None
    w = unit.table("weights")
    w = w[w["user"] == user]
    n_layers, n_heads = int(w["layer"].max()) + 1, int(w["head"].max()) + 1
    size = int(w["row"].max()) + 1
    weights = np.zeros((n_layers, n_heads, size, size), dtype=np.float32)
    for layer, head, r, values in zip(w["layer"], w["head"], w["row"], w["weights"], strict=True):
        weights[int(layer), int(head), int(r)] = np.asarray(values, dtype=np.float32)
    return AttentionMaps(items=items["item_index"].to_numpy(np.int64), weights=weights,
                         appended=int(items["appended"].iloc[0]))


# -------------------------------------------------------------------------------------------- top-K lists
def _compute_recommendations(ctx: AnalysisContext, params: dict, progress: Progress | None) -> Computed:
    from seqrec_core.recommend import get_heldout_rank, get_recommendations

    scorer = ctx.run.scorer(device=ctx.device)
    tops, held = [], []
    for done, user in enumerate(ctx.users, start=1):
        for exclude in (True, False):
            try:
                recs = get_recommendations(scorer, ctx.data, user, TOP_K_STORED, exclude_seen=exclude, holdout=True)
                rank = get_heldout_rank(scorer, ctx.data, user, exclude_seen=exclude)
            except InputError:
                continue
            tops.append(pd.DataFrame({"user": user, "exclude_seen": exclude, "rank": np.arange(1, len(recs) + 1),
                                      "item_id": recs["item_id"].astype(str).to_numpy(),
                                      "score": recs["score"].astype(np.float64).to_numpy()}))
            held.append({"user": user, "exclude_seen": exclude, "item_id": str(rank.get("item_id")),
                         "rank": rank.get("rank")})
        if progress is not None:
            progress(done, len(ctx.users))
    top = pd.concat(tops, ignore_index=True) if tops else pd.DataFrame(
        columns=["user", "exclude_seen", "rank", "item_id", "score"])
    return {"top": top, "heldout": pd.DataFrame(held, columns=["user", "exclude_seen", "item_id", "rank"])}, {}


RECOMMENDATIONS = register(Kind(name="recommendations", version=1, defaults={"k": TOP_K_STORED},
                                compute=_compute_recommendations, per_user=True,
                                label="top-K lists and held-out ranks for a sample of users"))


def load_recommendations(unit: StoredUnit, vocab, user: str, k: int, exclude_seen: bool):  # noqa: ANN001, ANN201
    """(top-k frame as ``get_recommendations`` returns it, held-out rank dict as ``get_heldout_rank``) for a
    stored user, or None when the user or ``k`` is beyond what is stored."""
    top = unit.table("top")
    rows = top[(top["user"] == user) & (top["exclude_seen"] == exclude_seen)].sort_values("rank")
    held = unit.table("heldout")
    held = held[(held["user"] == user) & (held["exclude_seen"] == exclude_seen)]
    if rows.empty or held.empty or k > int(unit.params.get("k", TOP_K_STORED)):
        return None
    rows = rows.head(k)
    ids = rows["item_id"].astype(str).tolist()
    recs = pd.DataFrame({"rank": rows["rank"].to_numpy(np.int64), "item_id": ids,
                         "title": [vocab.title(i) for i in ids], "category": [vocab.category(i) for i in ids],
                         "score": rows["score"].to_numpy(np.float64)})
    h = held.iloc[0]
    item = str(h["item_id"])
    rank = None if pd.isna(h["rank"]) else int(h["rank"])
    return recs, {"item_id": item, "title": vocab.title(item), "rank": rank}


def _compute_top_all(ctx: AnalysisContext, params: dict, progress: Progress | None) -> Computed:
    from seqrec_core.recommend import get_all_recommendations

    frame = get_all_recommendations(ctx.run.scorer(device=ctx.device), ctx.data, params["k"],
                                    exclude_seen=params["exclude_seen"], progress=progress)
    return {"top": frame.drop(columns=["title"])}, {"users": int(frame["user_id"].nunique())}


TOP_ALL = register(Kind(name="top_all", version=1, defaults={"k": 10, "exclude_seen": True},
                        compute=_compute_top_all, label="the top-K of every user, from their whole history",
                        allowed={"k": (1, 1000)}, variants=log_default_exclude_seen))

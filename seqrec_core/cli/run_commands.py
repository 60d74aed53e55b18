"""``evaluate``, ``recommend``, ``explain`` and ``embed``: commands on a saved run (and the log it was trained on)."""
from __future__ import annotations

import argparse

from seqrec_core.cli.common import add_exclude_seen, add_run_options, exclude_seen, open_run_and_data
from seqrec_core.errors import InputError


def cmd_evaluate(args: argparse.Namespace) -> dict:
    from seqrec_core.evaluation import evaluate
    from seqrec_core.models.baselines import fit_baselines

    run, ds = open_run_and_data(args)
    kw = {"exclude_seen": exclude_seen(args, ds)}
    result = evaluate(run.scorer(device=args.device), ds.sequences, "test", **kw)
    baselines = {name: evaluate(scorer, ds.sequences, "test", **kw).metrics
                 for name, scorer in fit_baselines(ds.sequences).items()}
    return {"run_dir": str(run.path), "model": run.config.get("family"), "exclude_seen": kw["exclude_seen"],
            "users": int(len(result.users)), "metrics": result.metrics, "baselines": baselines}


def cmd_recommend(args: argparse.Namespace) -> dict:
    import pandas as pd

    from seqrec_core.recommend import get_recommendations

    if args.k < 1:
        raise InputError("--k must be at least 1")
    run, ds = open_run_and_data(args)
    scorer = run.scorer(device=args.device)
    query_time = request_time(args.at) if args.at is not None else None
    if query_time is not None and not getattr(scorer, "uses_time", False):
        raise InputError(f"--at sets the request time of a time-aware run, but '{run.path.name}' was trained without "
                         "--time-features; leave --at out")
    recs = get_recommendations(scorer, ds.sequences, args.user, k=args.k,
                               exclude_seen=not args.include_seen, holdout=False, query_time=query_time)
    items = []
    for row in recs.itertuples(index=False):
        item = {"item": str(row.item_id), "score": float(row.score)}
        if isinstance(row.title, str) and row.title:
            item["title"] = row.title
        items.append(item)
    out = {"user": str(args.user), "exclude_seen": not args.include_seen, "items": items}
    if query_time is not None:
        out["at"] = pd.Timestamp(query_time, unit="s", tz="UTC").isoformat()
    return out


def request_time(text: str) -> int:
    """Unix seconds (UTC) from ISO-8601 or a number of seconds; a one-line InputError otherwise."""
    import pandas as pd

    try:
        if text.strip().lstrip("-").isdigit():
            return int(text)
        stamp = pd.Timestamp(text)
    except (ValueError, OverflowError) as err:
        raise InputError(f"--at '{text[:60]}' is not a time; use ISO-8601 such as 2024-03-01T09:00Z or unix "
                         "seconds") from err
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.timestamp())


def cmd_explain(args: argparse.Namespace) -> dict:
    from seqrec_core.explain import attribute

    if args.steps < 1:
        raise InputError("--steps must be at least 1 (50 is a good default for IG)")
    run, ds = open_run_and_data(args)
    # The whole history explains the next (unseen) recommendation; --holdout explains the held-out test event.
    result = attribute(run, ds.sequences, args.user, target=args.target, method=args.method, steps=args.steps,
                       holdout=args.holdout)
    return result.to_json()


def cmd_embed(args: argparse.Namespace) -> dict:
    from seqrec_core.embeddings import get_embedding_points

    run, ds = open_run_and_data(args)
    return get_embedding_points(run, ds.sequences, what=args.what, method=args.method, seed=args.seed).to_json()


def add_run_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="full-ranking test metrics of a run next to the baselines")
    add_run_options(p)
    add_exclude_seen(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("recommend", help="top-K next items for one user, from their whole history")
    add_run_options(p)
    p.add_argument("--user", required=True, help="user id as in the log")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--include-seen", action="store_true", help="allow items the user already has")
    p.add_argument("--at", help="request time for a time-aware run: ISO-8601 (e.g. 2024-03-01T09:00Z) or unix "
                                "seconds (default: the user's last event plus their median gap)")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("explain", help="which past events drive one recommendation (attribution per event)")
    add_run_options(p)
    p.add_argument("--user", required=True, help="user id as in the log")
    p.add_argument("--target", help="item id to explain, or 'heldout' (default: the top recommendation)")
    p.add_argument("--method", default="ig", choices=("ig", "occlusion", "gradshap", "attention"),
                   help="ig = Captum integrated gradients on the item embeddings (default), occlusion = drop each "
                        "event and re-score, gradshap = GradientShap, attention = attention rollout")
    p.add_argument("--steps", type=int, default=50, help="integration steps for ig / samples for gradshap")
    p.add_argument("--holdout", action="store_true", help="explain from the history before the held-out test event")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("embed", help="2-D map of the learned item or user vectors")
    add_run_options(p)
    p.add_argument("--what", default="items", choices=("items", "users"))
    p.add_argument("--method", default="umap", choices=("umap", "pca"),
                   help="umap (default; slower the first time while numba compiles) or pca (instant)")
    p.add_argument("--seed", type=int, default=0, help="UMAP random seed")
    p.set_defaults(func=cmd_embed)

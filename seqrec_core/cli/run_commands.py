"""``evaluate``, ``recommend``, ``explain`` and ``embed``: commands on a saved run (and the log it was trained on).

``recommend`` and ``explain`` also come in batch form (``--users ... --out FILE``): one process loads the model and
the data once and serves many users, since imports and reopening the data cost far more than one user's scores.
"""
from __future__ import annotations

import argparse
import logging
import time

from seqrec_core import explain_methods
from seqrec_core.cli.common import (
    POSITIVE_INT,
    SEED,
    add_exclude_seen,
    add_run_options,
    exclude_seen,
    open_run_and_data,
    output_format,
    request_time,  # noqa: F401 - re-exported: callers parse request times from here
    request_time_arg,
    user_list,
    write_output,
)
from seqrec_core.errors import InputError

log = logging.getLogger("seqrec_core")
TABLE_FORMATS = ("csv", "parquet")
EXPLAIN_FORMATS = ("csv", "parquet", "json")


def cmd_evaluate(args: argparse.Namespace) -> dict:
    from seqrec_core.evaluation import bootstrap_intervals, evaluate
    from seqrec_core.models.baselines import fit_baselines

    run, ds = open_run_and_data(args)
    kw = {"exclude_seen": exclude_seen(args, ds)}
    result = evaluate(run.scorer(device=args.device), ds.sequences, "test", **kw)
    baselines = {name: evaluate(scorer, ds.sequences, "test", **kw).metrics
                 for name, scorer in fit_baselines(ds.sequences).items()}
    return {"run_dir": str(run.path), "model": run.config.get("family"), "exclude_seen": kw["exclude_seen"],
            "users": int(len(result.users)), "metrics": result.metrics,
            "intervals_95": {m: list(v) for m, v in bootstrap_intervals(result, list(result.metrics)).items()},
            "baselines": baselines}


def check_batch_args(args: argparse.Namespace, formats: tuple[str, ...]) -> str | None:
    """The output format of a batch call (``--users`` with ``--out``), None for a single ``--user`` call; the
    combinations that make no sense are refused before anything is loaded."""
    command = getattr(args, "command", None) or "this command"
    if args.user is not None and args.users is not None:
        raise InputError(f"{command} takes --user ID (one user, JSON on stdout) or --users ... --out FILE (a "
                         "table), not both")
    if args.users is None:
        if args.out is not None:
            raise InputError(f"--out writes the table of a batch; give --users ID,ID (or all) with it, or drop --out "
                             f"to get one user's {command} as JSON")
        if args.user is None:
            raise InputError(f"{command} needs --user ID (one user) or --users ID,ID|all with --out FILE")
        return None
    if args.out is None:
        raise InputError(f"--users writes a table; give --out FILE.{' or FILE.'.join(formats)}")
    return output_format(args.out, formats)


def batch_users(text: str, vocab) -> list[str]:  # noqa: ANN001 - seqrec_core.data.sequences.Vocab
    """--users as a list of ids in the order given (each once): "all" = every user; the first unknown id is bad
    input, reported before any user is scored."""
    if text.strip().lower() == "all":
        return list(vocab.user_ids)
    users = list(dict.fromkeys(user_list(text)))
    for user in users:
        if not vocab.has_user(user):
            raise InputError(f"user '{user[:80]}' in --users is not in the run's data; pick ids that occur in the "
                             "log (or --users all)")
    return users


def _query_time(args: argparse.Namespace, scorer, run) -> int | None:  # noqa: ANN001 - Scorer, Run
    query_time = args.at  # unix seconds, parsed and range-checked with the other flags (request_time_arg)
    if query_time is not None and not getattr(scorer, "uses_time", False):
        raise InputError(f"--at sets the request time of a time-aware run, but '{run.path.name}' was trained without "
                         "--time-features; leave --at out")
    return query_time


def cmd_recommend(args: argparse.Namespace) -> dict:
    import pandas as pd

    from seqrec_core.recommend import get_recommendations

    started = time.perf_counter()
    fmt = check_batch_args(args, TABLE_FORMATS)
    run, ds = open_run_and_data(args)
    scorer = run.scorer(device=args.device)
    query_time = _query_time(args, scorer, run)
    exclude = exclude_seen(args, ds)
    if fmt is not None:
        return recommend_batch(args, fmt, scorer, ds.sequences, query_time, exclude, started)
    recs = get_recommendations(scorer, ds.sequences, args.user, k=args.k,
                               exclude_seen=exclude, holdout=False, query_time=query_time)
    items = []
    for row in recs.itertuples(index=False):
        item = {"item": str(row.item_id), "score": float(row.score)}
        if isinstance(row.title, str) and row.title:
            item["title"] = row.title
        items.append(item)
    out = {"user": str(args.user), "exclude_seen": exclude, "items": items}
    if query_time is not None:
        out["at"] = pd.Timestamp(query_time, unit="s", tz="UTC").isoformat()
    return out


def recommend_batch(args: argparse.Namespace, fmt: str, scorer, data, query_time: int | None,  # noqa: ANN001
                    exclude: bool, started: float) -> dict:
    """Top-K of many users in batches, as one table (user_id, rank, item_id, title, score) written atomically."""
    import pandas as pd

    from seqrec_core.recommend import get_all_recommendations

    users = batch_users(args.users, data.vocab)
    table = get_all_recommendations(scorer, data, k=args.k, exclude_seen=exclude,
                                    query_time=query_time, users=users)
    write_output(table, args.out, fmt)
    out = {"out": args.out, "users": len(users), "rows": int(len(table)), "k": args.k,
           "exclude_seen": exclude}
    if query_time is not None:
        out["at"] = pd.Timestamp(query_time, unit="s", tz="UTC").isoformat()
    return out | {"seconds": round(time.perf_counter() - started, 3)}


def cmd_explain(args: argparse.Namespace) -> dict:
    from seqrec_core.explain import attribute

    started = time.perf_counter()
    fmt = check_batch_args(args, EXPLAIN_FORMATS)
    run, ds = open_run_and_data(args)
    if fmt is not None:
        return explain_batch(args, fmt, run, ds.sequences, started)
    # The whole history explains the next (unseen) recommendation; --holdout explains the held-out test event.
    result = attribute(run, ds.sequences, args.user, target=args.target, method=args.method, steps=args.steps,
                       holdout=args.holdout, samples=args.samples, model=explained(args, run, ds.sequences))
    return result.to_json()


def explained(args: argparse.Namespace, run, data):  # noqa: ANN001, ANN201 - the model or a fitted baseline
    """--model: "run", or the Markov / item-kNN baseline fit once here (a batch then explains every user with it);
    a method that does not apply to it is refused before any work."""
    name = getattr(args, "model", "run") or "run"
    if name == "run":
        return "run"
    if args.method not in explain_methods.applicable(name):
        raise InputError(f"--method {args.method} cannot explain the {name} baseline (it has no item embeddings or "
                         f"attention); use --method {' or '.join(explain_methods.applicable(name))}")
    from seqrec_core.explain.attribution import explained_model

    return explained_model(run, data, name)


EXPLAIN_COLUMNS = ("user", "target", "method", "position", "item", "timestamp", "lag", "attribution",
                   "target_score", "baseline_score", "convergence_delta", "target_rank")


def explain_rows(docs: list[dict]) -> dict[str, list]:
    """The per-user ``explain`` documents as one long table: one row per history event, with the explanation's
    scalars repeated on each of its rows (values exactly as the single command prints them)."""
    columns: dict[str, list] = {name: [] for name in EXPLAIN_COLUMNS}
    for doc in docs:
        for event in doc["history"]:
            for name in EXPLAIN_COLUMNS:
                columns[name].append(event[name] if name in event else doc[name])
    return columns


def explain_batch(args: argparse.Namespace, fmt: str, run, data, started: float) -> dict:  # noqa: ANN001
    """Explain each user with the model loaded once; a table (csv/parquet) or a list of documents (json)."""
    import pandas as pd

    from seqrec_core.explain import attribute

    users = batch_users(args.users, data.vocab)
    model = explained(args, run, data)
    docs = []
    for n, user in enumerate(users, start=1):
        docs.append(attribute(run, data, user, target=args.target, method=args.method, steps=args.steps,
                              holdout=args.holdout, samples=args.samples, model=model).to_json())
        if n % 100 == 0 or n == len(users):
            log.info("explained %d of %d users (%.0f s)", n, len(users), time.perf_counter() - started)
    columns = explain_rows(docs)
    if fmt == "json":
        write_output(docs, args.out, fmt)
    else:
        write_output(pd.DataFrame(columns), args.out, fmt)  # timestamp: ISO-8601 text as in the JSON, or empty
    return {"out": args.out, "users": len(docs), "rows": len(columns["user"]), "method": args.method,
            "seconds": round(time.perf_counter() - started, 3)}


def cmd_embed(args: argparse.Namespace) -> dict:
    from seqrec_core.embeddings import get_embedding_points

    run, ds = open_run_and_data(args)
    return get_embedding_points(run, ds.sequences, what=args.what, method=args.method, seed=args.seed).to_json()


def add_run_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="full-ranking test metrics of a run next to the baselines")
    add_run_options(p)
    add_exclude_seen(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("recommend", help="top-K next items for one user (or a table for many), from their whole "
                                         "history")
    add_run_options(p)
    add_user_options(p, TABLE_FORMATS)
    p.add_argument("--k", type=POSITIVE_INT, default=10, help="how many items (default 10)")
    add_exclude_seen(p, "in the top K")
    p.add_argument("--include-seen", action="store_true", help="the same as --exclude-seen off (kept for scripts)")
    p.add_argument("--at", type=request_time_arg,
                   help="request time for a time-aware run: ISO-8601 (e.g. 2024-03-01T09:00Z) or unix seconds "
                        "(default: the user's last event plus their median gap); with --users, the same time for "
                        "every user")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("explain", help="which past events drive one recommendation (attribution per event)")
    add_run_options(p)
    add_user_options(p, EXPLAIN_FORMATS)
    p.add_argument("--target", help="item id to explain, or 'heldout' (default: the top recommendation)")
    methods = explain_methods.all_methods()  # the registry: a new method shows up here by itself
    p.add_argument("--method", default="ig", choices=[m.key for m in methods],
                   help="; ".join(f"{m.key} = {m.label}: {m.phrase}" for m in methods) + " (default ig)")
    p.add_argument("--steps", type=POSITIVE_INT, default=50,
                   help="integration steps for ig / samples for gradshap (default 50)")
    p.add_argument("--samples", type=POSITIVE_INT, default=None,
                   help="perturbed histories for " + ", ".join(
                       f"{m.key} (default {m.default_samples})" for m in methods if m.knob == "samples"))
    p.add_argument("--model", default="run", choices=("run", *explain_methods.BASELINE_MODELS),
                   help="what to explain: the run's model (default), or the markov / itemknn baseline fit on the "
                        "same log (methods: " + ", ".join(explain_methods.applicable("markov")) + ")")
    p.add_argument("--holdout", action="store_true", help="explain from the history before the held-out test event")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("embed", help="2-D map of the learned item or user vectors")
    add_run_options(p)
    p.add_argument("--what", default="items", choices=("items", "users"))
    p.add_argument("--method", default="umap", choices=("umap", "pca"),
                   help="umap (default; slower the first time while numba compiles) or pca (instant)")
    p.add_argument("--seed", type=SEED, default=0, help="UMAP random seed, 0 to 4294967295 (default 0)")
    p.set_defaults(func=cmd_embed)


def add_user_options(p: argparse.ArgumentParser, formats: tuple[str, ...]) -> None:
    """--user (one user, JSON on stdout) or --users with --out (many users, one file)."""
    p.add_argument("--user", help="user id as in the log (one user; the result is printed as JSON)")
    p.add_argument("--users", metavar="all|ID,ID", help="many users in one process: comma-separated ids or all; "
                                                        "needs --out")
    p.add_argument("--out", metavar="FILE", help=f"with --users: the file to write, format by suffix "
                                                 f"({', '.join('.' + f for f in formats)}); written atomically")

"""The command line: `python -m seqrec_core validate|patterns|train|evaluate|recommend|explain|embed ...`.

Contract (DESIGN.md): one JSON document on stdout, progress and logs on stderr; bad input exits 2 with one line
on stderr and no traceback, and writes nothing.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from seqrec_core.cli_model_options import add_model_options, model_options_from_args
from seqrec_core.data.dataset import Dataset, DataSource, open_dataset
from seqrec_core.data.loaders import FORMATS
from seqrec_core.data.prep import PrepOptions
from seqrec_core.data.schema import ColumnMap
from seqrec_core.errors import InputError

log = logging.getLogger("seqrec_core")
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130  # the shell's code for "stopped by a signal"; nothing was saved
BASELINE_NAMES = ("popularity", "markov", "itemknn")
TRAIN_OPTION_NAMES = ("epochs", "max_len", "time_budget", "batch_size", "lr", "weight_decay", "patience", "device",
                      "seed", "keep", "weight_average")


class _Cancelled(Exception):
    """Training was cancelled before anything was worth saving."""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as our one-line bad-input message (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{message}; see `python -m seqrec_core {self.prog.split()[-1]} --help`")


def _add_data_options(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", required=required,
                   help="log file (CSV/TSV, Parquet, JSONL, MovieLens, sequence text) or 'demo'")
    g.add_argument("--format", default="auto", choices=FORMATS, help="file format (default: detect)")
    g.add_argument("--user-col", help="column with user ids (default: detect)")
    g.add_argument("--item-col", help="column with item ids (default: detect)")
    g.add_argument("--time-col", help="column with timestamps: unix s/ms or ISO-8601 (default: detect)")
    g.add_argument("--rating-col", help="column with ratings/weights (default: detect)")
    g.add_argument("--min-rating", type=float, help="keep only events with rating >= this (implicit feedback)")
    g.add_argument("--k-core", type=int, default=0, help="repeatedly drop users and items with fewer events (0 = off)")
    g.add_argument("--drop-duplicates", action="store_true", help="drop repeated (user, item, time) events")


def _data_source(args: argparse.Namespace) -> DataSource:
    columns = ColumnMap(user=args.user_col, item=args.item_col, time=args.time_col, rating=args.rating_col)
    if args.k_core < 0:
        raise InputError("--k-core must be >= 0")
    prep = PrepOptions(min_rating=args.min_rating, drop_duplicates=args.drop_duplicates, k_core=args.k_core)
    path = args.data if args.data == "demo" else str(Path(args.data).resolve())
    return DataSource(path=path, format=args.format, columns=columns, prep=prep)


def _dataset_for_run(args: argparse.Namespace, run_config: dict) -> Dataset:
    """The data a run is evaluated on: --data when given, else the source the run recorded."""
    if getattr(args, "data", None):
        return open_dataset(_data_source(args))
    source = (run_config.get("data") or {}).get("source")
    if not source:
        raise InputError("this run does not record where its data came from; pass the log with --data")
    return open_dataset(DataSource.from_json(source))


def _open_run_and_data(args: argparse.Namespace):  # noqa: ANN202 - (seqrec_core.runs.Run, Dataset)
    """The run (--run) and the data it is used on, refusing data other than what it was trained on."""
    from seqrec_core.runs import load_run

    run = load_run(args.run, device=args.device)
    ds = _dataset_for_run(args, run.config)
    _check_same_data(ds, run.config)
    return run, ds


def _check_same_data(dataset: Dataset, run_config: dict) -> None:
    expected = (run_config.get("data") or {}).get("fingerprint")
    if expected and expected != dataset.fingerprint:
        raise InputError(f"the data ({dataset.name}, fingerprint {dataset.fingerprint}) is not the data this run was "
                         f"trained on (fingerprint {expected}); pass the same log and filtering options")


def _exclude_seen(args: argparse.Namespace, ds: Dataset) -> bool:
    """--exclude-seen on|off, or auto: on when users (almost) never repeat an item in this log."""
    from seqrec_core.evaluation import default_exclude_seen

    return default_exclude_seen(ds.sequences) if args.exclude_seen == "auto" else args.exclude_seen == "on"


def _add_exclude_seen(p: argparse.ArgumentParser) -> None:
    p.add_argument("--exclude-seen", nargs="?", const="on", default="auto", choices=("auto", "on", "off"),
                   help="rank only items not yet in the user's history when evaluating; auto (default) = on when "
                        "the log has no repeat consumption, off otherwise; the output says which was used")


def cmd_validate(args: argparse.Namespace) -> dict:
    ds = open_dataset(_data_source(args))
    times = ds.events["timestamp"]
    span = None
    if ds.sequences.has_time:
        span = [times.min().isoformat(), times.max().isoformat()]
    warnings = list(ds.report.warnings) + [f"{s.step}: dropped {s.rows_dropped} rows ({s.reason})"
                                           for s in ds.report.steps if s.rows_dropped]
    return {"users": ds.sequences.n_users, "items": ds.sequences.vocab.n_items, "events": ds.sequences.n_events,
            "time_span": span, "warnings": warnings}


def cmd_patterns(args: argparse.Namespace) -> dict:
    from seqrec_core.patterns.common import has_timestamps
    from seqrec_core.patterns.report import get_pattern_report

    ds = open_dataset(_data_source(args))
    if not has_timestamps(ds.events):
        raise InputError(f"'{ds.name}' has no timestamps (only an event order), so time patterns cannot be computed; "
                         "pass a log with a time column (--time-col)")
    return get_pattern_report(ds.events, tz=args.tz,
                              progress=lambda text, share: log.info("%3.0f%% %s", 100 * share, text)).to_json()


def _install_cancel_handler() -> Callable[[], bool]:
    """SIGTERM/SIGINT ask training to stop after the current step and keep the best checkpoint."""
    cancelled = {"flag": False}

    def handler(signum: int, _frame: object) -> None:
        log.warning("received signal %s: stopping after this step, keeping the best checkpoint", signum)
        cancelled["flag"] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return lambda: cancelled["flag"]


def cmd_train(args: argparse.Namespace) -> dict | None:
    """Under torchrun every rank runs this; rank 0 runs the whole job, the others only train (and return None,
    so only rank 0 prints the JSON)."""
    from seqrec_core import distributed
    from seqrec_core.jobs import run_training_job
    from seqrec_core.training import TrainConfig, TrainingCancelled

    if args.model in BASELINE_NAMES:
        raise InputError(f"'{args.model}' is a baseline and needs no training; `evaluate --run RUN_DIR` reports it "
                         "next to every trained model")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"output folder '{out}' exists and is not empty; choose a new --out folder")
    model_options = model_options_from_args(args)
    train_cfg = TrainConfig(**{name: getattr(args, name) for name in TRAIN_OPTION_NAMES
                               if getattr(args, name) is not None})
    ds = open_dataset(_data_source(args))
    main_rank = distributed.env_rank() == 0
    # Input is valid from here on: show training progress on stderr (a refusal above stays one line).
    if main_rank:
        logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)
    should_stop = _install_cancel_handler()
    progress = Path(args.progress) if args.progress else None
    try:
        if not main_rank:
            distributed.train_worker(ds.sequences, args.model, model_options, train_cfg, should_stop=should_stop)
            return None
        return run_training_job(ds.sequences, args.model, model_options, train_cfg, out, ds.info(),
                                progress_path=progress, should_stop=should_stop,
                                exclude_seen=_exclude_seen(args, ds))
    except TrainingCancelled:
        raise _Cancelled from None
    finally:
        distributed.shutdown()  # no-op without torchrun


def cmd_evaluate(args: argparse.Namespace) -> dict:
    from seqrec_core.evaluation import evaluate
    from seqrec_core.models.baselines import fit_baselines

    run, ds = _open_run_and_data(args)
    kw = {"exclude_seen": _exclude_seen(args, ds)}
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
    run, ds = _open_run_and_data(args)
    scorer = run.scorer(device=args.device)
    query_time = _request_time(args.at) if args.at is not None else None
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


def _request_time(text: str) -> int:
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
    run, ds = _open_run_and_data(args)
    # The whole history explains the next (unseen) recommendation; --holdout explains the held-out test event.
    result = attribute(run, ds.sequences, args.user, target=args.target, method=args.method, steps=args.steps,
                       holdout=args.holdout)
    return result.to_json()


def cmd_embed(args: argparse.Namespace) -> dict:
    from seqrec_core.embeddings import get_embedding_points

    run, ds = _open_run_and_data(args)
    return get_embedding_points(run, ds.sequences, what=args.what, method=args.method, seed=args.seed).to_json()


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """What every command on a saved run takes: the run, optionally its data (else the recorded source), a device.

    These are exactly the arguments `_open_run_and_data` reads."""
    p.add_argument("--run", required=True, help="run folder")
    _add_data_options(p, required=False)
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda", "mps"))


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="python -m seqrec_core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    p = sub.add_parser("validate", help="check a log and print its size and warnings")
    _add_data_options(p, required=True)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("patterns", help="periods, burstiness, bursts and repeats of a log's timing (JSON)")
    _add_data_options(p, required=True)
    p.add_argument("--tz", default="UTC", help="IANA timezone for hour-of-day views, e.g. Europe/Berlin (default UTC)")
    p.set_defaults(func=cmd_patterns)

    p = sub.add_parser("train", help="train a sequence model and save it as a run folder")
    _add_data_options(p, required=True)
    p.add_argument("--model", required=True,
                   help="model family: sasrec (causal Transformer), bert4rec (masked-item Transformer), gru4rec, "
                        "lstm, lsi (long/short-term interest)")
    p.add_argument("--out", required=True, help="run folder to create (must not exist or be empty)")
    # Unset training flags keep TrainConfig's defaults (one source of truth for the CLI and the dashboard).
    p.add_argument("--epochs", type=int, help="maximum epochs (default 200; early stopping usually ends sooner)")
    p.add_argument("--max-len", type=int, help="most recent events the model sees (default 50)")
    p.add_argument("--time-budget", type=float, help="stop after this many seconds, keep the best checkpoint")
    p.add_argument("--batch-size", type=int, help="sequences per step (default 128)")
    p.add_argument("--lr", type=float, help="learning rate, AdamW (default 1e-3)")
    p.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 0)")
    p.add_argument("--patience", type=int, help="validations without NDCG@10 gain before stopping (default 10)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="default auto: CUDA, then MPS, then CPU")
    p.add_argument("--seed", type=int, help="random seed (default 42)")
    p.add_argument("--keep", choices=("best", "last"),
                   help="weights to save: best validation NDCG@10 (default) or the last validated epoch")
    p.add_argument("--weight-average", type=float, metavar="DECAY",
                   help="validate and save a moving average of the weights, decay per step "
                        "(default 0.999; 0 = off: the last step's weights)")
    _add_exclude_seen(p)
    p.add_argument("--progress", help="also append progress events (JSON lines) to this file")
    add_model_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="full-ranking test metrics of a run next to the baselines")
    _add_run_options(p)
    _add_exclude_seen(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("recommend", help="top-K next items for one user, from their whole history")
    _add_run_options(p)
    p.add_argument("--user", required=True, help="user id as in the log")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--include-seen", action="store_true", help="allow items the user already has")
    p.add_argument("--at", help="request time for a time-aware run: ISO-8601 (e.g. 2024-03-01T09:00Z) or unix "
                                "seconds (default: the user's last event plus their median gap)")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("explain", help="which past events drive one recommendation (attribution per event)")
    _add_run_options(p)
    p.add_argument("--user", required=True, help="user id as in the log")
    p.add_argument("--target", help="item id to explain, or 'heldout' (default: the top recommendation)")
    p.add_argument("--method", default="ig", choices=("ig", "occlusion", "gradshap", "attention"),
                   help="ig = Captum integrated gradients on the item embeddings (default), occlusion = drop each "
                        "event and re-score, gradshap = GradientShap, attention = attention rollout")
    p.add_argument("--steps", type=int, default=50, help="integration steps for ig / samples for gradshap")
    p.add_argument("--holdout", action="store_true", help="explain from the history before the held-out test event")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("embed", help="2-D map of the learned item or user vectors")
    _add_run_options(p)
    p.add_argument("--what", default="items", choices=("items", "users"))
    p.add_argument("--method", default="umap", choices=("umap", "pca"),
                   help="umap (default; slower the first time while numba compiles) or pca (instant)")
    p.add_argument("--seed", type=int, default=0, help="UMAP random seed")
    p.set_defaults(func=cmd_embed)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # Quiet by default so a refusal is exactly one line on stderr; -v shows the loaders' reasoning.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        result = args.func(args)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except _Cancelled:
        print("cancelled before the first validation: no checkpoint was worth keeping, nothing was saved",
              file=sys.stderr)
        return EXIT_CANCELLED
    if result is None:  # a torchrun rank other than 0: rank 0 prints the one JSON document
        return 0
    try:
        json.dump(result, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into `head`: the reader left, which is not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
    return 0

"""``python -m seqrec_core train``: from flags or from a job spec (``--spec job.json``), which the flags build too;
``train --resume RUN --data NEW_LOG --out NEW_RUN`` updates a run on a grown log (a warm start)."""
from __future__ import annotations

import argparse
import logging
from dataclasses import asdict, replace

from seqrec_core.cli.common import (
    FINITE_REAL,
    NONNEGATIVE_REAL,
    POSITIVE_INT,
    POSITIVE_REAL,
    SEED,
    Cancelled,
    add_data_options,
    add_exclude_seen,
    data_source,
    install_cancel_handler,
    progress_file,
    user_list,
)
from seqrec_core.cli.model_options import MODEL_OPTION_NAMES, add_model_options, model_options_from_args
from seqrec_core.data.dataset import DataSource, open_dataset
from seqrec_core.data.prep import PrepOptions
from seqrec_core.errors import InputError

log = logging.getLogger("seqrec_core")
BASELINE_NAMES = ("popularity", "markov", "itemknn")
PRECISION_CHOICES = ("auto", "fp32", "bf16")  # = training.config.PRECISIONS (tested; importing it here loads torch)
TRAIN_OPTION_NAMES = ("epochs", "max_len", "time_budget", "batch_size", "lr", "weight_decay", "patience", "device",
                      "seed", "keep", "weight_average", "precision")
# Flags that describe the job; with --spec the spec file says all of this, so giving them too is refused.
_SPEC_FLAGS = ("data", "model", "out", "user_col", "item_col", "time_col", "rating_col", "min_rating", "analyze_users",
               *TRAIN_OPTION_NAMES, *MODEL_OPTION_NAMES)


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a sequence model and save it as a run folder")
    p.add_argument("--spec", help="a job spec (JSON, as the dashboard writes it) instead of the flags below")
    p.add_argument("--resume", metavar="RUN",
                   help="update this run on --data (a log that has grown) instead of training from scratch: items it "
                        "knows keep their vectors, new items get vectors imprinted from the events before them, and it "
                        "trains for a short budget (default 20%% of RUN's epochs, at least one; or --time-budget / "
                        "--epochs) with RUN's settings and columns at 5x its learning rate (or --lr)")
    add_data_options(p, required=False)
    p.add_argument("--model",
                   help="model family: sasrec (causal Transformer), bert4rec (masked-item Transformer), gru4rec, "
                        "lstm, lsi (long/short-term interest)")
    p.add_argument("--out", help="run folder to create (must not exist or be empty); claimed before the data is read, "
                                 "so a second job on the same folder is refused")
    # Unset training flags keep TrainConfig's defaults (one source of truth for the CLI and the dashboard).
    p.add_argument("--epochs", type=POSITIVE_INT,
                   help="maximum epochs (default 200; early stopping usually ends sooner)")
    p.add_argument("--max-len", type=POSITIVE_INT, help="most recent events the model sees (default 50)")
    p.add_argument("--time-budget", type=POSITIVE_REAL,
                   help="stop after this many seconds, keep the best checkpoint (enough for at least one epoch and "
                        "its validation)")
    p.add_argument("--batch-size", type=POSITIVE_INT,
                   help="sequences per step (default: from the history lengths, about 1,000 predicted events a "
                        "step: 128 for short histories, down to 32 for long ones; for SASRec down to 8 on dense logs)")
    p.add_argument("--lr", type=POSITIVE_REAL, help="learning rate, AdamW (default 1e-3)")
    p.add_argument("--weight-decay", type=NONNEGATIVE_REAL, help="AdamW weight decay (default 0)")
    p.add_argument("--patience", type=POSITIVE_INT,
                   help="validations without NDCG@10 gain before stopping (default: from the log, 10 on sparse logs "
                        "such as Beauty, up to 40 for SASRec on dense ones, where slow structure keeps improving)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="default auto: CUDA, then MPS, then CPU")
    p.add_argument("--seed", type=SEED, help="random seed, 0 to 4294967295 (default 42)")
    p.add_argument("--precision", choices=PRECISION_CHOICES,
                   help="CPU arithmetic of the model body: auto (default) = bf16 where the CPU multiplies bf16 "
                        "natively (AMX or AVX512-BF16), else fp32; weights and the loss stay fp32. On CUDA bf16/fp16 "
                        "mixed precision is used unless fp32")
    p.add_argument("--keep", choices=("best", "last"),
                   help="weights to save: best validation NDCG@10 (default) or the last validated epoch")
    p.add_argument("--weight-average", type=FINITE_REAL, metavar="DECAY",
                   help="validate and save a moving average of the weights, decay per step "
                        "(default 0.999; 0 = off: the last step's weights)")
    add_exclude_seen(p)
    p.add_argument("--analyze", action="store_true",
                   help="after saving, compute and store every analysis of the run (as `analyze --run`), so the "
                        "dashboard's pages open at once")
    p.add_argument("--analyze-users", metavar="ID,ID", help="with --analyze: also explain these users")
    p.add_argument("--progress", help="also append progress events (JSON lines) to this file")
    add_model_options(p)
    p.set_defaults(func=cmd_train)


def spec_from_args(args: argparse.Namespace):  # noqa: ANN201 - seqrec_core.jobs.spec.TrainSpec
    """The train spec: read from --spec, or built from the flags (the same spec the dashboard writes)."""
    from seqrec_core.jobs.spec import AnalysisRequest, DataSpec, TrainSpec, load_spec
    from seqrec_core.training.config import TrainConfig

    if args.spec:
        given = [name for name in _SPEC_FLAGS if getattr(args, name, None) is not None]
        if given or args.analyze or args.k_core or args.drop_duplicates or args.format != "auto" \
                or args.exclude_seen != "auto":
            flags = ", ".join("--" + n.replace("_", "-") for n in given) or "the data/analysis flags"
            raise InputError(f"--spec describes the whole job; leave out {flags} (or drop --spec)")
        return load_spec(args.spec, expected="train")
    missing = [flag for flag, value in (("--data", args.data), ("--model", args.model), ("--out", args.out))
               if not value]
    if missing:
        raise InputError(f"train needs {', '.join(missing)} (or --spec job.json)")
    if args.model in BASELINE_NAMES:
        raise InputError(f"'{args.model}' is a baseline and needs no training; `evaluate --run RUN_DIR` reports it "
                         "next to every trained model")
    train = TrainConfig(**{name: getattr(args, name) for name in TRAIN_OPTION_NAMES if getattr(args, name) is not None})
    analyze = None
    if args.analyze or args.analyze_users:
        analyze = AnalysisRequest(users=tuple(user_list(args.analyze_users) or ()))
    return TrainSpec(data=DataSpec(source=data_source(args)), family=args.model, out=args.out,
                     model_options=model_options_from_args(args), train=train, exclude_seen=args.exclude_seen,
                     analyze=analyze)


def cmd_train(args: argparse.Namespace) -> dict | None:
    """Under torchrun every rank runs this; rank 0 runs the whole job, the others only train (and return None,
    so only rank 0 prints the JSON)."""
    from seqrec_core.jobs import run_train_spec
    from seqrec_core.training import TrainingCancelled, distributed

    if args.resume:
        return _resume(args)
    spec = spec_from_args(args)
    progress = progress_file(args.progress, spec.out)
    main_rank = distributed.env_rank() == 0
    should_stop = install_cancel_handler()
    try:  # the run folder (--out) is claimed inside, on rank 0, before the data is read
        return run_train_spec(spec, progress_path=progress, should_stop=should_stop, main_rank=main_rank,
                              on_valid_input=lambda: _show_progress(args, main_rank))
    except TrainingCancelled:
        raise Cancelled from None
    finally:
        distributed.shutdown()  # no-op without torchrun


def _show_progress(args: argparse.Namespace, main_rank: bool) -> None:
    """Input is valid from here on: show training progress on stderr (a refusal before stays one line)."""
    if main_rank:
        logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)


_RESUME_TRAIN_FLAGS = ("batch_size", "lr", "weight_decay", "patience", "keep", "weight_average", "max_len")


def _resume(args: argparse.Namespace) -> dict:
    """``train --resume RUN --data NEW_LOG --out NEW_RUN``: every refusal comes before a folder is claimed."""
    from seqrec_core.jobs.claim import claim_run_dir
    from seqrec_core.runs import read_run_files
    from seqrec_core.training import TrainingCancelled
    from seqrec_core.training.warm_start import (
        check_resume_paths,
        check_same_family,
        resume_config,
        resume_training,
    )

    if args.spec:
        raise InputError("--resume and --spec do not go together; resume with --data NEW_LOG --out NEW_RUN")
    if args.analyze or args.analyze_users:
        raise InputError("--analyze is not offered with --resume; analyse the updated run afterwards with "
                         "`python -m seqrec_core analyze --run NEW_RUN`")
    missing = [flag for flag, value in (("--data", args.data), ("--out", args.out)) if not value]
    if missing:
        raise InputError(f"train --resume needs {', '.join(missing)} (the grown log and a new run folder)")
    check_resume_paths(args.resume, args.out)
    files = read_run_files(args.resume)
    options = model_options_from_args(args)
    check_same_family(files.config, args.model, options)
    train_options = {name: getattr(args, name) for name in _RESUME_TRAIN_FLAGS}
    resume_config(files.config, epochs=args.epochs, time_budget=args.time_budget, overrides=train_options)
    progress = progress_file(args.progress, args.out)
    should_stop = install_cancel_handler()
    try:
        with claim_run_dir(args.out, replace_run=False):
            ds = open_dataset(_resume_source(args, files.config))
            _show_progress(args, True)
            exclude = None if args.exclude_seen == "auto" else args.exclude_seen == "on"
            return resume_training(args.resume, ds.sequences, args.out, data_info=ds.info(), epochs=args.epochs,
                                   time_budget=args.time_budget, device=args.device or "auto", seed=args.seed,
                                   family=args.model, model_options=options, exclude_seen=exclude,
                                   train_options=train_options,
                                   progress_path=progress, should_stop=should_stop)
    except TrainingCancelled:
        raise Cancelled from None


def _resume_source(args: argparse.Namespace, run_config: dict) -> DataSource:
    """The new log read as the run read its own (columns, cleaning), except for what the flags give."""
    given = data_source(args)
    stored_json = (run_config.get("data") or {}).get("source")
    if not stored_json:
        return given
    stored = DataSource.from_json(stored_json)
    columns = replace(stored.columns, **{k: v for k, v in asdict(given.columns).items() if v is not None})
    prep_given = {k: v for k, v in asdict(given.prep).items() if v != getattr(PrepOptions(), k)}
    return replace(given, columns=columns, prep=replace(stored.prep, **prep_given))

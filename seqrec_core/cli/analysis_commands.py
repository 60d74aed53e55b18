"""``analyze``: compute a run's analyses once and store them in the run folder (from flags or ``--spec``);
``report``: the review report of a run's stored analysis, as one self-contained HTML file."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from seqrec_core.cli.common import (
    COUNT,
    add_data_options,
    add_run_options,
    data_source,
    dataset_for_run,
    install_cancel_handler,
    progress_file,
    user_list,
)
from seqrec_core.errors import InputError

log = logging.getLogger("seqrec_core")


def spec_from_args(args: argparse.Namespace):  # noqa: ANN201 - seqrec_core.jobs.spec.AnalyzeSpec
    from seqrec_core.jobs.spec import AnalysisRequest, AnalyzeSpec, DataSpec, load_spec

    if args.spec:
        if args.run or args.data or args.users or args.sample is not None or args.parts != "all" or args.force:
            raise InputError("--spec describes the whole job; leave out --run, --data, --parts, --users, --sample "
                             "and --force (or drop --spec)")
        return load_spec(args.spec, expected="analyze")
    if not args.run:
        raise InputError("analyze needs --run RUN_DIR (or --spec job.json)")
    if args.users and args.sample is not None and args.sample != 0:
        log.info("explaining the users asked for and a sample of %d more", args.sample)
    request = AnalysisRequest(parts=tuple(p.strip() for p in args.parts.split(",")),
                              users=tuple(user_list(args.users) or ()), sample=args.sample, force=args.force)
    data = DataSpec(source=data_source(args)) if args.data else None
    return AnalyzeSpec(run=args.run, request=request, device=args.device, data=data)


def cmd_analyze(args: argparse.Namespace) -> dict:
    from seqrec_core.analysis.job import run_analysis
    from seqrec_core.analysis.registry import resolve_parts

    spec = spec_from_args(args)
    if not Path(spec.run).is_dir():
        raise InputError(f"run folder '{spec.run}' does not exist; pick a folder made by `train`")
    if not spec.request.units:
        resolve_parts(spec.request.parts)  # an unknown part is refused before the run is loaded
    progress = progress_file(args.progress)
    should_stop = install_cancel_handler()
    return run_analysis(spec, progress_path=progress, should_stop=should_stop,
                        on_ready=lambda: logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO))


def cmd_report(args: argparse.Namespace) -> dict:
    """Build the review report (computing what the store lacks first) and write it atomically to --out."""
    from seqrec_core.report import build_review, check_out_path, write_review
    from seqrec_core.runs import read_run_files

    out = check_out_path(args.out)  # a bad --out is refused before minutes of work
    if not Path(args.run).is_dir():
        raise InputError(f"run folder '{args.run}' does not exist; pick a folder made by `train`")
    users = user_list(args.users)
    dataset = dataset_for_run(args, read_run_files(args.run).config)
    logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)
    review = build_review(args.run, dataset, users, compute_missing=True, device=args.device)
    path = write_review(review, out)
    if review.missing:
        log.warning("the report leaves out %s (see the notes in it)", ", ".join(review.missing))
    return {"report": str(path), "bytes": path.stat().st_size, "figures": review.figures, "users": review.users}


def add_analysis_parsers(sub: argparse._SubParsersAction) -> None:
    from seqrec_core.analysis.registry import PARTS

    p = sub.add_parser("analyze", help="compute every analysis the pages show for a run and store it in the run")
    p.add_argument("--spec", help="a job spec (JSON, as the dashboard writes it) instead of the flags below")
    p.add_argument("--run", help="run folder")
    add_data_options(p, required=False)
    p.add_argument("--parts", default="all",
                   help=f"comma-separated: all (default) or some of {', '.join(PARTS)}")
    p.add_argument("--users", metavar="ID,ID", help="also explain these users (explanations, attention, top-K)")
    p.add_argument("--sample", type=COUNT, help="explain this many more users, chosen by the data (default 24; "
                                              "0 = only the default user and --users)")
    p.add_argument("--force", action="store_true", help="recompute what is already stored and still fresh")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                   help="default auto: a GPU when there is one")
    p.add_argument("--progress", help="also append progress events (JSON lines) to this file")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("report", help="write the review report of a run (self-contained HTML, opens offline)")
    add_run_options(p, device_default="auto")
    p.add_argument("--users", metavar="ID,ID", help="users to explain (default: the pages' default user and up to "
                                                   "4 more the run ranks well)")
    p.add_argument("--out", required=True, metavar="FILE.html", help="the HTML file to write (replaced atomically)")
    p.set_defaults(func=cmd_report)

"""The command line: `python -m seqrec_core validate|patterns|train|evaluate|recommend|explain|embed|analyze ...`.

Contract (DESIGN.md): one JSON document on stdout, progress and logs on stderr; bad input exits 2 with one line
on stderr and no traceback, and writes nothing. Each command lives with its kin: :mod:`.data_commands`,
:mod:`.train`, :mod:`.run_commands`, :mod:`.analysis_commands`; what they share is in :mod:`.common`.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from seqrec_core.cli.analysis_commands import add_analysis_parsers
from seqrec_core.cli.common import EXIT_BAD_INPUT, EXIT_CANCELLED, ArgumentParser, Cancelled
from seqrec_core.cli.data_commands import add_data_parsers
from seqrec_core.cli.run_commands import add_run_parsers
from seqrec_core.cli.train import add_train_parser
from seqrec_core.errors import InputError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m seqrec_core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    add_data_parsers(sub)
    add_train_parser(sub)
    add_run_parsers(sub)
    add_analysis_parsers(sub)
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
    except Cancelled:
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

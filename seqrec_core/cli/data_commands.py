"""``validate`` and ``patterns``: commands on a log alone."""
from __future__ import annotations

import argparse
import logging

from seqrec_core.cli.common import add_data_options, data_source
from seqrec_core.data.dataset import open_dataset
from seqrec_core.errors import InputError

log = logging.getLogger("seqrec_core")


def cmd_validate(args: argparse.Namespace) -> dict:
    """Whether the log can be used: read, cleaned, and holding something a model can learn from."""
    ds = open_dataset(data_source(args))
    ds.sequences.check_trainable()
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

    ds = open_dataset(data_source(args))
    if not has_timestamps(ds.events):
        raise InputError(f"'{ds.name}' has no timestamps (only an event order), so time patterns cannot be computed; "
                         "pass a log with a time column (--time-col)")
    return get_pattern_report(ds.events, tz=args.tz,
                              progress=lambda text, share: log.info("%3.0f%% %s", 100 * share, text)).to_json()


def add_data_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a log and print its size and warnings")
    add_data_options(p, required=True)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("patterns", help="periods, burstiness, bursts and repeats of a log's timing (JSON)")
    add_data_options(p, required=True)
    p.add_argument("--tz", default="UTC", help="IANA timezone for hour-of-day views, e.g. Europe/Berlin (default UTC)")
    p.set_defaults(func=cmd_patterns)

"""What every command shares: the argument parser that reports usage errors as one line, one argparse type per
kind of number (and the request time), the data options, the options of commands on a saved run, opening a run
with the data it was trained on (from the histories the run stored when it has them, else from its log), checking
and writing output files atomically, and the cancel handler."""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from seqrec_core.data.dataset import Dataset, DataSource, open_dataset
from seqrec_core.data.loaders import FORMATS
from seqrec_core.data.prep import PrepOptions
from seqrec_core.data.schema import ColumnMap, short
from seqrec_core.data.sequences import SequenceData
from seqrec_core.errors import InputError

log = logging.getLogger("seqrec_core")
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130  # the shell's code for "stopped by a signal"; nothing was saved


class Cancelled(Exception):
    """The job was cancelled before anything was worth saving."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as our one-line bad-input message (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{message}; see `python -m seqrec_core {self.prog.split()[-1]} --help`")


# ----------------------------------------------------------------------------------- numbers, checked at parse time
# Every numeric flag takes one of these as its argparse ``type``, so a value no command could use (a negative seed,
# nan, inf, a count beyond what numpy and torch index with) is refused as one usage line before anything is read.
# Ranges that depend on the model or the data stay with the config that owns them (TrainConfig, a family's config).
INT_LIMIT = 2**31 - 1  # counts beyond this are typos, and overflow the C integers numpy and torch index with
SEED_LIMIT = 2**32 - 1  # = training.config.MAX_SEED, not imported: that module imports torch (slow refusals)
# unix seconds pandas can hold (until 2262-04-11): request times beyond it overflow the time features
LATEST_TIME = 9_223_372_036


def whole_number(low: int, high: int = INT_LIMIT, what: str = "a whole number") -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{short(text, 40)}' is not {what}; use one from {low:,} to {high:,}") \
                from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{short(value, 40)} is out of range; use {what} from {low:,} to "
                                             f"{high:,}")
        return value

    return parse


def real_number(low: float | None = None, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number, at least ``low`` (greater than ``low`` when ``above``)."""
    bound = "" if low is None else f" {'>' if above else '>='} {low:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{short(text, 40)}' is not a number; use a finite number{bound}") \
                from None
        if not math.isfinite(value) or (low is not None and (value <= low if above else value < low)):
            raise argparse.ArgumentTypeError(f"{short(text, 40)} is out of range; use a finite number{bound}")
        return value

    return parse


POSITIVE_INT = whole_number(1)
COUNT = whole_number(0)
SEED = whole_number(0, SEED_LIMIT, "a seed (a whole number)")
POSITIVE_REAL = real_number(0.0, above=True)
NONNEGATIVE_REAL = real_number(0.0)
FINITE_REAL = real_number()


def request_time(text: str) -> int:
    """Unix seconds (UTC) from ISO-8601 or a number of seconds, from 1970 to 2262; a one-line InputError
    otherwise."""
    import pandas as pd

    try:
        if text.strip().lstrip("-").isdigit():
            seconds = int(text)
        else:
            stamp = pd.Timestamp(text)
            if stamp is pd.NaT:
                raise ValueError("not a time")
            if stamp.tzinfo is None:
                stamp = stamp.tz_localize("UTC")
            seconds = int(stamp.timestamp())
    except (ValueError, OverflowError, TypeError) as err:
        raise InputError(f"'{short(text, 60)}' is not a time; use ISO-8601 such as 2024-03-01T09:00Z or unix "
                         "seconds") from err
    if not 0 <= seconds <= LATEST_TIME:
        raise InputError(f"'{short(text, 60)}' is out of range; give a time from 1970-01-01 to 2262-04-11 "
                         f"(unix seconds 0 to {LATEST_TIME:,})")
    return seconds


def request_time_arg(text: str) -> int:
    """:func:`request_time` as an argparse type (argparse reads a ValueError as 'invalid value')."""
    try:
        return request_time(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_data_options(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", required=required,
                   help="log file (CSV/TSV, Parquet, JSONL, MovieLens, sequence text) or 'demo'")
    g.add_argument("--format", default="auto", choices=FORMATS, help="file format (default: detect)")
    g.add_argument("--user-col", help="column with user ids (default: detect)")
    g.add_argument("--item-col", help="column with item ids (default: detect)")
    g.add_argument("--time-col", help="column with timestamps: unix s/ms, ISO-8601 or dates (default: detect)")
    g.add_argument("--time-detail-col", help="finer time added to a date-only --time-col: a time of day or an offset "
                                             "in s/ms (default: detect by name, e.g. 'timeframe')")
    g.add_argument("--session-col", help="session id column: fills missing user ids, or with --user-col set to it "
                                         "makes each session one sequence (default: detect)")
    g.add_argument("--rating-col", help="column with ratings/weights (default: detect)")
    g.add_argument("--min-rating", type=FINITE_REAL, help="keep only events with rating >= this (implicit feedback)")
    g.add_argument("--k-core", type=COUNT, default=0,
                   help="repeatedly drop users and items with fewer events (0 = off)")
    g.add_argument("--drop-duplicates", action="store_true", help="drop repeated (user, item, time) events")


def data_source(args: argparse.Namespace) -> DataSource:
    columns = ColumnMap(user=args.user_col, item=args.item_col, time=args.time_col, rating=args.rating_col,
                        session=args.session_col, time_detail=args.time_detail_col)
    prep = PrepOptions(min_rating=args.min_rating, drop_duplicates=args.drop_duplicates, k_core=args.k_core)
    path = args.data if args.data == "demo" else _resolved(args.data)
    return DataSource(path=path, format=args.format, columns=columns, prep=prep)


def _resolved(path: str) -> str:
    """The absolute path a run records for --data; a link that leads nowhere is refused here."""
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError) as err:  # RuntimeError: a symlink loop (Python < 3.13)
        what = "a symbolic link loop" if "loop" in str(err).lower() else f"unreadable ({type(err).__name__})"
        raise InputError(f"--data '{short(path, 120)}' is {what}; give the log file itself") from None


def dataset_for_run(args: argparse.Namespace, run_config: dict) -> Dataset:
    """The data a run is used on: --data when given, else the source the run recorded."""
    if getattr(args, "data", None):
        return open_dataset(data_source(args))
    source = (run_config.get("data") or {}).get("source")
    if not source:
        raise InputError("this run does not record where its data came from; pass the log with --data")
    return open_dataset(DataSource.from_json(source))


@dataclass
class StoredData:
    """The part of a :class:`Dataset` commands on a run use (``sequences``, ``fingerprint``, ``name``, ``source``),
    rebuilt from the histories the run stored instead of from its log: no events table, no cleaning report."""

    name: str
    sequences: SequenceData
    source: DataSource | None = None

    @property
    def fingerprint(self) -> str:
        return self.sequences.fingerprint


def stored_data(run) -> StoredData | None:  # noqa: ANN001 - seqrec_core.runs.Run
    """The run's data from its stored histories (see :mod:`seqrec_core.analysis.kinds_serving`), or None when
    they are not stored or stale: serving a run then needs neither its log nor the seconds spent cleaning it."""
    from seqrec_core.analysis.kinds_serving import load_sequences

    data_info = run.config.get("data") or {}
    sequences = load_sequences(run.path, run.vocab, data_info.get("fingerprint"))
    if sequences is None:
        return None
    source = None
    if data_info.get("source"):
        try:
            source = DataSource.from_json(data_info["source"])
        except InputError:
            source = None  # only a label here; the histories do not need it
    name = str(data_info.get("name") or (source.name if source else run.path.name))
    log.info("using the event histories stored in %s (not re-reading the log)", run.path)
    return StoredData(name=name, sequences=sequences, source=source)


def open_run_and_data(args: argparse.Namespace):  # noqa: ANN201 - (seqrec_core.runs.Run, Dataset | StoredData)
    """The run (--run) and the data it is used on, refusing data other than what it was trained on. Without
    --data, the histories the run stored stand in for its log when they are fresh (same data fingerprint)."""
    from seqrec_core.runs import check_run_data, load_run

    run = load_run(args.run, device=args.device)
    ds = None if getattr(args, "data", None) else stored_data(run)
    if ds is None:
        ds = dataset_for_run(args, run.config)
    check_run_data(run, ds.sequences, ds.name)
    return run, ds


def exclude_seen(args: argparse.Namespace, ds: Dataset | StoredData) -> bool:
    """--exclude-seen on|off, or auto: on when users (almost) never repeat an item in this log. ``recommend`` also
    takes its older ``--include-seen`` (= off)."""
    from seqrec_core.evaluation import default_exclude_seen

    if getattr(args, "include_seen", False):
        if args.exclude_seen == "on":
            raise InputError("--include-seen and --exclude-seen on contradict each other; give one of them")
        return False
    return default_exclude_seen(ds.sequences) if args.exclude_seen == "auto" else args.exclude_seen == "on"


def add_exclude_seen(p: argparse.ArgumentParser, when: str = "when evaluating") -> None:
    p.add_argument("--exclude-seen", nargs="?", const="on", default="auto", choices=("auto", "on", "off"),
                   help=f"rank only items not yet in the user's history {when}; auto (default) = on when the log "
                        "has no repeat consumption, off otherwise (the same rule as train, evaluate and every "
                        "page); the output says which was used")


def add_run_options(p: argparse.ArgumentParser, device_default: str = "cpu") -> None:
    """What every command on a saved run takes: the run, optionally its data (else the recorded source), a device.

    These are exactly the arguments :func:`open_run_and_data` reads."""
    p.add_argument("--run", required=True, help="run folder")
    add_data_options(p, required=False)
    p.add_argument("--device", default=device_default, choices=("auto", "cpu", "cuda", "mps"))


def install_cancel_handler() -> Callable[[], bool]:
    """SIGTERM/SIGINT ask the job to stop after its current step and keep what is finished."""
    cancelled = {"flag": False}

    def handler(signum: int, _frame: object) -> None:
        log.warning("received signal %s: stopping after this step, keeping what is finished", signum)
        cancelled["flag"] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return lambda: cancelled["flag"]


def user_list(text: str | None, what: str = "--users") -> list[str] | None:
    """'ID,ID,...' as a list (None when not given); an empty list is bad input."""
    if text is None:
        return None
    users = [u.strip() for u in text.split(",") if u.strip()]
    if not users:
        raise InputError(f"{what} names no user; give ids separated by commas")
    return users


def output_format(path: str, allowed: tuple[str, ...], flag: str = "--out") -> str:
    """The format an output file is written in, by its suffix ("csv", "parquet", "json"); checked before any work,
    with the folder it goes to, so a refusal costs nothing and writes nothing."""
    target = Path(path)
    suffix = target.suffix.lower().lstrip(".")
    if suffix not in allowed:
        raise InputError(f"{flag} '{short(path, 120)}' must end in {' or '.join('.' + a for a in allowed)} (the "
                         "suffix picks the format)")
    if target.is_dir():
        raise InputError(f"{flag} '{short(path, 120)}' is a folder; give a file name")
    if not target.resolve().parent.is_dir():
        raise InputError(f"{flag} '{short(path, 120)}': its folder does not exist; create it first")
    return suffix


def progress_file(path: str | None, run_dir: str | None = None) -> Path | None:
    """--progress checked before any work: a file (not a folder) in a folder that exists, writable, and not inside
    the run folder (written as a whole when training ends, so a file inside it would be in the way)."""
    if path is None:
        return None
    target = Path(path)
    shown = short(path, 120)
    if target.is_dir():
        raise InputError(f"--progress '{shown}' is a folder; give a file name such as progress.jsonl")
    if target.is_symlink() and not target.is_file():
        raise InputError(f"--progress '{shown}' is a symbolic link to a missing place (or a loop); give a file path")
    folder = Path(os.path.abspath(target)).parent
    if not folder.is_dir():
        raise InputError(f"--progress '{shown}': its folder does not exist; create it first")
    if not os.access(target if target.exists() else folder, os.W_OK):
        raise InputError(f"--progress '{shown}' cannot be written (permission denied); choose a file you can write")
    if run_dir is not None:
        run = Path(os.path.abspath(run_dir))
        if Path(os.path.abspath(target)).is_relative_to(run):
            raise InputError(f"--progress '{shown}' is inside the run folder, which is written as a whole when "
                             "training ends; put it beside the run folder")
    return target


def write_output(data: object, path: str, fmt: str) -> None:
    """Write a table (csv/parquet) or JSON document to ``path`` atomically: a temp file in the same folder, synced,
    then renamed over the target, so a reader (or a crash) never sees half a file and a failure leaves none."""
    import pandas as pd

    target = Path(path).resolve()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        if fmt == "json":
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, default=str)
                fh.write("\n")
        else:
            os.close(fd)
            frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
            if fmt == "csv":
                frame.to_csv(tmp, index=False)
            else:
                frame.to_parquet(tmp, index=False)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is for the temp file; the result is like any file we write
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

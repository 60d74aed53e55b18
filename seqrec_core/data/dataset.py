"""A dataset as the rest of the product sees it: where it came from, the cleaned events, and the sequences.

The source (path + format + column mapping + filtering options) is plain JSON, so a run can record it and the
CLI's `evaluate --run` or the dashboard can reopen exactly the data a model was trained on.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from seqrec_core.data.loaders import load_events
from seqrec_core.data.prep import PrepOptions, QualityReport, prepare_events_coded
from seqrec_core.data.schema import ColumnMap, short
from seqrec_core.data.sequences import SequenceData, build_sequences
from seqrec_core.errors import InputError

DEMO = "demo"  # the data path that means the built-in synthetic demo log


@dataclass(frozen=True)
class DataSource:
    """How to reopen a log: a file path (or "demo") plus everything that shaped it."""

    path: str
    format: str = "auto"
    columns: ColumnMap = field(default_factory=ColumnMap)
    prep: PrepOptions = field(default_factory=PrepOptions)
    demo_seed: int = 0

    @property
    def name(self) -> str:
        return "Demo data (synthetic)" if self.path == DEMO else Path(self.path).name

    def to_json(self) -> dict:
        return {"path": self.path, "format": self.format, "columns": asdict(self.columns),
                "prep": asdict(self.prep), "demo_seed": self.demo_seed}

    @classmethod
    def from_json(cls, obj: dict) -> DataSource:
        try:
            return cls(path=str(obj["path"]), format=str(obj.get("format", "auto")),
                       columns=ColumnMap(**obj.get("columns", {})), prep=PrepOptions(**obj.get("prep", {})),
                       demo_seed=int(obj.get("demo_seed", 0)))
        except (KeyError, TypeError, ValueError, OverflowError) as err:  # OverflowError: int() of an infinite seed
            raise InputError(f"the run's data source record is malformed ({err}); pass the log with --data") from None


@dataclass
class Dataset:
    """Cleaned events, what cleaning dropped, and the model-ready sequences, under one display name."""

    name: str
    events: pd.DataFrame
    report: QualityReport
    sequences: SequenceData
    source: DataSource | None = None  # None for uploads that only live in memory

    @property
    def fingerprint(self) -> str:
        return self.sequences.fingerprint

    def info(self) -> dict:
        """What a run records about its data."""
        seqs = self.sequences
        return {"name": self.name, "fingerprint": seqs.fingerprint, "users": seqs.n_users,
                "items": seqs.vocab.n_items, "events": seqs.n_events,
                "source": self.source.to_json() if self.source else None}


def dataset_from_events(events: pd.DataFrame, name: str, *, prep: PrepOptions | None = None,
                        source: DataSource | None = None) -> Dataset:
    """Clean a canonical event table and build its sequences."""
    cleaned, report, codes = prepare_events_coded(events, prep or PrepOptions(), source=name)
    return Dataset(name=name, events=cleaned, report=report, sequences=build_sequences(cleaned, codes=codes),
                   source=source)


def open_dataset(source: DataSource) -> Dataset:
    """Load, clean and sequence the log a :class:`DataSource` points at."""
    if source.path == DEMO:
        from seqrec_core.data.synthetic import make_demo_events

        events, _truth = make_demo_events(seed=source.demo_seed)
    else:  # load_events names what is wrong with the path: missing, a dangling link, a loop, a FIFO, a device
        events = load_events(Path(source.path), source.format, source.columns)
    return dataset_from_events(events, source.name, prep=source.prep, source=source)


def open_prepared(path: str | Path, source: DataSource, name: str | None = None) -> Dataset:
    """A log the dashboard already cleaned and saved as Parquet (canonical columns), read as it is: no second
    cleaning pass, the same sequences and fingerprint. ``source`` is what a run records about where it came from."""
    try:
        events = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise InputError(f"prepared data '{short(str(path), 120)}' cannot be read ({err}); start the job again "
                         "from the dashboard") from None
    missing = [c for c in ("user_id", "item_id", "timestamp") if c not in events]
    if missing:
        raise InputError(f"prepared data '{short(str(path), 120)}' lacks {', '.join(missing)}; it is not a "
                         "prepared log")
    report = QualityReport(rows_in=len(events), rows_out=len(events))
    return Dataset(name=name or source.name, events=events, report=report, sequences=build_sequences(events),
                   source=source)


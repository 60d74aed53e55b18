"""What a run keeps so it can serve without its log: every user's event history, as one stored table.

Why: ``recommend`` and ``explain`` on a run spend most of their time (after imports) reopening the log the run was
trained on and cleaning it again, only to rebuild the per-user sequences the run already saw; and the log may
not even travel with the run (a run zipped off a GPU server). The ``histories`` unit stores exactly what those
commands need (user row, item index and time of every event, in order); the run's ``vocab.json`` already holds
the user and item ids and titles, so together they rebuild :class:`~seqrec_core.data.sequences.SequenceData`
with no log at all. Stored like any analysis (Parquet + ``meta.json``, atomic, tied to the data fingerprint), so
a stale or damaged unit is simply not used and the commands fall back to the log.

Why a size limit (:data:`MAX_SERVING_EVENTS`): the table costs about 6-16 bytes per event on disk, and a run
folder is meant to be zipped and uploaded (the dashboard takes archives up to 1 GiB, a stored table up to
512 MiB). Up to 20 million events that stays well inside both; beyond it the log is big enough that storing a
second copy of it in every run is the wrong trade, so the commands keep reading the log.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from seqrec_core.analysis.registry import AnalysisContext, Computed, Kind, Progress, register
from seqrec_core.analysis.store import read_unit
from seqrec_core.data.sequences import SequenceData, Vocab
from seqrec_core.errors import InputError

log = logging.getLogger(__name__)

MAX_SERVING_EVENTS = 20_000_000
TABLE = "events"


def vocab_id(vocab: Vocab) -> str:
    """16 hex digits of the user and item ids in order: the stored rows and indices mean these ids only."""
    digest = hashlib.sha256()
    for ids in (vocab.user_ids, vocab.item_ids):
        digest.update(len(ids).to_bytes(8, "little"))
        digest.update("\x00".join(ids).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


def _too_big(ctx: AnalysisContext) -> str | None:
    n = ctx.data.n_events
    if n > MAX_SERVING_EVENTS:
        return (f"the log has {n:,} events, over the {MAX_SERVING_EVENTS:,} whose histories a run keeps; commands "
                "on this run read the log")
    return None


def _compute_histories(ctx: AnalysisContext, _params: dict, progress: Progress | None) -> Computed:
    data: SequenceData = ctx.data
    lens = np.array([len(s) for s in data.sequences], dtype=np.int64)  # (U,)
    n_users = len(lens)
    user_dtype = np.int32 if n_users < 2**31 else np.int64
    item_dtype = np.int32 if data.vocab.n_items < 2**31 else np.int64
    items = np.concatenate(data.sequences) if n_users else np.zeros(0, dtype=np.int64)  # (N,)
    times = np.concatenate(data.times) if n_users else np.zeros(0, dtype=np.int64)  # (N,)
    frame = pd.DataFrame({"user": np.repeat(np.arange(n_users, dtype=user_dtype), lens),
                          "item": items.astype(item_dtype), "time": times.astype(np.int64)})
    if progress is not None:
        progress(1, 1)
    info = {"has_time": bool(data.has_time), "fingerprint": data.fingerprint, "vocab": vocab_id(data.vocab),
            "users": int(n_users), "items": int(data.vocab.n_items), "events": int(len(frame))}
    return {TABLE: frame}, info


HISTORIES = register(Kind(
    name="histories", version=1, defaults={}, compute=_compute_histories, skip=_too_big,
    label="every user's event history, so commands on the run need not re-read the log"))


def _stale(unit, run_vocab: Vocab, fingerprint: str) -> str | None:  # noqa: ANN001 - StoredUnit
    """Why the stored unit cannot stand in for the log (None = it can)."""
    info = unit.info
    if unit.meta.get("version") != HISTORIES.version:
        return f"stored by code version {unit.meta.get('version')}, this is {HISTORIES.version}"
    if unit.meta.get("fingerprint") != fingerprint or info.get("fingerprint") != fingerprint:
        return f"stored for data {info.get('fingerprint')}, the run was trained on {fingerprint}"
    if info.get("vocab") != vocab_id(run_vocab) or info.get("users") != len(run_vocab.user_ids) or info.get(
            "items") != run_vocab.n_items:
        return "stored for another vocabulary than the run's vocab.json"
    return None


def _rebuild(frame: pd.DataFrame, run_vocab: Vocab, events: object) -> tuple[list, list] | None:
    """(sequences, times) from the stored table, or None when it does not describe the run's users and items."""
    if not {"user", "item", "time"} <= set(frame.columns) or len(frame) != events:
        return None
    users = frame["user"].to_numpy(dtype=np.int64)  # (N,)
    items = frame["item"].to_numpy(dtype=np.int64)  # (N,)
    times = frame["time"].to_numpy(dtype=np.int64)  # (N,)
    n_users = len(run_vocab.user_ids)
    if len(users) == 0 or n_users == 0:
        return None
    if items.min() < 1 or items.max() > run_vocab.n_items or np.any(np.diff(users) < 0):
        return None
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])  # first row of each user's block
    if len(starts) != n_users or not np.array_equal(users[starts], np.arange(n_users)):
        return None  # every user row 0..U-1 has its block, in order
    return np.split(items, starts[1:]), np.split(times, starts[1:])


def load_sequences(run_dir: str | Path, run_vocab: Vocab, fingerprint: str | None) -> SequenceData | None:
    """The run's data rebuilt from its stored histories and its vocabulary, or None when they are not stored, are
    stale (other data, code version or vocabulary) or cannot be read: the caller then reads the log."""
    if not fingerprint:
        return None
    unit = read_unit(run_dir, HISTORIES.name, {})
    if unit is None:
        return None
    reason = _stale(unit, run_vocab, fingerprint)
    if reason is not None:
        log.info("stored histories of %s not used: %s", run_dir, reason)
        return None
    try:
        frame = unit.table(TABLE)
    except InputError as err:
        log.warning("stored histories not used: %s", err)
        return None
    rebuilt = _rebuild(frame, run_vocab, unit.info.get("events"))
    if rebuilt is None:
        log.warning("stored histories of %s do not match the run's vocabulary; reading the log", run_dir)
        return None
    sequences, times = rebuilt
    return SequenceData(vocab=run_vocab, sequences=sequences, times=times, has_time=bool(unit.info.get("has_time")),
                        fingerprint=fingerprint)

"""Ingest at scale (issue 6): a 10-million-event Parquet log validated and indexed, timed, with peak memory.

Bar: <= 60 s wall and <= 4 GB peak RSS on the 2-core development machine.

1. Generates a synthetic log into a temporary Parquet file (not timed; written in row groups so generation
   stays memory-light): ``--users`` users with log-normal history lengths, ``--items`` items drawn from a
   Zipf-like law, realistic times (each user active over days to months, log-normal gaps from seconds to weeks),
   string ids (``u000123`` / ``i004567``, the expensive case), unix-second timestamps, rows in global time
   order (users interleaved, as a real export is).
2. Runs the path that ``python -m seqrec_core validate`` and ``train`` take, in a fresh Python process so that
   generation does not count towards its peak memory: ``load_events`` (Parquet -> canonical table) ->
   ``prepare_events_coded`` -> ``build_sequences`` (what ``open_dataset`` / ``dataset_from_events`` do), timing each
   stage, then reports wall seconds, peak RSS (``ru_maxrss``), events per second and the machine.
   ``--cli`` also times the real ``python -m seqrec_core validate --data FILE`` command end to end.

Prints one JSON document.

    python bench/ingest.py                     # 10M events, 200k users, 100k items
    python bench/ingest.py --events 1000000    # a quicker look
    python bench/ingest.py --cli               # also the CLI command itself
    python bench/ingest.py --root /tmp/before  # the library of another checkout (before/after)
    python bench/ingest.py --dict-ids          # ids stored as a Parquet dictionary (pandas categorical)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import host_info  # noqa: E402

ROW_GROUP = 1_000_000


def generate(path: Path, n_events: int, n_users: int, n_items: int, seed: int, dict_ids: bool = False) -> dict:
    """Write the synthetic log; returns what was written. Peak memory ~ a few hundred MB for 10M events."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    lengths = np.maximum(3, rng.lognormal(mean=np.log(n_events / n_users) - 0.5, sigma=1.0, size=n_users))
    lengths = np.floor(lengths * n_events / lengths.sum()).astype(np.int64)
    lengths[: n_events - int(lengths.sum())] += 1  # exactly n_events
    users = np.repeat(np.arange(n_users, dtype=np.int32), lengths)  # (N,)
    # Times: a user starts somewhere in two years and is active with log-normal gaps (minutes to weeks).
    start = 1_640_995_200 + rng.integers(0, 365 * 86400, size=n_users)  # 2022-01-01 + up to a year
    gaps = np.exp(rng.normal(np.log(3600.0), 1.8, size=n_events)).astype(np.int64)  # (N,) seconds
    first = np.r_[0, np.cumsum(lengths)[:-1]]
    gaps[first] = 0
    csum = np.cumsum(gaps)
    times = start[users] + csum - np.repeat(csum[first], lengths)  # (N,) within-user cumulative gaps
    del gaps, csum
    # Items: a Zipf-like popularity (exponent ~1.05) over a shuffled catalogue.
    ranks = np.minimum(rng.zipf(1.05, size=n_events) - 1, n_items * 50) % n_items
    items = rng.permutation(n_items).astype(np.int32)[ranks]  # (N,)
    del ranks
    order = np.argsort(times, kind="stable")  # a real export is in time order, users interleaved
    users, items, times = users[order], items[order], times[order]
    del order
    user_names = pa.array([f"u{u:07d}" for u in range(n_users)], pa.string())
    item_names = pa.array([f"i{i:06d}" for i in range(n_items)], pa.string())
    id_type = pa.dictionary(pa.int32(), pa.string()) if dict_ids else pa.string()
    schema = pa.schema([("user_id", id_type), ("item_id", id_type), ("timestamp", pa.int64())])

    def ids(codes: np.ndarray, names: pa.Array) -> pa.Array:
        """Plain strings, or (``--dict-ids``) dictionary-encoded ones, as pandas writes a categorical column."""
        if dict_ids:
            return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), names)
        return names.take(pa.array(codes))

    with pq.ParquetWriter(path, schema) as writer:
        for lo in range(0, n_events, ROW_GROUP):
            hi = min(lo + ROW_GROUP, n_events)
            table = pa.table({"user_id": ids(users[lo:hi], user_names), "item_id": ids(items[lo:hi], item_names),
                              "timestamp": pa.array(times[lo:hi])}, schema=schema)
            writer.write_table(table)
    return {"events": n_events, "users": int((lengths > 0).sum()), "items_in_catalogue": n_items,
            "file_mb": round(path.stat().st_size / 2**20, 1)}


CHILD = r"""
import json, logging, resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[2])
from seqrec_core.data.loaders import load_events
from seqrec_core.data.prep import PrepOptions
from seqrec_core.data.sequences import build_sequences
try:  # exactly what dataset_from_events does (older checkouts: prepare, then build from the table alone)
    from seqrec_core.data.prep import prepare_events_coded as prepare
except ImportError:
    from seqrec_core.data.prep import prepare_events

    def prepare(events, options, source):
        return (*prepare_events(events, options, source), None)
t_import = time.perf_counter()
path = sys.argv[1]
stages = {}
t = time.perf_counter(); events = load_events(path, "parquet"); stages["load_events"] = time.perf_counter() - t
rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter(); cleaned, report, codes = prepare(events, PrepOptions(), "ingest.parquet")
stages["prepare_events"] = time.perf_counter() - t
del events
t = time.perf_counter()
seqs = build_sequences(cleaned) if codes is None else build_sequences(cleaned, codes=codes)
stages["build_sequences"] = time.perf_counter() - t
total = sum(stages.values())
print(json.dumps({"import_s": round(t_import - t0, 2), "stages_s": {k: round(v, 2) for k, v in stages.items()},
                  "indexed_s": round(total, 2), "peak_rss_after_load_mb": round(rss_load / 1024),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "users": seqs.n_users, "items": seqs.vocab.n_items, "events": seqs.n_events,
                  "fingerprint": seqs.fingerprint, "warnings": report.warnings}))
"""


def time_indexing(path: Path, root: Path = ROOT) -> dict:
    """The validate/train data path in a fresh interpreter, so its ru_maxrss is its own."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), str(root)],
                          capture_output=True, text=True, cwd=root)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"indexing failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = round(wall, 2)
    out["events_per_s"] = round(out["events"] / out["indexed_s"]) if out["indexed_s"] else None
    return out


def time_cli(path: Path) -> dict:
    """``python -m seqrec_core validate --data FILE`` end to end (interpreter start and imports included)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "seqrec_core", "validate", "--data", str(path)],
                          capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far
    result = {"exit": proc.returncode, "wall_s": round(wall, 2), "peak_rss_mb_max_child": round(peak / 1024)}
    if proc.returncode == 0:
        doc = json.loads(proc.stdout)
        result.update(users=doc["users"], items=doc["items"], events=doc["events"])
    else:
        result["stderr"] = proc.stderr[-500:]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cli", action="store_true", help="also time `python -m seqrec_core validate`")
    parser.add_argument("--keep", type=Path, default=None, help="write the Parquet file here and keep it")
    parser.add_argument("--dict-ids", action="store_true",
                        help="store ids dictionary-encoded (what pandas writes for a categorical column)")
    parser.add_argument("--file", type=Path, default=None, help="time this Parquet file instead of generating one")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="library checkout to time (e.g. an export of an older commit, for before/after)")
    args = parser.parse_args()
    result: dict = {"bench": "ingest", "machine": host_info(), "bar": {"seconds": 60, "peak_rss_gb": 4}}
    result["root"] = str(args.root)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or args.keep or Path(tmp) / "events.parquet"
        if args.file is None:
            start = time.perf_counter()
            result["generated"] = generate(path, args.events, args.users, args.items, args.seed, args.dict_ids)
            result["generated"]["seconds"] = round(time.perf_counter() - start, 1)
        result["indexing"] = time_indexing(path, args.root)
        if args.cli:
            result["cli_validate"] = time_cli(path)
    idx = result["indexing"]
    result["meets_bar"] = bool(idx["indexed_s"] <= 60 and idx["peak_rss_mb"] <= 4096)
    result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

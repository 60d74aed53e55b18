"""Peak memory of the trainer's batch source: the old pre-padded window matrix against streaming batches.

Each mode runs in a fresh process on the same synthetic log (default 10M events, lengths drawn like a real
log: many short histories, a long tail), laid out as ``SequenceData`` holds it (one flat int64 array split into
per-user views, training prefixes without the last two events). The process's peak RSS is reset after the log
is built (Linux /proc/self/clear_refs), so the figure is what building the batch source and iterating one
epoch of batches (no model) adds on top of the log itself. Prints one JSON document.

    python bench/train_memory.py [--events 10000000] [--max-len 50] [--batch-size 128] [--times]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import host_info  # noqa: E402

MB = 2**20


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Start VmHWM (peak RSS) again from the current RSS; False where the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def synthetic_log(n_events: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Per-user views of one flat item array and one flat time array (as build_sequences makes them)."""
    rng = np.random.default_rng(seed)
    lengths = np.minimum(3 + rng.geometric(1 / 17, size=n_events // 10), 2000)  # mean ~20, a few very long
    lengths = lengths[np.cumsum(lengths) <= n_events]
    total = int(lengths.sum())
    items = rng.integers(1, 50_001, size=total, dtype=np.int64)
    times = np.cumsum(rng.integers(1, 600, size=total, dtype=np.int64))
    cuts = np.cumsum(lengths)[:-1]
    return np.split(items, cuts), np.split(times, cuts), total


def run_mode(mode: str, n_events: int, max_len: int, batch_size: int, with_times: bool) -> dict:
    import torch  # noqa: F401 - imported before the peak is reset: its libraries are not the batch source's

    from seqrec_core.models.batches import (
        batch_order,
        build_window_source,
        iterate_batches,
        training_time_windows,
        training_windows,
    )

    seqs, times, total = synthetic_log(n_events)
    train = [s[:-2] if len(s) >= 3 else s for s in seqs]
    train_times = [t[:len(s)] for t, s in zip(times, train, strict=True)]
    rss_log = _status_kb("VmRSS")
    reset = _reset_peak()
    t0 = time.perf_counter()
    if mode == "matrix":
        windows, lengths, masked = training_windows(train, max_len)
        tw = training_time_windows(train_times, max_len) if with_times else None
        n_windows = len(windows)
        batches = iterate_batches(windows, lengths, batch_order(lengths, batch_size, np.random.default_rng(0)),
                                  masked, tw)
    else:
        source = build_window_source(train, max_len, times=times if with_times else None)
        n_windows = len(source)
        batches = source.iterate(batch_order(source.lengths, batch_size, np.random.default_rng(0)))
    built = time.perf_counter() - t0
    rss_built = _status_kb("VmRSS")
    n_batches, positions = 0, 0
    for batch in batches:
        n_batches += 1
        positions += batch[0].numel()
    epoch = time.perf_counter() - t0 - built
    peak = _status_kb("VmHWM") if reset else None
    return {"mode": mode, "events": total, "users": len(seqs), "windows": n_windows, "batches": n_batches,
            "padded_positions": positions, "rss_log_mb": round(rss_log / 1024, 1),
            "added_after_build_mb": round((rss_built - rss_log) / 1024, 1),
            "peak_added_mb": None if peak is None else round((peak - rss_log) / 1024, 1),
            "build_seconds": round(built, 2), "epoch_iteration_seconds": round(epoch, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--times", action="store_true", help="also the time windows (time-aware models)")
    parser.add_argument("--mode", choices=("matrix", "stream"), help=argparse.SUPPRESS)  # one child's mode
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.events, args.max_len, args.batch_size, args.times)))
        return
    results = {}
    for mode in ("matrix", "stream"):
        cmd = [sys.executable, __file__, "--mode", mode, "--events", str(args.events), "--max-len",
               str(args.max_len), "--batch-size", str(args.batch_size)] + (["--times"] if args.times else [])
        results[mode] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    m, s = results["matrix"], results["stream"]
    ratio = None
    if m["peak_added_mb"] and s["peak_added_mb"]:
        ratio = round(m["peak_added_mb"] / s["peak_added_mb"], 1)
    print(json.dumps({"host": host_info(), "config": {k: v for k, v in vars(args).items() if k != "mode"},
                      "results": results, "peak_added_ratio_matrix_over_stream": ratio}, indent=2))


if __name__ == "__main__":
    main()

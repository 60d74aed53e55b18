"""How long the review report takes and how big it is, on a copy of the shipped demo run (its analysis stored).

The issue's bar: `python -m seqrec_core report` on the demo <= 60 s and <= 20 MB. Three timings:
``seconds`` is the whole command as a person runs it (a fresh process: imports, opening the demo log, reading the
stored analysis, the time patterns, drawing every figure, writing the file); ``build_seconds`` is
``build_review(..., compute_missing=True)`` in a warm process (the data open, the imports done);
``stored_only_seconds`` is ``compute_missing=False``, what the dashboard's "Download review (HTML)" button
costs. The run is copied to a temporary folder first (the report may store per-user analyses for the users it
explains; assets/ stays untouched). Prints one JSON document; it measures, it does not decide pass or fail.

    python bench/report_speed.py [--run assets/demo_run] [--users u0002,u0001] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.train_speed import machine_info  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=str(ROOT / "assets" / "demo_run"), help="run folder (copied first)")
    parser.add_argument("--users", help="users to explain (default: the report's own choice)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of the in-process builds (median)")
    args = parser.parse_args()

    from seqrec_core.data.dataset import DataSource, open_dataset
    from seqrec_core.report import build_review
    from seqrec_core.runs import read_run_files

    with tempfile.TemporaryDirectory(prefix="report_speed_") as tmp:
        run = Path(shutil.copytree(args.run, Path(tmp) / Path(args.run).name))
        out = Path(tmp) / "review.html"
        command = [sys.executable, "-m", "seqrec_core", "report", "--run", str(run), "--out", str(out),
                   "--device", "cpu"] + (["--users", args.users] if args.users else [])
        t0 = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=1800)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"report failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        doc = json.loads(proc.stdout)

        source = (read_run_files(run).config.get("data") or {}).get("source") or {"path": "demo"}
        dataset = open_dataset(DataSource.from_json(source))
        users = args.users.split(",") if args.users else None
        build_review(run, dataset, users, compute_missing=False)  # warm-up: imports, caches (not timed)
        build, stored = [], []
        for _ in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            build_review(run, dataset, users, compute_missing=True, device="cpu")
            build.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            review = build_review(run, dataset, users, compute_missing=False)
            stored.append(time.perf_counter() - t0)
    print(json.dumps({
        "bench": "report_speed", "run": Path(args.run).name, "seconds": round(seconds, 2),
        "bytes": doc["bytes"], "mb": round(doc["bytes"] / 2**20, 2), "figures": doc["figures"], "users": doc["users"],
        "build_seconds": round(statistics.median(build), 2), "stored_only_seconds": round(statistics.median(stored), 2),
        "stored_only_missing": review.missing, "repeats": len(build), "machine": machine_info(torch.device("cpu")),
    }, indent=2))


if __name__ == "__main__":
    main()

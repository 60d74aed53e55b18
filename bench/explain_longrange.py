"""Long-range statistics speed, the history-truncation ablation and faithfulness (deletion AOPC) on a run.

Prints the tables as text on stderr and one JSON document on stdout: the lag-bucket and time-gap shares,
the share of predictions whose top event is >= 20 steps back, attention distance per head, seconds for the
statistics over --users users (IG with --steps steps, batched), the truncation table (NDCG@10 / HR@10 for
k = 1, 2, 5, 10, 20, 50, all) and the AOPC of IG, occlusion, attention and random order.

    python bench/explain_longrange.py --run runs/demo-sasrec-60s            # data: the run's own (demo)
    python bench/explain_longrange.py --run RUN --device cuda --users 5000
    python bench/explain_longrange.py --run RUN --threads 1    # on a shared CPU: OpenMP threads that wait on
                                                               # each other make small models several times slower
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqrec_core.data.dataset import DataSource, open_dataset  # noqa: E402
from seqrec_core.explain.faithfulness import get_faithfulness  # noqa: E402
from seqrec_core.explain.longrange import get_longrange_stats, get_truncation_ablation  # noqa: E402
from seqrec_core.runs import list_runs, load_run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="run folder (default: the newest under ./runs)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--users", type=int, default=1000, help="users for the long-range statistics")
    ap.add_argument("--method", default="ig")
    ap.add_argument("--steps", type=int, default=20, help="IG steps for statistics and faithfulness")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--faith-users", type=int, default=200)
    ap.add_argument("--max-k", type=int, default=10)
    ap.add_argument("--target", default="top", choices=("top", "heldout"))
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's); 1 is far faster when other jobs share the cores")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: stats,truncation,faith")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    skip = set(filter(None, args.skip.split(",")))
    if args.threads:
        torch.set_num_threads(args.threads)

    run_path = Path(args.run) if args.run else (list_runs()[0].path if list_runs() else None)
    if run_path is None:
        sys.exit("no run found; train one: python -m seqrec_core train --data demo --model sasrec --out runs/demo")
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    run = load_run(run_path, device=device)
    source = DataSource.from_json(run.config["data"]["source"])
    data = open_dataset(source).sequences
    if data.fingerprint != run.config["data"].get("fingerprint"):
        print("warning: data fingerprint differs from the run's", file=sys.stderr)
    out: dict = {"run": str(run_path), "model": run.config["model"], "device": str(device),
                 "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                 "load_average_start": os.getloadavg(), "python": platform.python_version(),
                 "torch": torch.__version__, "test_metrics": run.metrics.get("test", {})}

    if "stats" not in skip:
        stats = get_longrange_stats(run, data, n_users=args.users, method=args.method, steps=args.steps,
                                    target=args.target, batch_size=args.batch_size)
        print(f"\nlong-range statistics: {stats.users} users, {stats.method} ({stats.steps} steps, target "
              f"{stats.target}) in {stats.seconds:.1f} s", file=sys.stderr)
        print(stats.by_lag.to_string(index=False), file=sys.stderr)
        print(stats.by_time_gap.to_string(index=False), file=sys.stderr)
        print(f"share of predictions whose top event is >= 20 steps back: {stats.share_top_ge20:.3f}", file=sys.stderr)
        print(stats.attention_distance.to_string(index=False), file=sys.stderr)
        out["longrange"] = {"users": stats.users, "method": stats.method, "steps": stats.steps,
                            "target": stats.target, "seconds": round(stats.seconds, 2),
                            "share_top_ge20": stats.share_top_ge20,
                            "by_lag": stats.by_lag.astype({"bucket": str}).to_dict("records"),
                            "by_time_gap": stats.by_time_gap.astype({"bucket": str}).to_dict("records"),
                            "attention_distance": stats.attention_distance.to_dict("records")}

    if "truncation" not in skip:
        t0 = time.perf_counter()
        table = get_truncation_ablation(run, data)
        seconds = time.perf_counter() - t0
        print(f"\ntruncation ablation (all test users, {seconds:.1f} s):", file=sys.stderr)
        print(table.to_string(index=False), file=sys.stderr)
        out["truncation"] = {"seconds": round(seconds, 2), "table": table.to_dict("records")}

    if "faith" not in skip:
        t0 = time.perf_counter()
        faith = get_faithfulness(run, data, n_users=args.faith_users, max_k=args.max_k, steps=args.steps,
                                 target=args.target, batch_size=args.batch_size)
        seconds = time.perf_counter() - t0
        print(f"\nfaithfulness ({faith.users} users, k = 0..{faith.max_k}, IG {args.steps} steps, "
              f"{seconds:.1f} s):", file=sys.stderr)
        print(faith.aopc.to_string(index=False), file=sys.stderr)
        dele = faith.curves[faith.curves["kind"] == "deletion"].pivot(index="k", columns="method", values="score")
        print("deletion curves (mean target score):", file=sys.stderr)
        print(dele.round(3).to_string(), file=sys.stderr)
        out["faithfulness"] = {"users": faith.users, "max_k": faith.max_k, "seconds": round(seconds, 2),
                               "aopc": faith.aopc.to_dict("records")}
    out["load_average_end"] = os.getloadavg()
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()

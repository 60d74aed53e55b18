"""Training throughput when other processes share the CPU, per thread policy (issue 18, part 1).

Each measurement is a fresh child process (so ``OMP_WAIT_POLICY`` takes effect) that trains the README's Beauty
SASRec (the trainer's own ``train_step`` and weight average, batch 128, max_len 50) for ``--seconds`` after a
warm-up, while 0, 1 or 2 busy loops (``python -c "while True: pass"``) run beside it. Policies and loads are
interleaved round by round, so a slow minute of the host hits every cell alike. Prints per policy and load the
median trained positions/s over the rounds, and its share of the best policy alone (the bar: >= 40% with one busy
process, >= 25% with two).

    python bench/thread_sharing.py                       # 5 policies x 3 loads x 2 rounds of 15 s: ~10 minutes
    python bench/thread_sharing.py --policies torch governor --rounds 3

Policies: ``torch`` (torch's default: one thread per core, OpenMP's default spin-then-sleep wait), ``passive``
(the same with ``OMP_WAIT_POLICY=PASSIVE``), ``one`` (one thread), ``governor`` (``seqrec_core.cpu_threads``:
threads = cores the others leave free, re-measured every second), ``governor-passive`` (both), ``spin-N``
(``GOMP_SPINCOUNT=N``: a shorter spin before an idle thread sleeps), ``governor-spin-N``.
Run it on an otherwise idle machine: the busy loops are the only competition it means to measure.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import host_info  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "amazon-beauty-s3" / "Beauty.txt"
POLICIES = ("torch", "passive", "one", "governor", "governor-passive", "spin-1000", "spin-20000", "governor-spin-20000")
SPIN = "while True: pass"


def child(policy: str, seconds: float, data_path: str) -> dict:
    """Train for ``seconds`` under ``policy``; the numbers this process reached."""
    import numpy as np
    import torch

    from seqrec_core.cpu_threads import ThreadGovernor
    from seqrec_core.data.dataset import DataSource, open_dataset
    from seqrec_core.models import build_model
    from seqrec_core.models.batches import batch_order, iterate_batches, training_windows
    from seqrec_core.training.trainer import TrainConfig, _adamw, _autocast, train_step
    from seqrec_core.training.weight_average import WeightAverage

    data = open_dataset(DataSource(path=data_path, format="seqtxt")).sequences
    torch.manual_seed(0)
    model = build_model("sasrec", data.vocab.n_items, max_len=50)
    cfg = TrainConfig()
    optimizer = _adamw(model, cfg)
    average = WeightAverage(model, cfg.weight_average)
    autocast, _ = _autocast(torch.device("cpu"), "fp32")
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    windows, lengths, masked = training_windows([data.train_sequence(u) for u in range(data.n_users)], 50)
    order = batch_order(lengths, 128, np.random.default_rng(0))
    governor = ThreadGovernor() if policy.startswith("governor") else None
    if policy == "one":
        torch.set_num_threads(1)
    model.train()
    steps = positions = 0
    started = None
    batches = iterate_batches(windows, lengths, order * 50, masked)
    for i, (x, y) in enumerate(batches):
        if i == 3:  # warm-up done: start the clock (and the governor, as the trainer does before its first step)
            if governor is not None:
                governor.start()
            started = time.perf_counter()
        if governor is not None and started is not None:
            governor.tick()
        train_step(model, optimizer, scaler, autocast, x, y)
        average.update()
        if started is not None:
            steps += 1
            positions += int((y != 0).sum())
            if time.perf_counter() - started >= seconds:
                break
    wall = time.perf_counter() - started
    return {"policy": policy, "steps": steps, "seconds": round(wall, 2), "positions_per_s": round(positions / wall, 1),
            "threads_end": torch.get_num_threads(),
            "governor_changes": governor.history if governor is not None else None}


def measure(policy: str, load: int, seconds: float, data_path: str) -> dict:
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("SEQREC_THREADS", None)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    if policy.endswith("passive"):
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    if "spin-" in policy:  # libgomp's spin before an idle thread sleeps (default 300,000 iterations)
        env["GOMP_SPINCOUNT"] = policy.rsplit("-", 1)[1]
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(load)]
    try:
        out = subprocess.run([sys.executable, __file__, "--child", policy, "--seconds", str(seconds),
                              "--data", data_path], env=env, capture_output=True, text=True, check=True)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    ap.add_argument("--loads", nargs="+", type=int, default=[0, 1, 2], help="busy loops beside the training")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=15.0, help="timed training per measurement")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--child", choices=POLICIES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.seconds, args.data)))
        return
    machine = host_info()
    cells: dict[tuple[str, int], list[dict]] = {}
    for r in range(args.rounds):
        for load in args.loads:
            for policy in args.policies:
                m = measure(policy, load, args.seconds, args.data)
                cells.setdefault((policy, load), []).append(m)
                print(f"round {r} load {load} {policy}: {m['positions_per_s']:.0f} positions/s, "
                      f"threads at the end {m['threads_end']}", file=sys.stderr, flush=True)
    median = {k: statistics.median(m["positions_per_s"] for m in v) for k, v in cells.items()}
    best_alone = max((v for (p, load), v in median.items() if load == 0), default=None)
    rows = []
    for policy in args.policies:
        for load in args.loads:
            v = median[(policy, load)]
            rows.append({"policy": policy, "busy_loops": load, "positions_per_s": round(v, 1),
                         "share_of_best_alone": round(v / best_alone, 3) if best_alone else None,
                         "runs": [m["positions_per_s"] for m in cells[(policy, load)]],
                         "governor_changes": cells[(policy, load)][-1]["governor_changes"]})
    print(json.dumps({"bench": "thread_sharing", "machine": machine, "args": vars(args), "rows": rows}, indent=1))
    print("| policy | busy loops | trained positions/s | share of the best alone |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['policy']} | {row['busy_loops']} | {row['positions_per_s']:,.0f} | "
              f"{row['share_of_best_alone']:.0%} |")


if __name__ == "__main__":
    main()

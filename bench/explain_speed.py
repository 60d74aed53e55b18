"""How long one explanation takes: IG with 50 steps on a 200-event history of the default model (max_len 200).

The issue's bar: <= 1 s on the 2-core CPU. Also prints occlusion, GradientShap and attention on the same
history, IG with the padding baseline, and the batched engine's throughput (histories per second), so a
regression in any engine shows up. Weights are random (a trained model costs the same per step); pass --run
to time a trained run instead. Usage:

    python bench/explain_speed.py [--run runs/NAME] [--steps 50] [--length 200] [--repeats 5] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}; {cores} cores usable; torch {torch.__version__} with {torch.get_num_threads()} threads; "
            f"load average {load:.1f}")


def _time(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up: first call pays imports and allocator growth
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a run folder to time instead of a fresh default model")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from seqrec_core.explain.attribution import attribute_batch_full
    from seqrec_core.models import build_model

    if args.run:
        from seqrec_core.runs import load_run

        model = load_run(args.run).model
        what = f"run {args.run}"
    else:
        torch.manual_seed(0)
        model = build_model("sasrec", 800, max_len=args.length).eval()  # the default model, 800 demo items
        what = "default SASRec (64 wide, 2 layers, 2 heads, rotary), random weights"
    cfg = model.config
    n_items, length = int(cfg.n_items), min(args.length, int(cfg.max_len))
    rng = np.random.default_rng(0)
    history = rng.integers(1, n_items + 1, length)
    target = np.array([int(rng.integers(1, n_items + 1))])
    print(f"machine: {_machine()}")
    print(f"model: {what}; max_len {cfg.max_len}; history {length} events")

    def one(method: str, baseline: str = "mean"):
        return lambda: attribute_batch_full(model, [history], target, method, steps=args.steps, baseline=baseline)

    rows = [("ig (mean baseline)", one("ig")), ("ig (padding baseline)", one("ig", "padding")),
            ("gradshap", one("gradshap")), ("occlusion", one("occlusion")), ("attention", one("attention"))]
    for name, fn in rows:
        median, best = _time(fn, args.repeats)
        steps = f", {args.steps} steps" if name.startswith(("ig", "gradshap")) else ""
        print(f"{name:24s} one explanation{steps}: median {median:.3f} s, best {best:.3f} s")
    res = attribute_batch_full(model, [history], target, "ig", steps=args.steps)
    gap = float(res.target_scores[0] - res.baseline_scores[0])
    print(f"ig convergence delta at {args.steps} steps: {float(res.deltas[0]):+.4f} (score gap {gap:+.3f})")

    hists = [rng.integers(1, n_items + 1, int(n)) for n in rng.integers(20, 51, 256)]
    targets = rng.integers(1, n_items + 1, len(hists))
    start = time.perf_counter()
    attribute_batch_full(model, hists, targets, "ig", steps=20, batch_size=64)
    took = time.perf_counter() - start
    print(f"batched ig, 20 steps, 256 histories of 20-50 events: {took:.2f} s ({len(hists) / took:.0f} per second)")


if __name__ == "__main__":
    main()

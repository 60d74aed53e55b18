"""Training speed of the neural trainer's hot path, next to the matrix-product ceiling of the same machine.

Prints one JSON document: trained tokens/s (positions with a target), padded positions/s, the analytic
FLOP/s achieved (forward + backward = 3 x forward, output layer included), and the GFLOP/s that plain
``torch.mm`` reaches in the same process on the model's big shapes and on a large square product (the
ceiling). Timings are medians over steps after a warm-up, so a neighbour's burst on a shared machine moves
them less. ``mean_step_ms_split`` times the parts of a step (body forward, loss, backward, optimizer) on 60 of
the same batches.

    python bench/train_speed.py --data ../shared/data/amazon-beauty-s3/Beauty.txt --format seqtxt
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import host_info  # noqa: E402
from seqrec_core.data.dataset import DataSource, open_dataset  # noqa: E402
from seqrec_core.models import build_model  # noqa: E402
from seqrec_core.models.batches import batch_order, iterate_batches, training_windows  # noqa: E402
from seqrec_core.training.trainer import (  # noqa: E402
    TrainConfig,
    _adamw,
    _autocast,
    resolve_device,
    resolve_precision,
    train_step,
)
from seqrec_core.training.weight_average import WeightAverage  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-beauty-s3" / "Beauty.txt"


def machine_info(device: torch.device) -> dict:
    info = host_info() | {"torch": torch.__version__, "torch_threads": torch.get_num_threads(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def forward_flops(cfg, batch_positions: int, batch_targets: int, width: int, n_seqs: int) -> float:
    """Analytic forward FLOPs (multiply-add = 2) of one step of the model actually run (padded positions)."""
    d = cfg.hidden_size
    ffn = 3 * 2 * d * (4 * d) if cfg.positions == "rotary" else 2 * 2 * d * (4 * d)  # SwiGLU has 3 matrices
    proj = 4 * 2 * d * d  # q, k, v, o
    per_layer = batch_positions * (proj + ffn) + n_seqs * 2 * 2 * width * width * d  # + QK^T and AV (full square)
    output = batch_targets * 2 * d * cfg.n_items  # full-softmax output layer, only where a target exists
    return cfg.num_layers * per_layer + output


def _timeit(fn, device: torch.device, reps: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_ceiling(device: torch.device, d: int, n_items: int, rows: int, dtype: torch.dtype,
                   rounds: int = 3) -> dict:
    """GFLOP/s of torch.mm on the model's big shapes (output written into a reused buffer) and a square one:
    the best of ``rounds`` medians, so the ceiling errs high and the reported ratio errs low."""
    g = torch.Generator(device="cpu").manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    h, w, p = rand(rows, d), rand(n_items, d), rand(rows, n_items)
    out_logits, out_h, out_w = (torch.empty(rows, n_items, device=device, dtype=dtype),
                                torch.empty(rows, d, device=device, dtype=dtype),
                                torch.empty(n_items, d, device=device, dtype=dtype))
    x, wf, of = rand(4096, d), rand(d, 4 * d), torch.empty(4096, 4 * d, device=device, dtype=dtype)
    n = 2048 if device.type == "cpu" else 8192
    a, b, c = rand(n, n), rand(n, n), torch.empty(n, n, device=device, dtype=dtype)
    reps = 20 if device.type == "cpu" else 50
    shapes = {
        f"logits ({rows}x{d}) @ ({d}x{n_items})": (lambda: torch.mm(h, w.T, out=out_logits), 2 * rows * d * n_items),
        f"grad_h ({rows}x{n_items}) @ ({n_items}x{d})": (lambda: torch.mm(p, w, out=out_h), 2 * rows * d * n_items),
        f"grad_W ({n_items}x{rows}) @ ({rows}x{d})": (lambda: torch.mm(p.T, h, out=out_w), 2 * rows * d * n_items),
        f"ffn (4096x{d}) @ ({d}x{4 * d})": (lambda: torch.mm(x, wf, out=of), 2 * 4096 * d * 4 * d),
        f"square {n}^3": (lambda: torch.mm(a, b, out=c), 2 * n**3),
    }
    best = dict.fromkeys(shapes, 0.0)
    for _ in range(rounds):  # interleaved rounds, best median kept: a neighbour's burst cannot lower the ceiling
        for name, (fn, flops) in shapes.items():
            best[name] = max(best[name], flops / _timeit(fn, device, reps) / 1e9)
    return {name: round(v, 1) for name, v in best.items()}


def step_split(model, optimizer, average: WeightAverage | None, batches: list[tuple[torch.Tensor, torch.Tensor]],
               device: torch.device) -> dict:
    """Mean ms per step of each part of a training step on the same batches: the Transformer body forward, the
    loss (forward; the CPU kernel computes its gradients there too), backward and the optimizer (with the weight
    average's update). Where the step goes, for whoever works on the speed goal next (plain fp32, no autocast)."""
    from seqrec_core.models.neural import full_softmax_cross_entropy

    def sync() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    parts = {"body_forward": 0.0, "loss": 0.0, "backward": 0.0, "optimizer": 0.0}
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        t0 = sync()
        hidden = model.forward_hidden(x).hidden  # (B, W, D)
        where = y[:, -hidden.shape[1]:] != 0  # (B, W)
        t1 = sync()
        loss = full_softmax_cross_entropy(hidden[where], model.output_weights(), y[:, -hidden.shape[1]:][where],
                                          first_column=1)
        t2 = sync()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = sync()
        optimizer.step()
        if average is not None:
            average.update()
        t4 = sync()
        for name, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[name] += dt
    return {name: round(total / len(batches) * 1e3, 2) for name, total in parts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--format", default="seqtxt")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=120, help="timed training steps (after --warmup)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--max-len", type=int, default=50)
    ap.add_argument("--hidden-size", type=int, default=64)
    ap.add_argument("--num-layers", type=int, default=2)
    ap.add_argument("--num-heads", type=int, default=2)
    ap.add_argument("--positions", default="rotary", choices=("rotary", "learned"))
    ap.add_argument("--amp", action="store_true", help="CUDA autocast (bf16/fp16) as the trainer does with amp")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="CPU: bf16 autocast of the body")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    data = open_dataset(DataSource(path=args.data, format=args.format)).sequences
    torch.manual_seed(0)
    model = build_model("sasrec", data.vocab.n_items, hidden_size=args.hidden_size, num_layers=args.num_layers,
                        num_heads=args.num_heads, max_len=args.max_len, positions=args.positions).to(device)
    cfg = model.config
    train_cfg = TrainConfig()
    optimizer = _adamw(model, train_cfg)  # the trainer's optimizer (fused AdamW where available)
    # the trainer's weight average, updated after every step as training does
    average = WeightAverage(model, train_cfg.weight_average) if train_cfg.weight_average else None
    autocast, fp16 = _autocast(device, args.precision if device.type == "cpu" else
                               resolve_precision(device, TrainConfig(amp=args.amp)))
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)
    windows, lengths, masked = training_windows([data.train_sequence(u) for u in range(data.n_users)], args.max_len)
    rng = np.random.default_rng(0)
    batches = []
    while len(batches) < args.steps + args.warmup:
        batches.extend(batch_order(lengths, args.batch_size, rng))
    batches = batches[:args.steps + args.warmup]
    step_times, flops, targets, positions = [], [], [], []
    model.train()
    for i, (x, y) in enumerate(iterate_batches(windows, lengths, batches, masked)):
        x, y = x.to(device), y.to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_step(model, optimizer, scaler, autocast, x, y)
        if average is not None:
            average.update()
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            n_t = int((y != 0).sum())
            step_times.append(dt)
            targets.append(n_t)
            positions.append(x.numel())
            flops.append(3 * forward_flops(cfg, x.numel(), n_t, x.shape[1], x.shape[0]))
    split_batches = list(iterate_batches(windows, lengths, batches[args.warmup:args.warmup + 60], masked))
    lowered = args.amp or args.precision == "bf16"
    split = step_split(model, optimizer, average, split_batches, device) if not lowered else None
    total = sum(step_times)
    median_step = statistics.median(step_times)
    mean_targets = sum(targets) / len(targets)
    achieved = sum(flops) / total / 1e9
    per_step = sorted(f / t / 1e9 for f, t in zip(flops, step_times, strict=True))
    achieved_median = statistics.median(per_step)
    # the ceiling in the dtype of the big products: on CPU the loss kernel's are fp32 under bf16 autocast too
    mm_dtype = torch.bfloat16 if (args.amp and device.type == "cuda") else torch.float32
    ceiling = matmul_ceiling(device, cfg.hidden_size, cfg.n_items, rows=int(round(mean_targets)), dtype=mm_dtype)
    model_shapes = [v for k, v in ceiling.items() if k.split()[0] in ("logits", "grad_h", "grad_W")]
    model_ceiling = len(model_shapes) / sum(1.0 / v for v in model_shapes)  # equal FLOPs each: harmonic mean
    square = next(v for k, v in ceiling.items() if k.startswith("square"))
    out = {
        "bench": "train_speed", "machine": machine_info(device),
        "model": cfg.to_dict(), "batch_size": args.batch_size, "steps_timed": len(step_times),
        "median_step_ms": round(median_step * 1e3, 2),
        "trained_tokens_per_s": round(sum(targets) / total, 1),
        "step_ms_p10_p50_p90": [round(float(np.percentile(step_times, q)) * 1e3, 1) for q in (10, 50, 90)],
        "padded_positions_per_s": round(sum(positions) / total, 1),
        "mean_step_ms_split": split,  # same 60 batches again, each part timed on its own
        "epoch_seconds_estimate": round(median_step * len(batch_order(lengths, args.batch_size, rng)), 2),
        "achieved_gflops": round(achieved, 1), "achieved_gflops_median_of_steps": round(achieved_median, 1),
        "achieved_gflops_p10_p90_of_steps": [round(float(np.percentile(per_step, q)), 1) for q in (10, 90)],
        "matmul_dtype": str(mm_dtype).replace("torch.", ""), "matmul_gflops": ceiling,
        "model_shape_ceiling_gflops": round(model_ceiling, 1),
        "ratio_to_model_shape_ceiling": round(achieved / model_ceiling, 3),
        "ratio_to_square_ceiling": round(achieved / square, 3),
        "ratio_to_square_ceiling_median_of_steps": round(achieved_median / square, 3),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""Do the training defaults learn long-range trigger -> response pairs? Issue 15's experiment table.

For every setting x seed: make a planted log (``seqrec_core.data.planted_log``; the log's seed is the run's seed),
train SASRec on it through the CLI exactly as a person would (``python -m seqrec_core train --data LOG.csv
--model sasrec --max-len 128 --time-budget B`` plus the setting's flags), then measure on the held-out planted
responses: the share ranked in the top 10 (full catalogue) and, of those, the share whose trigger is among IG's
3 most attributed events (50 steps), and the median rank of the responses with and without their trigger in
the history (equal = the pair was not learned: the response ranks by its popularity). Prints one JSON document
and, on stderr, a markdown table.

    python bench/longrange_defaults.py --budget 600 --seeds 0 1 2                  # the issue's bar (quiet!)
    python bench/longrange_defaults.py --budget 200 --parallel 2 \\
        --setting defaults= --setting 'noitemdrop=--item-dropout 0' --setting 'b64=--batch-size 64 --lr 2e-3'
    python bench/longrange_defaults.py --log '{"lag_range": [60, 100], "history_range": [120, 200]}' --max-len 200

``--parallel 2`` runs two trainings at once, each pinned to its own core (taskset): fine for comparing settings
with each other, not for the bar, which is measured with one run at a time on a quiet machine. Runs already in
``--workdir`` are measured again, not retrained.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import transformers.models.gpt2  # noqa: E402, F401 - imported once here: the lazy import is not thread-safe
import transformers.models.llama  # noqa: E402, F401

from bench.machine import host_info  # noqa: E402
from seqrec_core.data.dataset import DataSource, open_dataset  # noqa: E402
from seqrec_core.data.planted_log import PlantedLogConfig, PlantedTruth, make_planted_events  # noqa: E402
from seqrec_core.explain.planted import get_planted_recall  # noqa: E402
from seqrec_core.runs import load_run  # noqa: E402


def write_log(seed: int, log_options: dict, workdir: Path) -> tuple[Path, PlantedTruth]:
    """The planted log of this seed as a CSV in ``workdir`` (written once, before any training starts)."""
    events, truth = make_planted_events(PlantedLogConfig(**{**log_options, "seed": seed}))
    log_path = workdir / f"planted-{seed}.csv"
    events.to_csv(log_path, index=False)
    return log_path, truth


def train_and_check(name: str, extra: list[str], seed: int, planted: tuple[Path, PlantedTruth], budget: float,
                    max_len: int, workdir: Path, core: int | None) -> dict:
    """One training through the CLI and the planted-pair measurement of the run it saved."""
    log_path, truth = planted
    out = workdir / f"{name}-s{seed}"
    cmd = [sys.executable, "-m", "seqrec_core", "train", "--data", str(log_path), "--model", "sasrec",
           "--max-len", str(max_len), "--time-budget", str(budget), "--seed", str(seed), "--out", str(out), *extra]
    if core is not None:
        cmd = ["taskset", "-c", str(core), *cmd]
    started = time.perf_counter()
    row: dict = {"setting": name, "seed": seed, "args": extra}
    if (out / "config.json").exists():  # a run this workdir already holds (a bench run again): measure only
        row["reused"] = True
    else:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        row["train_wall_s"] = round(time.perf_counter() - started)
        if proc.returncode != 0:
            return row | {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    run = load_run(out)
    data = open_dataset(DataSource.from_json(run.config["data"]["source"])).sequences
    recall = get_planted_recall(run, data, truth, top_k=10, top_attr=3, method="ig", steps=50)
    result = json.loads((out / "metrics.json").read_text())
    train_cfg = run.config.get("train", {})
    print(f"{name} seed {seed}: {recall}", file=sys.stderr, flush=True)
    return row | recall | {"test_NDCG@10": result.get("test", {}).get("NDCG@10"),
                           "epochs": run.config.get("epochs_trained"), "best_epoch": run.config.get("best_epoch"),
                           "batch_size": train_cfg.get("batch_size"), "lr": train_cfg.get("lr"),
                           "stopped": run.config.get("stopped_reason")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=600, help="--time-budget of each training (seconds)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--setting", action="append", default=None,
                    help="NAME=FLAGS: extra train flags of a setting ('defaults=' for none); repeatable")
    ap.add_argument("--log", default="{}", help="planted-log options as JSON (PlantedLogConfig fields)")
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--parallel", type=int, default=1, help="trainings at once, one core each when > 1")
    ap.add_argument("--workdir", help="keep logs and runs here (default: a temporary folder)")
    args = ap.parse_args()
    settings = []
    for text in args.setting or ["defaults="]:
        name, sep, flags = text.partition("=")
        if not sep or not name:
            raise SystemExit(f"--setting {text!r}: write NAME=FLAGS, e.g. 'b64=--batch-size 64'")
        settings.append((name, shlex.split(flags)))
    log_options = json.loads(args.log)
    jobs = [(name, flags, seed) for seed in args.seeds for name, flags in settings]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        pinned = sorted(cores)[: args.parallel] if args.parallel > 1 else [None]
        logs = {seed: write_log(seed, log_options, workdir) for seed in args.seeds}
        with ThreadPoolExecutor(max_workers=len(pinned)) as pool:
            futures = [pool.submit(train_and_check, name, flags, seed, logs[seed], args.budget, args.max_len,
                                   workdir, pinned[k % len(pinned)]) for k, (name, flags, seed) in enumerate(jobs)]
            rows = [f.result() for f in futures]
    print("| setting | seeds | held-out responses in top 10 (mean, per seed) | trigger in IG top 3 | median rank "
          "(without the trigger) | test NDCG@10 | epochs |", file=sys.stderr)
    print("| --- | --- | --- | --- | --- | --- | --- |", file=sys.stderr)
    for name, _flags in settings:
        mine = [r for r in rows if r["setting"] == name and "error" not in r and r.get("recall") is not None]
        if not mine:
            print(f"| {name} | failed | | | | | |", file=sys.stderr)
            continue
        recall = [r["recall"] for r in mine]
        found = [r["trigger_found"] for r in mine if r["trigger_found"] is not None]
        found_text = (f"{statistics.mean(found):.2f} ({', '.join(f'{x:.2f}' for x in found)})" if found
                      else "none in top 10")
        ranks = ", ".join(f"{r['median_rank']:g} ({r['median_rank_without_trigger']:g})" for r in mine)
        print(f"| {name} | {len(mine)} | {statistics.mean(recall):.2f} ({', '.join(f'{x:.2f}' for x in recall)}) | "
              f"{found_text} | {ranks} | {statistics.mean(r['test_NDCG@10'] for r in mine):.3f} | "
              f"{', '.join(str(r['epochs']) for r in mine)} |", file=sys.stderr)
    print(json.dumps({"machine": host_info(), "budget": args.budget, "max_len": args.max_len, "log": log_options,
                      "parallel": args.parallel, "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    main()

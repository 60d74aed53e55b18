"""Retrain the demo run shipped in assets/demo_run and measure issue 3's truth bar on it.

Trains SASRec on the built-in demo with the recipe in ``seqrec_core.demo_run.DEMO_RECIPE`` through the CLI
(exactly ``python -m seqrec_core train --data demo ...``), runs the planted-pair truth check (IG, 50 steps, and
occlusion: share of cases whose planted trigger is among the 3 most attributed events), prints one JSON document
with the machine, and with ``--install`` replaces assets/demo_run. Needed whenever the demo generator changes
(tests/core/test_demo_run.py fails until then). About 15 minutes on 2 CPU cores.

    python bench/make_demo_run.py --install
    python bench/make_demo_run.py --seed 1          # another seed, to see how steady the recipe is
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.train_speed import machine_info  # noqa: E402
from seqrec_core.data.dataset import dataset_from_events  # noqa: E402
from seqrec_core.data.synthetic import make_demo_events  # noqa: E402
from seqrec_core.demo_run import DEMO_RECIPE, SHIPPED_DEMO_RUN  # noqa: E402
from seqrec_core.explain.planted import get_planted_pair_check  # noqa: E402
from seqrec_core.runs import load_run  # noqa: E402


def recipe_args(seed: int, device: str) -> list[str]:
    opts = {**DEMO_RECIPE, "seed": seed, "device": device}
    args = []
    for name, value in opts.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return args


def truth_check(run_dir: Path) -> dict:
    events, truth = make_demo_events(seed=0)
    data = dataset_from_events(events, "demo").sequences
    run = load_run(run_dir)
    out = {}
    for method in ("ig", "occlusion"):
        cases = get_planted_pair_check(run, data, truth, top_k=10, method=method, steps=50)
        out[method] = {"cases": len(cases),
                       "hit_share_top3": round(float(cases["hit"].mean()), 3) if len(cases) else None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=int(DEMO_RECIPE["seed"]))
    parser.add_argument("--device", default="cpu", help="cpu (the shipped run) or cuda")
    parser.add_argument("--install", action="store_true", help="replace assets/demo_run with the new run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "demo-run"
        started = time.perf_counter()
        cmd = [sys.executable, "-m", "seqrec_core", "train", "--data", "demo", "--out", str(run_dir),
               *recipe_args(args.seed, args.device)]
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        train_s = time.perf_counter() - started
        result = {"command": " ".join(["python -m seqrec_core train --data demo --out DIR", *cmd[8:]]),
                  "train_seconds": round(train_s, 1), "truth_check": truth_check(run_dir),
                  "test_metrics": json.loads((run_dir / "metrics.json").read_text()).get("test"),
                  "machine": machine_info(torch.device(args.device))}
        if args.install:
            shutil.rmtree(SHIPPED_DEMO_RUN, ignore_errors=True)
            shutil.copytree(run_dir, SHIPPED_DEMO_RUN)
            result["installed"] = str(SHIPPED_DEMO_RUN.relative_to(ROOT))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

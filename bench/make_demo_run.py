"""Retrain a demo run shipped in assets/ (and store its analysis), and measure issue 3's truth bar on it.

Trains SASRec on the built-in demo with the options in ``seqrec_core.demo_run.DEMO_RECIPE`` (the defaults and a
seed, plus the variant's options in ``SHIPPED_OPTIONS``: the second shipped run uses learned positions) through
the CLI (exactly ``python -m seqrec_core train --data demo ...``), runs the planted-pair truth check (IG, 50
steps, and occlusion: share of cases whose planted trigger is among the 3 most attributed events), prints one
JSON document with the machine, and with ``--install`` replaces the shipped folder, analysed (``python -m
seqrec_core analyze``) so the demo's pages open at once. Needed whenever the demo generator changes
(tests/core/test_demo_run.py fails until then). About 27 minutes of training (200 epochs) and 1.5 of analysis
per run on one CPU core. ``--analyze-only`` re-stores the shipped runs' analyses (after an analysis changed:
tests/core/test_analysis_store.py fails until then), about 1.5 minutes per run. ``--metrics-only`` evaluates the
shipped runs' kept models again and rewrites their ``metrics.json`` (after a metric was added, e.g. AUC / GAUC), a
few seconds per run; the model and its analyses stay as they are.

    python bench/make_demo_run.py --install
    python bench/make_demo_run.py --variant demo-sasrec-learned-positions --install
    python bench/make_demo_run.py --analyze-only
    python bench/make_demo_run.py --metrics-only
    python bench/make_demo_run.py --seed 1          # another seed, to see how steady the result is
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
from seqrec_core.demo_run import DEMO_RECIPE, INSTALLED_NAME, SHIPPED_OPTIONS, SHIPPED_RUNS  # noqa: E402
from seqrec_core.explain.planted import get_planted_pair_check  # noqa: E402
from seqrec_core.runs import load_run  # noqa: E402


def recipe_args(seed: int, device: str, variant: str = INSTALLED_NAME) -> list[str]:
    opts = {**DEMO_RECIPE, **SHIPPED_OPTIONS[variant], "seed": seed, "device": device}
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
    parser.add_argument("--variant", default=INSTALLED_NAME, choices=list(SHIPPED_RUNS),
                        help="which shipped run to retrain (default: the rotary SASRec the demo uses)")
    parser.add_argument("--install", action="store_true", help="replace the shipped run with the new one, analysed")
    parser.add_argument("--analyze-only", action="store_true",
                        help="only store the analyses of every shipped run again (no training)")
    parser.add_argument("--metrics-only", action="store_true",
                        help="only evaluate every shipped run again and rewrite its metrics.json (no training)")
    args = parser.parse_args()
    if args.analyze_only:
        print(json.dumps({name: analyse(folder) for name, folder in SHIPPED_RUNS.items()}, indent=2))
        return
    if args.metrics_only:
        print(json.dumps({name: refresh_metrics(folder) for name, folder in SHIPPED_RUNS.items()}, indent=2))
        return
    shipped = SHIPPED_RUNS[args.variant]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "demo-run"
        started = time.perf_counter()
        cmd = [sys.executable, "-m", "seqrec_core", "train", "--data", "demo", "--out", str(run_dir),
               *recipe_args(args.seed, args.device, args.variant)]
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        train_s = time.perf_counter() - started
        result = {"command": " ".join(["python -m seqrec_core train --data demo --out DIR", *cmd[8:]]),
                  "train_seconds": round(train_s, 1), "truth_check": truth_check(run_dir),
                  "test_metrics": json.loads((run_dir / "metrics.json").read_text()).get("test"),
                  "machine": machine_info(torch.device(args.device))}
        if args.install:
            shutil.rmtree(shipped, ignore_errors=True)
            shutil.copytree(run_dir, shipped, ignore=shutil.ignore_patterns("progress.jsonl"))
            result["installed"] = str(shipped.relative_to(ROOT))
            result["analysis"] = analyse(shipped)
    print(json.dumps(result, indent=2))


def refresh_metrics(folder: Path) -> dict:
    """Evaluate a shipped run's kept model on the demo's val and test splits again (same protocol as training's
    own evaluation, same exclude-seen) and rewrite its metrics.json in place, atomically."""
    from seqrec_core.evaluation import evaluate

    metrics_path = folder / "metrics.json"
    stored = json.loads(metrics_path.read_text())
    exclude_seen = bool(stored.get("exclude_seen", False))
    data = dataset_from_events(make_demo_events(seed=0)[0], "demo").sequences
    scorer = load_run(folder).scorer()
    metrics = {part: evaluate(scorer, data, part, exclude_seen=exclude_seen).metrics for part in ("val", "test")}
    metrics["exclude_seen"] = exclude_seen
    changed = {part: {m: (stored.get(part, {}).get(m), v) for m, v in metrics[part].items()
                      if stored.get(part, {}).get(m) is None or abs(stored[part][m] - v) > 1e-9}
               for part in ("val", "test")}
    tmp = metrics_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics, indent=1))
    tmp.replace(metrics_path)
    return {"metrics": str(metrics_path.relative_to(ROOT)), "changed (old, new)": changed}


def analyse(folder: Path) -> dict:
    """Store every analysis of a shipped run again (what "Load demo data" shows at once)."""
    shutil.rmtree(folder / "analysis", ignore_errors=True)
    done = subprocess.run([sys.executable, "-m", "seqrec_core", "analyze", "--run", str(folder), "--device", "cpu"],
                          check=True, cwd=ROOT, capture_output=True, text=True)
    report = json.loads(done.stdout)
    (folder / "analysis" / ".lock").unlink(missing_ok=True)
    return {"seconds": report["seconds"], "parts": report["parts"]}


if __name__ == "__main__":
    main()

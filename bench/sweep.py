"""Several settings x seeds of ``bench/quality.py`` at once, as one table: how the GPU bar was (and will be) swept.

A 64-wide SASRec leaves a GPU mostly idle (each step is kernel launches), so 4-8 runs share one GPU at little cost;
on a 2-core CPU use ``--parallel 1``. Each setting is a name and the extra ``quality.py`` arguments; every setting
runs once per seed. Prints one JSON document (every run's test metrics, seen excluded and kept) and, on stderr, a
markdown table with the mean and spread over seeds, best first.

    python bench/sweep.py --data ../shared/data/amazon-beauty-s3/Beauty.txt --device cuda --parallel 6 \\
        --seeds 42 1 2 --time-budget 380 \\
        --setting defaults= --setting 'wd05={"train": {"weight_decay": 0.05}}' \\
        --setting 'ls01={"model": {"label_smoothing": 0.1}}' --setting 'len200={"train": {"max_len": 200}}' \\
        --setting 'gbce={"args": ["--loss", "gbce"]}'
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import host_info  # noqa: E402

QUALITY = Path(__file__).resolve().with_name("quality.py")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-beauty-s3" / "Beauty.txt"


def parse_setting(text: str) -> tuple[str, list[str]]:
    """``NAME=JSON`` -> (name, argv for quality.py). JSON keys: "model" / "train" (option objects, as quality.py's
    --model-options / --train-options) and "args" (a list of any other quality.py arguments); ``NAME=`` = defaults."""
    name, sep, rest = text.partition("=")
    try:
        spec = json.loads(rest) if rest.strip() else {}
    except json.JSONDecodeError:
        spec = None
    if not sep or not name or not isinstance(spec, dict) or set(spec) - {"model", "train", "args"}:
        raise SystemExit(f"--setting {text!r}: write NAME=JSON, e.g. 'wd05={{\"train\": {{\"weight_decay\": 0.05}}}}'")
    argv = [str(a) for a in spec.get("args", [])]
    if "model" in spec:
        argv += ["--model-options", json.dumps(spec["model"])]
    if "train" in spec:
        argv += ["--train-options", json.dumps(spec["train"])]
    return name, argv


def run_one(name: str, extra: list[str], seed: int, common: list[str], out_root: Path) -> dict:
    """One quality.py run in its own process; its JSON, or the error tail when it failed."""
    cmd = [sys.executable, str(QUALITY), *common, "--seed", str(seed), "--baselines", "",
           "--out", str(out_root / f"{name}-s{seed}"), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    row = {"setting": name, "seed": seed, "args": extra}
    if proc.returncode != 0:
        return row | {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    doc = json.loads(proc.stdout)
    return row | {"test": doc["test"], "epochs": doc["epochs"], "best_epoch": doc["best_epoch"],
                  "stopped_reason": doc["stopped_reason"], "train_seconds": doc["train_seconds"]}


def table(rows: list[dict], metric: str = "NDCG@10") -> str:
    """Markdown: setting, seeds, mean / min / max of the test metric (seen excluded), HR@10 mean; best first."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        if "test" in r:
            by.setdefault(r["setting"], []).append(r)
    lines = [f"| setting | seeds | test {metric} mean | min - max | HR@10 mean |", "| --- | --- | --- | --- | --- |"]
    stats = []
    for name, runs in by.items():
        vals = [r["test"]["exclude_seen"][metric] for r in runs]
        hr = [r["test"]["exclude_seen"]["HR@10"] for r in runs]
        stats.append((statistics.mean(vals), name, len(vals), min(vals), max(vals), statistics.mean(hr)))
    for mean, name, n, lo, hi, hr in sorted(stats, reverse=True):
        lines.append(f"| {name} | {n} | {mean:.4f} | {lo:.4f} - {hi:.4f} | {hr:.4f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--format", default="seqtxt")
    ap.add_argument("--model", default="sasrec")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--time-budget", type=float, default=480.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    ap.add_argument("--parallel", type=int, default=1, help="runs at once (4-8 share one GPU well)")
    ap.add_argument("--setting", action="append", default=[], metavar="NAME=ARGS",
                    help='a named setting, NAME={"model": {...}, "train": {...}, "args": [...]} (repeat; none = the '
                         "defaults only)")
    ap.add_argument("--out", default=None, help="folder for the run folders (default: a temporary one)")
    args = ap.parse_args()
    settings = [parse_setting(s) for s in args.setting] or [("defaults", [])]
    common = ["--data", args.data, "--format", args.format, "--model", args.model, "--device", args.device,
              "--time-budget", str(args.time_budget)]
    out_root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="seqrec-sweep-"))
    jobs = [(name, extra, seed) for name, extra in settings for seed in args.seeds]
    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        rows = list(pool.map(lambda job: run_one(*job, common, out_root), jobs))
    print(json.dumps({"bench": "sweep", "machine": host_info(), "common": common, "runs": rows}, indent=2))
    print(table(rows), file=sys.stderr)


if __name__ == "__main__":
    main()

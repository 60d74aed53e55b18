"""Serving many users from the CLI: 20 single ``recommend --user`` calls against one ``recommend --users ... --out``,
each with the run's stored event histories and without them (then every call reopens and cleans the log).

Every call is a real subprocess (``python -m seqrec_core ...``), as a script or a scheduler would run it, so the
numbers include interpreter start-up and imports, which is what a per-user call pays each time. The run is a copy
of the shipped demo run (or, with ``--train``, a 2-epoch SASRec trained on the demo log) in a temporary folder; its
histories are stored with ``analyze --parts evaluation``, and removed for the "without" half. The script checks
that both halves (and the batch and the single calls) give the same top items, and prints one JSON document with
the machine it ran on, plus (in one process, without imports or the model) how long getting the sequences takes
from the log and from the stored histories. It measures; it does not decide pass or fail.

    python bench/batch_cli.py                  # the shipped demo run, 20 users
    python bench/batch_cli.py --train          # a freshly trained demo run
    python bench/batch_cli.py --users 50 --k 20
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

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from bench.train_speed import machine_info  # noqa: E402
from seqrec_core.analysis.store import read_unit  # noqa: E402


def cli(*args: str) -> tuple[float, dict]:
    """Wall seconds of one CLI call and its JSON document (a failed call stops the benchmark)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "seqrec_core", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=1800)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(args[:3])} ...` failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return wall, json.loads(proc.stdout)


def prepare_run(folder: Path, train: bool) -> dict:
    """A run with its histories stored; returns how it was made and what storing the histories cost."""
    run = folder / "run"
    if train:
        wall, _ = cli("train", "--data", "demo", "--model", "sasrec", "--epochs", "2", "--device", "cpu",
                      "--out", str(run))
        made = {"run": "sasrec trained 2 epochs on --data demo", "train_wall_seconds": round(wall, 1)}
    else:
        shutil.copytree(ROOT / "assets" / "demo_run", run)
        made = {"run": "copy of assets/demo_run"}
    wall, report = cli("analyze", "--run", str(run), "--parts", "evaluation", "--device", "cpu")
    unit = read_unit(run, "histories", {})
    if unit is None:
        raise SystemExit("analyze did not store the histories")
    made |= {"analyze_evaluation_wall_seconds": round(wall, 1),
             "histories_store_seconds": next(u["seconds"] for u in report["units"] if u["kind"] == "histories"),
             "histories_bytes": sum(p.stat().st_size for p in unit.folder.iterdir()),
             "events": int(unit.info["events"]), "run_dir": str(run)}
    return made


def measure(run: Path, users: list[str], k: int, out: Path) -> tuple[dict, dict]:
    """Times of the single calls and of the batch call; (numbers, top items per user from each)."""
    singles, single_items = [], {}
    for user in users:
        wall, doc = cli("recommend", "--run", str(run), "--user", user, "--k", str(k))
        singles.append(wall)
        single_items[user] = [i["item"] for i in doc["items"]]
    wall, doc = cli("recommend", "--run", str(run), "--users", ",".join(users), "--k", str(k), "--out", str(out))
    table = pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    batch_items = {u: rows["item_id"].tolist() for u, rows in table.groupby("user_id", sort=False)}
    numbers = {"single_calls_total_seconds": round(sum(singles), 2),
               "single_call_median_seconds": round(statistics.median(singles), 3),
               "single_call_min_seconds": round(min(singles), 3),
               "batch_call_wall_seconds": round(wall, 3),
               "batch_command_seconds": doc["seconds"],  # inside the command: after imports, before exit
               "batch_rows": doc["rows"],
               "speedup_batch_vs_singles": round(sum(singles) / wall, 1),
               "batch_equals_singles": batch_items == single_items}
    return numbers, single_items


def data_open_seconds(run: Path, reps: int = 5) -> dict:
    """In one process (no imports, no model): median seconds to get the run's sequences from its log (load, clean,
    sequence) and from its stored histories: the part of each call that the histories replace."""
    from seqrec_core.analysis.kinds_serving import load_sequences
    from seqrec_core.data.dataset import DataSource, open_dataset
    from seqrec_core.runs import read_run_files

    files = read_run_files(run)
    source = DataSource.from_json(files.config["data"]["source"])
    fingerprint = files.config["data"]["fingerprint"]
    times: dict[str, list[float]] = {"log": [], "stored_histories": []}
    for _ in range(reps):
        t0 = time.perf_counter()
        open_dataset(source)
        times["log"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        if load_sequences(run, files.vocab, fingerprint) is None:
            raise SystemExit("the stored histories were not usable")
        times["stored_histories"].append(time.perf_counter() - t0)
    return {name: round(statistics.median(values), 3) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20, help="users to serve (the run's first N)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--train", action="store_true", help="train a demo run instead of copying the shipped one")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run folder (its path is printed)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="batch_cli_"))
    try:
        made = prepare_run(folder, args.train)
        run = Path(made["run_dir"])
        users = json.loads((run / "vocab.json").read_text())["user_ids"][: args.users]
        opened = data_open_seconds(run)
        with_hist, items_with = measure(run, users, args.k, folder / "with.csv")
        unit = read_unit(run, "histories", {})
        shutil.move(str(unit.folder), str(folder / "histories-set-aside"))  # now every call reads the log
        without_hist, items_without = measure(run, users, args.k, folder / "without.csv")
        result = {
            "benchmark": "batch_cli", "users": len(users), "k": args.k, "setup": made,
            "with_stored_histories": with_hist, "without_stored_histories": without_hist,
            "same_results_with_and_without": items_with == items_without,
            "data_open_in_process_median_seconds": opened,
            "single_call_saving_from_histories_seconds": round(
                without_hist["single_call_median_seconds"] - with_hist["single_call_median_seconds"], 3),
            "machine": machine_info(torch.device("cpu")),
        }
        if not args.keep:
            result["setup"].pop("run_dir")
        print(json.dumps(result, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

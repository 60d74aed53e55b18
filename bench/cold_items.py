"""Cold re-listed items: does an item's title place a never-trained item where it belongs, per model family?

The scenario is the one tests/core/test_text_families.py checks (tests/core/cold_log.py): five groups of eight
items whose titles share a colour word, 250 users who each stay in one group, and per group a re-listed item (the
title of the group's first item, a new id) that is only ever the held-out test target of users u000-u099. Each
family trains through the real job (hidden 32, 1 layer, dropout 0.2, lr 5e-3, max_len 16, the last epoch kept,
one torch thread) twice: without titles and with them, encoded by a tiny offline BERT (a 1-layer, 32-wide model
built from a config in a temporary folder; no download, and the text cache also goes to a temporary folder).
For each run: the share of those 100 users whose re-listed item is in their top 10 of the 45-item catalogue, its
median rank, and the share of users who rank it higher with titles than without. Prints one JSON document with
the machine it ran on and, on stderr, a markdown table. It measures; it does not decide pass or fail.

    OMP_NUM_THREADS=1 python bench/cold_items.py                                  # all five families, 20 epochs
    OMP_NUM_THREADS=1 python bench/cold_items.py --family sasrec --loss bce       # SASRec's binary losses
    OMP_NUM_THREADS=1 python bench/cold_items.py --family sasrec --loss gbce
    OMP_NUM_THREADS=1 python bench/cold_items.py --family gru4rec sasrec --epochs 60   # longer training
    OMP_NUM_THREADS=1 python bench/cold_items.py --weight-average 0   # no weight average (the session-11 table)

Training keeps a moving average of the weights by default (TrainConfig.weight_average 0.999, added after session
11's table was measured); with it off this script gives that table exactly (sasrec 0.23 / 11 without titles,
bert4rec 0.03 / 25 with); with it on, the with-titles column is the same except bert4rec 0.00 / 25.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "core"))  # the scenario is the test's, defined once in cold_log.py

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from cold_log import MAX_LEN, N_COLD_USERS, cold_relisted_log, make_tiny_encoder, relisted_ranks, train_cold_run  # noqa: E402

from bench.train_speed import machine_info  # noqa: E402
from seqrec_core.models.text_features import CACHE_ENV  # noqa: E402
from seqrec_core.runs import load_run  # noqa: E402

FAMILIES = ("sasrec", "bert4rec", "gru4rec", "lstm", "lsi")
SETTINGS = ("plain", "text")  # without titles, with titles


def summarise(ranks: np.ndarray) -> dict:
    """Top-10 share and median rank of the re-listed items (plus the mean and the worst, for spread)."""
    return {"top10_share": round(float(np.mean(ranks <= 10)), 3), "median_rank": float(np.median(ranks)),
            "mean_rank": round(float(np.mean(ranks)), 2), "worst_rank": int(ranks.max())}


def measure(data, family: str, encoder: Path, out_root: Path, epochs: int, seed: int, options: dict,
            train_options: dict) -> dict:
    """One family trained without and with titles; each run's numbers and the per-user comparison."""
    result: dict = {}
    ranks = {}
    for name in SETTINGS:
        started = time.time()
        summary = train_cold_run(data, family, out_root / f"{family}_{name}", epochs=epochs, seed=seed,
                                 text_encoder=str(encoder) if name == "text" else None,
                                 train_options=train_options, **options)
        wall = time.time() - started
        ranks[name] = relisted_ranks(data, load_run(summary["run_dir"]).model, MAX_LEN)
        result[name] = summarise(ranks[name]) | {
            "epochs": summary["epochs"], "train_seconds": summary["train_seconds"], "job_wall_seconds": round(wall, 1),
            "test_HR@10_all_users": round(summary["metrics"]["test"]["HR@10"], 4)}
    result["higher_with_titles"] = round(float(np.mean(ranks["text"] < ranks["plain"])), 3)
    return result


def cell(row: dict) -> str:
    return f"{row['top10_share']:.2f} / {row['median_rank']:g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    ap.add_argument("--loss", default=None, choices=("full", "sampled", "bce", "gbce"),
                    help="sasrec's loss (default: the library's); only with --family sasrec")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--weight-average", type=float, default=None,
                    help="TrainConfig.weight_average (default: the library's; 0 = off, as before session 11's table)")
    args = ap.parse_args()
    if args.loss is not None and set(args.family) != {"sasrec"}:
        raise SystemExit("--loss is a SASRec option: add --family sasrec")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)  # two threads on a busy 2-core machine wait on each other (see the test's docstring)
    options = {"loss": args.loss} if args.loss is not None else {}
    train_options = {"weight_average": args.weight_average} if args.weight_average is not None else {}

    started = time.time()
    data = cold_relisted_log()
    with tempfile.TemporaryDirectory(prefix="seqrec-cold-items-") as tmp:
        root = Path(tmp)
        os.environ[CACHE_ENV] = str(root / "cache")
        encoder = root / "encoder"
        transformers.utils.logging.disable_progress_bar()  # save_pretrained's shard bar would clutter stderr
        make_tiny_encoder(encoder)
        runs = {}
        for family in args.family:
            runs[family] = measure(data, family, encoder, root / "runs", args.epochs, args.seed, options,
                                   train_options)
            print(f"{family}: without titles {cell(runs[family]['plain'])}, with titles {cell(runs[family]['text'])}",
                  file=sys.stderr, flush=True)
    machine = machine_info(torch.device("cpu")) | {"transformers": transformers.__version__}
    result = {"bench": "cold_items", "machine": machine,
              "scenario": {"users": data.n_users, "items": data.vocab.n_items, "cold_users": N_COLD_USERS,
                           "max_len": MAX_LEN, "hidden_size": 32, "num_layers": 1, "dropout": 0.2, "lr": 5e-3,
                           "keep": "last"},
              "epochs": args.epochs, "seed": args.seed, "model_options": options,
              "train_options": train_options, "runs": runs,
              "wall_seconds": round(time.time() - started, 1)}
    print(json.dumps(result, indent=2))
    loss = f", loss {args.loss}" if args.loss else ""
    loss += f", weight average {args.weight_average:g}" if args.weight_average is not None else ""
    lines = [f"\nRe-listed item: top-10 share / median rank of 45 ({args.epochs} epochs, seed {args.seed}{loss})\n",
             "| family | without titles | with titles | higher with titles | epochs |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {f} | {cell(r['plain'])} | {cell(r['text'])} | {r['higher_with_titles']:.2f} | "
              f"{r['text']['epochs']} |" for f, r in runs.items()]
    print("\n".join(lines), file=sys.stderr)


if __name__ == "__main__":
    main()

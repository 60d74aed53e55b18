"""Reproduce the quality bar: a model family with the library's defaults under a time budget, against baselines.

Trains exactly what ``python -m seqrec_core train --model FAMILY --time-budget 480`` trains (the defaults of
the family's config and TrainConfig; ``--model`` picks sasrec, bert4rec, gru4rec, lstm or lsi), then ranks the
whole catalogue for every user's held-out last event, both with seen items kept and excluded (published numbers
on the S3-Rec Beauty file exclude them), next to the baselines. Prints one JSON document with the machine it ran on.

    python bench/quality.py --data ../shared/data/amazon-beauty-s3/Beauty.txt --format seqtxt --time-budget 480
    python bench/quality.py --model lsi --time-budget 240          # issue 5's per-family bar (NDCG@10 >= 0.02)

Time-aware SASRec against plain SASRec (same seed, same options; ``--time-features`` adds the hour / weekday /
gap embeddings of each event and of the query time, which evaluation sets to the held-out event's time). Train
both to early-stopping convergence: the time tables start at zero and the time-aware model keeps improving for
longer (demo, seed 42: plain stops at epoch 38, time-aware at 54), so a 30-epoch cap understates the difference:

    OMP_NUM_THREADS=1 python bench/quality.py --data demo --format auto --epochs 60 --time-budget 0 \\
        --baselines "" [--time-features]
    python bench/quality.py --data ../shared/data/ml-latest-small/ratings.csv --format auto --epochs 60 \\
        --time-budget 0 [--time-features]
    python bench/quality.py --loss gbce --gbce-t 0.75 ...                        # the BCE / gBCE losses
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.train_speed import DEFAULT_DATA, machine_info  # noqa: E402
from seqrec_core.data.dataset import DataSource, open_dataset  # noqa: E402
from seqrec_core.evaluation import evaluate  # noqa: E402
from seqrec_core.jobs import run_training_job  # noqa: E402
from seqrec_core.models.baselines import fit_baselines  # noqa: E402
from seqrec_core.runs import load_run  # noqa: E402
from seqrec_core.training import TrainConfig, resolve_device  # noqa: E402

KEEP = ("HR@10", "NDCG@10", "HR@20", "NDCG@20", "MRR")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--format", default="seqtxt")
    ap.add_argument("--model", default="sasrec", help="family: sasrec, bert4rec, gru4rec, lstm or lsi")
    ap.add_argument("--time-budget", type=float, default=480.0, help="seconds (0 = no budget: use --epochs)")
    ap.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: TrainConfig's)")
    ap.add_argument("--time-features", action="store_true", help="sasrec: time-aware inputs (needs timestamps)")
    ap.add_argument("--loss", default=None, choices=("full", "sampled", "bce", "gbce"), help="sasrec loss")
    ap.add_argument("--gbce-t", type=float, default=None, help="gbce calibration t (default 0.75)")
    ap.add_argument("--num-negatives", type=int, default=None, help="negatives per positive (sampled, gbce)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--model-options", default="{}", help='JSON, e.g. \'{"dropout": 0.5}\' (default: library defaults)')
    ap.add_argument("--train-options", default="{}", help='JSON of TrainConfig fields (default: library defaults)')
    ap.add_argument("--out", default=None, help="run folder to keep (default: a temporary folder)")
    ap.add_argument("--baselines", default="popularity,markov,itemknn")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    logging.getLogger("seqrec_core.evaluation").setLevel(logging.WARNING)

    device = resolve_device(args.device)
    ds = open_dataset(DataSource(path=args.data, format=args.format))
    data = ds.sequences
    train_opts = {"time_budget": args.time_budget or None, "device": args.device, "seed": args.seed}
    if args.epochs is not None:
        train_opts["epochs"] = args.epochs
    train_cfg = TrainConfig(**{**train_opts, **json.loads(args.train_options)})
    model_opts = json.loads(args.model_options)
    for name in ("loss", "gbce_t", "num_negatives"):
        if getattr(args, name) is not None:
            model_opts[name] = getattr(args, name)
    if args.time_features:
        model_opts["time_features"] = True
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="seqrec-quality-")) / args.model
    started = time.time()
    summary = run_training_job(data, args.model, model_opts, train_cfg, out, ds.info())
    wall = time.time() - started
    run = load_run(out, device=str(device) if device.type != "mps" else "cpu")
    scorer = run.scorer(device=device)
    result = {"bench": "quality", "machine": machine_info(device), "data": ds.info()["name"],
              "users": data.n_users, "items": data.vocab.n_items, "events": data.n_events,
              "model": run.config["model"], "train": run.config["train"], "run_dir": str(out),
              "epochs": summary["epochs"], "best_epoch": summary["best_epoch"],
              "stopped_reason": summary["stopped_reason"], "train_seconds": summary["train_seconds"],
              "job_wall_seconds": round(wall, 1), "test": {}, "baselines": {}}
    for exclude in (False, True):
        key = "exclude_seen" if exclude else "include_seen"
        result["test"][key] = {m: round(v, 5) for m, v in evaluate(scorer, data, "test", exclude_seen=exclude)
                               .metrics.items() if m in KEEP}  # a time-aware run is asked at the held-out time
    names = [n for n in args.baselines.split(",") if n]
    for name, base in fit_baselines(data).items():
        if name not in names:
            continue
        result["baselines"][name] = {
            ("exclude_seen" if ex else "include_seen"): {m: round(v, 5) for m, v in
                                                         evaluate(base, data, "test", exclude_seen=ex).metrics.items()
                                                         if m in KEEP} for ex in (False, True)}
    if "popularity" in result["baselines"]:
        for key in ("include_seen", "exclude_seen"):
            pop = result["baselines"]["popularity"][key]["NDCG@10"]
            ratio = round(result["test"][key]["NDCG@10"] / pop, 2) if pop else None
            result["test"][key]["x_popularity_NDCG@10"] = ratio
    result["history"] = run.history
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

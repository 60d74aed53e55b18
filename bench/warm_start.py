"""Warm start against a full retrain on a log that has grown (issue 17, part 4).

The demo log with a planted taste shift in its last weeks (``make_demo_events(shift_weeks=...)``: a third of the
users active then move to a new "Smart home" category whose items did not exist before). The old log is every
event before the shift. Steps, each through the library's real jobs (the same code as the CLI's ``train`` and
``train --resume``):
  0. the old run: SASRec with the defaults on the old log, for ``--epochs`` epochs;
  a. resumed: ``resume_training`` on the full log with its default budget (10% of the old run's epochs, rounded up)
     and new items imprinted (the default); once more with ``new_items="init"`` (the family's init alone) to show
     what imprinting adds;
  b. retrained: SASRec from scratch on the full log with the old run's recipe, the same number of epochs.
Budgets are epochs, not seconds, so every run does the same work however busy the machine is (the wall seconds
are what a loaded machine gives). A retrain to its own stopping point would take longer still (the shipped demo
run trains all 200 epochs), so this is the retrain's cheapest honest form.
Then NDCG@10 / HR@10 on the newest period (users whose held-out test event is after the old run's last event) for
old, resumed and retrained, and the wall seconds of (a) and (b), whole jobs (build, train, evaluate, save).
Bar: resumed within 0.01 of retrained's newest-period NDCG@10, in <= 25% of its time. It measures; it does not
decide pass or fail. Prints one JSON document (stdout) and a markdown table (stderr).

    OMP_NUM_THREADS=2 python bench/warm_start.py                       # 300 users, 15 epochs: ~8 minutes loaded
    OMP_NUM_THREADS=2 python bench/warm_start.py --users 150 --epochs 5   # a quick look
"""
from __future__ import annotations

import argparse
import json
import logging
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
from seqrec_core.jobs.train import run_training_job  # noqa: E402
from seqrec_core.runs import load_run  # noqa: E402
from seqrec_core.training import TrainConfig  # noqa: E402
from seqrec_core.training.warm_start import resume_training  # noqa: E402
from seqrec_core.what_changed import (  # noqa: E402
    OldCatalogueScorer,
    get_newest_period_metrics,
    get_shift_recovery,
    get_what_changed,
    last_time_of,
)


def newest(scorer: object, data, since: int, exclude_seen: bool) -> dict:  # noqa: ANN001 - SequenceData
    row = get_newest_period_metrics(scorer, data, since, exclude_seen=exclude_seen)[0]
    return {"users": row["users"], "NDCG@10": round(row["NDCG@10"], 4), "HR@10": round(row["HR@10"], 4)}


def timed(call):  # noqa: ANN001, ANN201
    t0 = time.perf_counter()
    out = call()
    return out, round(time.perf_counter() - t0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--shift-weeks", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=15, help="epochs of the old run and of the full retrain")
    ap.add_argument("--seed", type=int, default=0, help="the demo log's seed (training uses 42)")
    ap.add_argument("--resume-epochs", type=int, default=None, help="the update's epochs (default: the library's)")
    ap.add_argument("--resume-lr", type=float, default=None, help="the update's learning rate (default: the run's)")
    ap.add_argument("--resume-weight-average", type=float, default=None,
                    help="the update's weight-average decay (default: the library's)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    events, truth = make_demo_events(n_users=args.users, n_items=args.items, seed=args.seed,
                                     shift_weeks=args.shift_weeks)
    old_ds = dataset_from_events(events[events["timestamp"] < truth.shift_start], "demo before the shift")
    new_ds = dataset_from_events(events, "demo with the shift")
    update_options = {"weight_average": args.resume_weight_average, "lr": args.resume_lr}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        old_summary, old_wall = timed(lambda: run_training_job(
            old_ds.sequences, "sasrec", {}, TrainConfig(epochs=args.epochs), root / "old", old_ds.info()))
        exclude = bool(old_summary["exclude_seen"])
        resumed_summary, resume_wall = timed(lambda: resume_training(
            root / "old", new_ds.sequences, root / "resumed", data_info=new_ds.info(), epochs=args.resume_epochs,
            train_options=update_options))
        init_summary, init_wall = timed(lambda: resume_training(  # new items at the family's init, no imprinting
            root / "old", new_ds.sequences, root / "resumed-init", data_info=new_ds.info(), new_items="init",
            epochs=args.resume_epochs, train_options=update_options))
        retrain_summary, retrain_wall = timed(lambda: run_training_job(
            new_ds.sequences, "sasrec", {}, TrainConfig(epochs=args.epochs), root / "retrained",
            new_ds.info(), exclude_seen=exclude))
        old, resumed, resumed_init, retrained = (load_run(root / name) for name in
                                                 ("old", "resumed", "resumed-init", "retrained"))
        since = last_time_of(old.config)
        data = new_ds.sequences
        rows = {"old": newest(OldCatalogueScorer(old.scorer(), old.vocab, data.vocab), data, since, exclude),
                "resumed": newest(resumed.scorer(), data, since, exclude),
                "resumed (init, no imprint)": newest(resumed_init.scorer(), data, since, exclude),
                "retrained": newest(retrained.scorer(), data, since, exclude)}
        recovery = {name: get_shift_recovery(get_what_changed(old, run, data, users=truth.shift_users),
                                             truth.shift_users, truth.shift_items)
                    for name, run in (("resumed", resumed), ("resumed (init, no imprint)", resumed_init),
                                      ("retrained", retrained))}
    for name, summary, wall in (("old", old_summary, old_wall), ("resumed", resumed_summary, resume_wall),
                                ("resumed (init, no imprint)", init_summary, init_wall),
                                ("retrained", retrain_summary, retrain_wall)):
        rows[name].update(wall_seconds=wall, train_seconds=summary["train_seconds"], epochs=summary["epochs"],
                          stopped=summary["stopped_reason"])
    gap = round(rows["retrained"]["NDCG@10"] - rows["resumed"]["NDCG@10"], 4)
    share = round(rows["resumed"]["wall_seconds"] / rows["retrained"]["wall_seconds"], 3)
    result = {"bench": "warm_start", "machine": machine_info(torch.device("cpu")), "log": {
        "users": args.users, "items": args.items, "shift_weeks": args.shift_weeks, "seed": args.seed,
        "old_events": int(len(old_ds.events)), "new_events": int(len(new_ds.events)),
        "shift_users": len(truth.shift_users), "shift_items": len(truth.shift_items)},
        "resumed_from": resumed_summary.get("resumed_from"), "runs": rows, "shift_recovery": recovery,
        "bar": {"ndcg_gap_retrained_minus_resumed": gap, "resumed_time_share": share,
                "met": bool(gap <= 0.01 and share <= 0.25)}}
    print(json.dumps(result, indent=1))
    lines = ["| run | newest-period users | NDCG@10 | HR@10 | wall s | train s | epochs |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {r['users']} | {r['NDCG@10']:.4f} | {r['HR@10']:.4f} | {r['wall_seconds']} | "
              f"{r['train_seconds']} | {r['epochs']} |" for name, r in rows.items()]
    print("\n".join(lines), file=sys.stderr)


if __name__ == "__main__":
    main()

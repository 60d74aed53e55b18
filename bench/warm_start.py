"""Warm start against a full retrain on a log that has grown (issue 17, part 4).

The demo log with a planted taste shift in its last weeks (``make_demo_events(shift_weeks=...)``: a third of the
users active then move to a new "Smart home" category whose items did not exist before). The old log is every
event before the shift. Steps, each through the library's real jobs (the same code as the CLI's ``train`` and
``train --resume``):
  0. the old run: SASRec with the defaults on the old log, for ``--epochs`` epochs;
  a. resumed: ``resume_training`` on the full log with its default budget (a fifth of the old run's epochs, rounded up)
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
    python bench/warm_start.py --users 2000 --items 800 --epochs 60 --workdir /tmp/ws2000 --reuse --resume-lr 0.002
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.train_speed import machine_info  # noqa: E402
from seqrec_core.data.dataset import dataset_from_events  # noqa: E402
from seqrec_core.data.synthetic import make_demo_events  # noqa: E402
from seqrec_core.evaluation import evaluate  # noqa: E402
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


def newest_by_group(scorer: object, data, since: int, exclude_seen: bool, truth) -> dict:  # noqa: ANN001
    """Newest-period NDCG@10 of the demo's planted groups: the users who moved to the new items, those whose
    held-out event is a planted long-range response, and the others (where a gap comes from)."""
    result = evaluate(scorer, data, "test", exclude_seen=exclude_seen)
    users = np.asarray(data.vocab.user_ids, dtype=object)[result.users]
    newest_mask = data.split("test").target_times > since  # (U,) aligned with result.users
    moved, responders = np.isin(users, list(truth.shift_users)), np.isin(users, list(truth.response_users))
    groups = {"moved to the new items": moved, "planted long-range response": responders & ~moved,
              "others": ~moved & ~responders}
    return {name: {"users": int((newest_mask & mask).sum()),
                   "NDCG@10": round(float(result.subset(newest_mask & mask).mean("NDCG@10")), 4)}
            for name, mask in groups.items()}


def timed(call):  # noqa: ANN001, ANN201
    t0 = time.perf_counter()
    out = call()
    return out, round(time.perf_counter() - t0, 1)


class Reusable:
    """Runs trained once and kept in ``root`` with their wall seconds (``walls.json``), for ``--reuse``."""

    def __init__(self, root: Path, identity: dict, reuse: bool) -> None:
        self.path = root / "walls.json"
        self.identity = identity
        stored = json.loads(self.path.read_text()) if reuse and self.path.is_file() else {}
        self.walls = stored.get("walls", {}) if stored.get("identity") == identity else {}

    def run(self, name: str, train):  # noqa: ANN001, ANN201 - () -> train JSON; returns (summary, wall seconds)
        folder = self.path.parent / name
        if name in self.walls and (folder / "config.json").is_file():
            config = json.loads((folder / "config.json").read_text())
            summary = {"exclude_seen": config["exclude_seen"], "train_seconds": config["train_seconds"],
                       "epochs": config["epochs_trained"], "best_epoch": config["best_epoch"],
                       "stopped_reason": config["stopped_reason"], "resumed_from": None}
            return summary, self.walls[name]
        shutil.rmtree(folder, ignore_errors=True)
        summary, wall = timed(train)
        self.walls[name] = wall
        self.path.write_text(json.dumps({"identity": self.identity, "walls": self.walls}))
        return summary, wall


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
    ap.add_argument("--old-keep", choices=("best", "last"), default="best",
                    help="which weights the old run keeps (and the update starts from)")
    ap.add_argument("--skip-init", action="store_true", help="leave out the update whose new items start at init")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="keep the runs here (default: a temporary folder); with --reuse, an old run and a retrain "
                         "a previous call with the same log and epochs left here are used again, so trying "
                         "another update costs only the update")
    ap.add_argument("--reuse", action="store_true", help="see --workdir")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    events, truth = make_demo_events(n_users=args.users, n_items=args.items, seed=args.seed,
                                     shift_weeks=args.shift_weeks)
    old_ds = dataset_from_events(events[events["timestamp"] < truth.shift_start], "demo before the shift")
    new_ds = dataset_from_events(events, "demo with the shift")
    update_options = {"weight_average": args.resume_weight_average, "lr": args.resume_lr}
    # What an old run and a retrain depend on: a reused pair must come from the same log, epochs and keep rule
    identity = {k: getattr(args, k) for k in ("users", "items", "shift_weeks", "epochs", "seed", "old_keep")}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        reusable = Reusable(root, identity, args.reuse)
        old_summary, old_wall = reusable.run("old", lambda: run_training_job(
            old_ds.sequences, "sasrec", {}, TrainConfig(epochs=args.epochs, keep=args.old_keep), root / "old",
            old_ds.info()))
        exclude = bool(old_summary["exclude_seen"])
        for name in ("resumed", "resumed-init"):
            shutil.rmtree(root / name, ignore_errors=True)  # the updates are what a call varies: always trained
        resumed_summary, resume_wall = timed(lambda: resume_training(
            root / "old", new_ds.sequences, root / "resumed", data_info=new_ds.info(), epochs=args.resume_epochs,
            train_options=update_options))
        init_summary, init_wall = (None, None) if args.skip_init else timed(lambda: resume_training(
            root / "old", new_ds.sequences, root / "resumed-init", data_info=new_ds.info(), new_items="init",
            epochs=args.resume_epochs, train_options=update_options))  # new items at the family's init
        retrain_summary, retrain_wall = reusable.run("retrained", lambda: run_training_job(
            new_ds.sequences, "sasrec", {}, TrainConfig(epochs=args.epochs), root / "retrained",
            new_ds.info(), exclude_seen=exclude))
        names = ["old", "resumed"] + ([] if args.skip_init else ["resumed-init"]) + ["retrained"]
        runs = {name: load_run(root / name) for name in names}
        labels = {"resumed-init": "resumed (init, no imprint)"}
        curves = {labels.get(name, name): [round(float(row["val_NDCG@10"]), 4) for row in run.history]
                  for name, run in runs.items()}  # validation NDCG@10 per epoch, each on its own log
        since = last_time_of(runs["old"].config)
        data = new_ds.sequences
        rows = {labels.get(name, name): newest(
            OldCatalogueScorer(run.scorer(), run.vocab, data.vocab) if name == "old" else run.scorer(), data, since,
            exclude) for name, run in runs.items()}
        by_group = {labels.get(name, name): newest_by_group(
            OldCatalogueScorer(run.scorer(), run.vocab, data.vocab) if name == "old" else run.scorer(), data, since,
            exclude, truth) for name, run in runs.items()}
        recovery = {labels.get(name, name): get_shift_recovery(
            get_what_changed(runs["old"], run, data, users=truth.shift_users), truth.shift_users, truth.shift_items)
            for name, run in runs.items() if name != "old"}
    for name, summary, wall in (("old", old_summary, old_wall), ("resumed", resumed_summary, resume_wall),
                                ("resumed (init, no imprint)", init_summary, init_wall),
                                ("retrained", retrain_summary, retrain_wall)):
        if summary is not None:
            rows[name].update(wall_seconds=wall, train_seconds=summary["train_seconds"], epochs=summary["epochs"],
                              best_epoch=summary.get("best_epoch"), stopped=summary["stopped_reason"])
    gap = round(rows["retrained"]["NDCG@10"] - rows["resumed"]["NDCG@10"], 4)
    share = round(rows["resumed"]["wall_seconds"] / rows["retrained"]["wall_seconds"], 3)
    result = {"bench": "warm_start", "machine": machine_info(torch.device("cpu")), "log": {
        "users": args.users, "items": args.items, "shift_weeks": args.shift_weeks, "seed": args.seed,
        "old_keep": args.old_keep, "old_events": int(len(old_ds.events)), "new_events": int(len(new_ds.events)),
        "shift_users": len(truth.shift_users), "shift_items": len(truth.shift_items)},
        "resumed_from": resumed_summary.get("resumed_from"), "runs": rows, "newest_by_group": by_group,
        "val_curves": curves, "shift_recovery": recovery,
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

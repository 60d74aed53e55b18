"""When does SASRec learn the planted pairs? One training on a planted log, measured after every epoch.

``bench/longrange_defaults.py`` measures a finished run; this prints the learning curve of one training (in
process, with the defaults a train job derives from the log unless ``--model`` / ``--train`` set options): after each
epoch, the median rank of the held-out planted responses with their trigger in the history and with it taken out,
and the share in the top 10. While the two ranks are equal the pairs are not learned (the responses rank by their
popularity); the epoch where they part is when the model starts to use the trigger.

    taskset -c 0 python bench/longrange_curve.py --log '{"n_users": 2000, "n_fillers": 500, "history_range": [40, 80],
        "plantings": 4}' --max-len 64 --train '{"batch_size": 32}' --budget 400 --threads 1
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.machine import host_info  # noqa: E402
from seqrec_core.data.planted_log import PlantedLogConfig, make_planted_events  # noqa: E402
from seqrec_core.data.sequences import build_sequences  # noqa: E402
from seqrec_core.explain.planted import planted_cases, ranks_without_trigger  # noqa: E402
from seqrec_core.jobs.train import build_job_model  # noqa: E402
from seqrec_core.training import TrainConfig, train_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", default="{}", help="planted-log options as JSON (PlantedLogConfig fields)")
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--model", default="{}", help="SASRec options as JSON (unset = derived from the log)")
    ap.add_argument("--train", default="{}", help="TrainConfig options as JSON (e.g. batch_size, lr)")
    ap.add_argument("--budget", type=float, default=600, help="seconds of training")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave as is)")
    args = ap.parse_args()
    log_options = json.loads(args.log)
    events, truth = make_planted_events(PlantedLogConfig(**log_options))
    data = build_sequences(events)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(**{"epochs": 10_000, "patience": 10_000, "max_len": args.max_len, "device": "cpu",
                         "time_budget": args.budget, **json.loads(args.train)})
    model = build_job_model(data, "sasrec", json.loads(args.model), cfg)
    print(json.dumps({"machine": host_info(), "log": log_options, "max_len": args.max_len,
                      "model": model.config.to_dict(), "train": cfg.to_dict()}, default=str), flush=True)
    started = time.perf_counter()
    run = SimpleNamespace(model=model, vocab=data.vocab, max_len=args.max_len)

    def after_epoch(event: dict) -> None:
        if event.get("event") != "epoch":
            return
        was_training = model.training
        model.eval()  # the current weights (not the weight average the run would keep)
        with torch.no_grad():
            cases = planted_cases(run, data, truth, top_k=None)
            without = ranks_without_trigger(run, data, cases)
        model.train(was_training)
        print(f"epoch {event['epoch']:3d}  {time.perf_counter() - started:6.0f} s  val NDCG@10 "
              f"{event['val_NDCG@10']:.4f}  median rank {cases['response_rank'].median():5.1f} (without the trigger "
              f"{np.median(without):5.1f})  top 10 {(cases['response_rank'] <= 10).mean():.3f}", flush=True)

    result = train_model(model, data, cfg, on_event=after_epoch)
    print(json.dumps({"batch_size": result.config.batch_size, "epochs": len(result.history)}), flush=True)


if __name__ == "__main__":
    main()

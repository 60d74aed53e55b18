"""Runs the Compare tests (core and app) share, built once per session into the session's runs folder:
a second tiny SASRec unlike ``tiny_run`` and a tiny time-aware gBCE run. Importable from every test folder
because pytest puts ``tests/`` (the folder of the root conftest) on sys.path."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from analysed import analyse  # tests/analysed.py

SECOND_RUN = "tiny-sasrec-learned"
TIMED_RUN = "tiny-sasrec-timed"
ANALYSED_PARTS = ("evaluation", "explanations", "patterns_model")  # what the Compare page reads of each run


def train_second_run(runs_dir: Path, dataset) -> Path:  # noqa: ANN001 - Dataset
    """A second tiny run unlike tiny_run: learned positions, a shorter window (12), another seed, 1 epoch."""
    from seqrec_core.jobs import run_training_job
    from seqrec_core.training import TrainConfig

    out = runs_dir / SECOND_RUN
    if (out / "config.json").is_file():
        return out
    cfg = TrainConfig(epochs=1, batch_size=64, max_len=12, device="cpu", seed=1)
    run_training_job(dataset.sequences, "sasrec", {"hidden_size": 16, "num_layers": 1, "num_heads": 1,
                                                   "positions": "learned"}, cfg, out, dataset.info())
    return analyse(out, dataset, parts=ANALYSED_PARTS)


def train_timed_run(runs_dir: Path, dataset) -> Path:  # noqa: ANN001 - Dataset
    """A tiny time-aware run (hour, weekday and gap embeddings of every event and of the query time) trained with
    the gBCE loss: a scorer that must be given times, and options the Compare page has to name."""
    from seqrec_core.jobs import run_training_job
    from seqrec_core.training import TrainConfig

    out = runs_dir / TIMED_RUN
    if (out / "config.json").is_file():
        return out
    cfg = TrainConfig(epochs=2, batch_size=64, max_len=16, device="cpu", seed=2, lr=5e-3)
    run_training_job(dataset.sequences, "sasrec", {"hidden_size": 16, "num_layers": 1, "num_heads": 1,
                                                   "time_features": True, "loss": "gbce", "num_negatives": 16},
                     cfg, out, dataset.info())
    return analyse(out, dataset, parts=ANALYSED_PARTS)


def long_user(dataset) -> str:  # noqa: ANN001
    seqs = dataset.sequences
    return seqs.vocab.user_ids[int(np.argmax([len(s) for s in seqs.sequences]))]

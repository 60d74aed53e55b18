"""Training: how to train (:mod:`.config`), the trainer every neural family shares (:mod:`.trainer`), data-parallel
training under torchrun (:mod:`.distributed`) and the moving average of the weights (:mod:`.weight_average`).

``from seqrec_core.training import TrainConfig, train_model`` is the public surface. The trainer's names are
resolved on first use (PEP 562), so importing :mod:`seqrec_core.training.config` alone (as the run checks, the job
spec and the pages do) pulls in none of the trainer, DDP or the models.
"""
from __future__ import annotations

import importlib

from seqrec_core.training.config import TrainConfig, TrainingCancelled, eval_batch_size, resolve_device, seed_everything

_FROM_TRAINER = ("TrainResult", "train_model", "train_step")
__all__ = ["TrainConfig", "TrainResult", "TrainingCancelled", "eval_batch_size", "resolve_device", "seed_everything",
           "train_model", "train_step"]


def __getattr__(name: str) -> object:
    if name in _FROM_TRAINER:
        return getattr(importlib.import_module("seqrec_core.training.trainer"), name)
    if name in ("distributed", "trainer", "weight_average"):
        return importlib.import_module(f"seqrec_core.training.{name}")
    raise AttributeError(f"module 'seqrec_core.training' has no attribute {name!r}")

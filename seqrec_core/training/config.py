"""How to train, and on which device: the part of training that everything else may import.

Why a module of its own: the run checks (validating a stored ``train`` config), the job spec, the CLI and the
dashboard need :class:`TrainConfig` and device resolution, but not the trainer, DDP or the weight average. Kept
free of those imports, it breaks the circle training -> distributed -> jobs -> runs -> run_checks -> training.
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields, replace
from typing import ClassVar

import numpy as np
import torch

from seqrec_core.errors import InputError

PRECISIONS = ("auto", "fp32", "bf16")
MAX_SEED = 2**32 - 1  # numpy's seed range (torch and Python take it too); a job spec's seed is checked against it


@dataclass(frozen=True)
class TrainConfig:
    """How to train (not what to train: that is the family's config)."""

    epochs: int = 200
    # Windows per step; None = from the log (auto_batch_size): about AUTO_BATCH_TARGETS trained targets a step,
    # and fewer windows on dense logs for SASRec (training.from_log.batch_cap_for: 8 on the demo).
    batch_size: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.0
    max_len: int = 50
    time_budget: float | None = None  # seconds for the whole training incl. validation; best checkpoint kept
    # Validations without NDCG@10 improvement before stopping; None = from the log (training.from_log.patience_for:
    # 10 on sparse logs, 40 on dense ones for SASRec). 10, not 5, on Beauty: with the weight average and item
    # dropout the validation curve creeps up for tens of epochs in steps smaller than its noise, and 5 stopped one
    # Beauty seed at epoch 22 of ~60 (test NDCG@10 0.0520 instead of 0.0551).
    patience: int | None = None
    device: str = "auto"
    seed: int = 42
    amp: bool = True  # bf16 (or fp16 + GradScaler) autocast on CUDA; off = fp32 there
    # Arithmetic of the model body on CPU: "auto" = bf16 autocast where the CPU multiplies bf16 natively (AMX or
    # AVX512-BF16), else fp32; "fp32"; "bf16". Weights, optimiser state and the loss kernel stay fp32 (see
    # resolve_precision). On CUDA ``amp`` decides, and "fp32" here turns it off.
    precision: str = "auto"
    eval_every: int = 1  # validate every this many epochs
    val_users: int | None = None  # validate on a fixed-seed subsample of users (speed); None = all
    # Which weights the run keeps: "best" validation NDCG@10 (default) or the "last" validated epoch. "last" is for
    # slow-to-learn structure that overall NDCG barely moves with (the demo's long-range pairs take 30-60 epochs).
    keep: str = "best"
    # Validate and keep an exponential moving average of the weights (decay per step); 0 = off. On Beauty it
    # lifted test NDCG@10 on each of 3 seeds (mean 0.0511 -> 0.0520; bench/RESULTS.md) and steadies early stopping.
    weight_average: float = 0.999

    # What a stored training config that lacks a field meant when it was saved (runs from before the field).
    STORED_DEFAULTS: ClassVar[dict[str, object]] = {"weight_average": 0.0}

    def __post_init__(self) -> None:
        for name, low in (("epochs", 1), ("batch_size", 1), ("max_len", 1), ("patience", 1), ("eval_every", 1)):
            value = getattr(self, name)
            if name in ("batch_size", "patience") and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"training option {name}={value!r} is invalid; use a whole number >= {low}")
        if self.val_users is not None and (isinstance(self.val_users, bool) or not isinstance(self.val_users, int)
                                           or self.val_users < 1):
            raise InputError(f"val_users={self.val_users!r} is invalid; use a whole number >= 1 or leave it unset")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise InputError(f"training option {name}={value!r} is invalid; use a number >= 0")
        if self.lr <= 0:
            raise InputError(f"learning rate {self.lr} must be > 0, e.g. 1e-3")
        if self.time_budget is not None and (isinstance(self.time_budget, bool) or not
                                             isinstance(self.time_budget, (int, float)) or not self.time_budget > 0
                                             or not math.isfinite(self.time_budget)):
            raise InputError(f"time budget {self.time_budget!r} must be a positive number of seconds (none = no limit)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"seed={self.seed!r} is invalid; use a whole number from 0 to {MAX_SEED:,}")
        if (isinstance(self.weight_average, bool) or not isinstance(self.weight_average, (int, float))
                or not 0 <= self.weight_average < 1):
            raise InputError(f"weight_average={self.weight_average!r} is invalid; use a decay in [0, 1), e.g. 0.999, "
                             "or 0 for off")
        if self.keep not in ("best", "last"):
            raise InputError(f"keep={self.keep!r} is not one of best, last")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision={self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not str(self.device).startswith("cuda:"):
            raise InputError(f"device '{self.device}' is not one of auto, cpu, cuda, mps")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: object, where: str = "training options") -> TrainConfig:
        """A config from JSON (a job spec, a run's config); an unknown field or a wrong value is one InputError."""
        if not isinstance(values, dict):
            raise InputError(f"{where} must be a JSON object of training options")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"{where}: unknown training option(s) {', '.join(map(str, unknown[:5]))}; "
                             f"known: {', '.join(sorted(known))}")
        return cls(**values)


# A step of the batch size measured best on Beauty (128 windows) trains ~900 targets: its histories are short
# (mean 8.9 events). On logs with long histories 128 windows are 10-15x as many targets a step, so an epoch has
# that many times fewer optimiser steps, and structure that needs many small steps to find (trigger -> response
# pairs 20-40 events apart) is not learned in the same time (issue 15; bench/RESULTS.md). Auto keeps the
# targets per step near Beauty's instead, within 32-128 windows.
AUTO_BATCH_TARGETS = 1024
AUTO_BATCH_RANGE = (32, 128)


def auto_batch_size(targets_per_window: float) -> int:
    """Windows per step so that a step trains about AUTO_BATCH_TARGETS targets: a power of two in
    AUTO_BATCH_RANGE (Beauty, ~7 targets a window: 128; the demo, ~40: 32)."""
    low, high = AUTO_BATCH_RANGE
    if not targets_per_window > 0:
        return high
    size = 2 ** round(math.log2(AUTO_BATCH_TARGETS / targets_per_window))
    return int(min(high, max(low, size)))


def resolve_batch_size(cfg: TrainConfig, n_windows: int, n_targets: int, cap: int | None = None) -> TrainConfig:
    """``cfg`` with an unset batch size chosen from the training windows (:func:`auto_batch_size`), at most
    ``cap`` windows (the log's density decides it for some families: ``training.from_log.batch_cap_from_log``)."""
    if cfg.batch_size is not None:
        return cfg
    size = auto_batch_size(n_targets / max(n_windows, 1))
    return replace(cfg, batch_size=size if cap is None else min(size, int(cap)))


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (oneDNN's own check: AVX512-BF16 or AMX). Without it a bf16 matrix
    product is emulated: measured on the 2-core AMD EPYC (AVX2) 0.3 GFLOP/s against 72 in fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(device: torch.device, cfg: TrainConfig) -> str:
    """What the model body computes in on ``device``: "fp32", "bf16" or "fp16" (CUDA without bf16)."""
    if device.type == "cuda":
        if not cfg.amp or cfg.precision == "fp32":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        if cfg.precision == "auto":
            return "bf16" if cpu_has_fast_bf16() else "fp32"
        return cfg.precision
    return "fp32"  # MPS: autocast there is not worth it for models this small


class TrainingCancelled(Exception):
    """Raised when a cancel arrives before any validation: there is no checkpoint worth keeping."""


def resolve_device(name: str = "auto") -> torch.device:
    """auto = CUDA if present, else Apple MPS, else CPU; asking for an absent accelerator is bad input."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device '{name}' was asked for but this machine has no usable CUDA GPU; "
                             "use --device cpu or auto")
        return torch.device(name)
    if name == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise InputError("device 'mps' was asked for but Apple Metal is not available here; "
                             "use --device cpu or auto")
        return torch.device("mps")
    raise InputError(f"device '{name}' is not one of auto, cpu, cuda, mps")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) so model init, dropout and batch order repeat."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def eval_batch_size(device: torch.device) -> int:
    """Users ranked per batch: on a CPU, (B, n_items) score blocks above ~256 rows page-fault more than they save."""
    return 256 if device.type == "cpu" else 1024

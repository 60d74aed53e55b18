"""One trainer for every neural family: device choice, AMP, batching, early stopping, time budget, cancel.

A model only has to implement ``forward(input_ids, targets) -> loss`` and ``score(input_ids)``; the trainer
feeds it left-padded next-item windows (see :mod:`seqrec_core.models.neural`) and early-stops on validation
NDCG@10 computed by :func:`seqrec_core.evaluation.evaluate` with full ranking, the same metric reported later.
Progress goes to an ``on_event`` callback as small JSON-able dicts, which the job appends to progress.jsonl.
Batches stream from the flat event arrays (:class:`seqrec_core.models.batches.WindowSource`), and under torchrun
the same loop trains data-parallel (:mod:`seqrec_core.training.distributed`).
"""
from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import torch
from torch import nn

from seqrec_core.cpu_threads import ThreadGovernor
from seqrec_core.data.sequences import SequenceData
from seqrec_core.errors import InputError
from seqrec_core.models.batches import batch_order, build_window_source
from seqrec_core.models.neural import NeuralScorer
from seqrec_core.models.time_features import require_time
from seqrec_core.training import distributed
from seqrec_core.training.config import (
    TrainConfig,
    TrainingCancelled,
    cpu_has_fast_bf16,
    eval_batch_size,
    resolve_batch_size,
    resolve_device,
    resolve_precision,
    seed_everything,
)
from seqrec_core.training.from_log import batch_cap_from_log, patience_from_log
from seqrec_core.training.weight_average import WeightAverage

log = logging.getLogger(__name__)

StopReason = Literal["converged", "max_epochs", "time_budget", "cancelled"]
STEP_EVENT_SECONDS = 0.5  # at most two step events a second: the progress file stays small


@dataclass
class TrainResult:
    """The trained model (best validation weights loaded) and how training went."""

    model: nn.Module
    history: list[dict]  # per validated epoch: epoch, train_loss, val_NDCG@10, val_HR@10, seconds (cumulative)
    best_epoch: int
    best_val: float  # validation NDCG@10 of the kept weights
    train_seconds: float
    device: str
    stopped_reason: StopReason
    best_val_metrics: dict = field(default_factory=dict)
    config: TrainConfig | None = None  # what trained it, with the options chosen from the log filled in


def _autocast(device: torch.device, precision: str) -> tuple[Callable[[], contextlib.AbstractContextManager], bool]:
    """The autocast context for the forward pass (``precision`` from resolve_precision) and whether fp16 (needing
    a GradScaler) is used. Weights and optimiser state stay fp32 (the master copy); only the body's products run in
    the lower precision, and the CPU loss kernel computes in fp32 whatever the context."""
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in dtypes:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(dtypes)} (see resolve_precision)")
    dtype = dtypes[precision]
    if dtype is None:
        return contextlib.nullcontext, False
    return (lambda: torch.autocast(device.type, dtype=dtype)), dtype == torch.float16


def _adamw(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with the fused kernel where torch has one (4x faster steps on CPU), else the default loop."""
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               autocast: Callable[[], contextlib.AbstractContextManager], inputs: torch.Tensor,
               targets: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
    """One optimiser step on a batch already on the device; returns the (undetached) loss.
    ``times`` (B, W + 1) only for a time-aware model.

    Shared with bench/train_speed.py so the benchmark times exactly what training runs."""
    with autocast():
        loss = model(inputs, targets) if times is None else model(inputs, targets, times=times)  # scalar
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss


def train_model(model: nn.Module, data: SequenceData, cfg: TrainConfig,
                on_event: Callable[[dict], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train ``model`` on every user's training events; early-stop on validation NDCG@10 (full ranking).

    Stops on: patience validations without improvement ("converged"), ``cfg.epochs`` ("max_epochs"), the time
    budget ("time_budget"; the last validation is fitted inside the budget) or ``should_stop()`` turning true
    between steps ("cancelled"). The best validated weights are loaded into the model before returning. A
    cancel before the first validation raises :class:`TrainingCancelled`; an epoch whose mean loss is not finite
    (diverged: NaN or inf weights) raises InputError, so no such model is ever saved. With ``cfg.weight_average`` (the
    default) what is validated, kept and returned is the moving average of the weights, not the last step's.

    Under torchrun (WORLD_SIZE set) every rank calls this with the same data and config: the model is wrapped in
    DistributedDataParallel, each rank trains its share of each epoch's batches, rank 0 validates and decides
    (cancel: any rank), and every rank returns the same weights. Only rank 0 calls ``on_event``; the other
    ranks' results have an empty history.
    """
    from seqrec_core.evaluation import evaluate  # deferred: evaluation pulls in pandas-heavy helpers

    emit = on_event or (lambda _event: None)
    stop_requested = should_stop or (lambda: False)
    started = time.perf_counter()
    ctx = distributed.init_from_env(cfg.device)  # None unless launched by torchrun
    main = ctx is None or ctx.is_main
    if not main:
        emit = lambda _event: None  # noqa: E731 - only rank 0 reports
    device = resolve_device(cfg.device) if ctx is None else ctx.device
    governor = ThreadGovernor()  # threads = the cores other processes leave free, re-measured as it trains
    governor.start()
    seed_everything(cfg.seed)
    max_len = int(getattr(getattr(model, "config", None), "max_len", cfg.max_len))
    if max_len != cfg.max_len:
        log.warning("model max_len %d differs from training max_len %d; using the model's", max_len, cfg.max_len)
    data.check_trainable()
    train_seqs = [data.train_sequence(u) for u in range(data.n_users)]
    uses_time = getattr(model, "uses_time", False)
    if uses_time:  # train_sequence is a prefix of the user's events: the source reads the same prefix of times
        require_time(data)
    source = build_window_source(train_seqs, max_len, times=data.times if uses_time else None)
    lengths = source.lengths
    family = str(getattr(getattr(model, "config", None), "family", ""))
    cfg = resolve_batch_size(cfg, len(source), source.n_targets, cap=batch_cap_from_log(family, data))
    if cfg.patience is None:
        cfg = replace(cfg, patience=patience_from_log(family, data))
    counts = source.items.bincount(minlength=data.vocab.n_items + 1)  # (n_items + 1,) training events per item
    if hasattr(model, "set_item_counts"):
        model.set_item_counts(torch.as_tensor(counts[1:], dtype=torch.float32))
    model.to(device)
    if hasattr(getattr(model, "item_emb", None), "hold_untrained"):  # item text: unseen items keep their title
        untrained = torch.as_tensor(counts == 0)  # (n_items + 1,)
        untrained[0] = False  # padding
        out_emb = getattr(model, "out_emb", None)  # an untied output table scores by title too (output_weights)
        model.item_emb.hold_untrained(untrained, *([out_emb.weight] if out_emb is not None else []))
    net = model  # what the training step calls: the model, or its DDP wrapper
    if ctx is not None:
        net = distributed.wrap_model(model, ctx)  # rank 0's initial weights on every rank
        torch.manual_seed(cfg.seed + ctx.rank)  # different dropout / negatives per rank, same weights
    optimizer = _adamw(model, cfg)
    average = WeightAverage(model, cfg.weight_average) if cfg.weight_average else None
    averaged = average.swapped_in if average is not None else contextlib.nullcontext
    precision = resolve_precision(device, cfg)
    if device.type == "cpu" and precision == "bf16" and not cpu_has_fast_bf16():
        log.warning("bf16 was asked for, but this CPU has no native bf16 products (no AVX512-BF16 or AMX): expect "
                    "training to be far slower than in fp32; use --precision auto")
    autocast, fp16 = _autocast(device, precision)
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)
    rng = np.random.default_rng(cfg.seed)
    pin = device.type == "cuda"
    steps_per_epoch = len(batch_order(lengths, cfg.batch_size, np.random.default_rng(0)))
    if ctx is not None:
        steps_per_epoch = -(-steps_per_epoch // ctx.world_size)  # each rank's share
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    start_event = {"event": "start", "device": str(device), "n_params": int(n_params), "epochs": cfg.epochs,
                   "steps_per_epoch": steps_per_epoch, "train_windows": int(len(source)),
                   "train_targets": source.n_targets, "time_budget": cfg.time_budget, "batch_size": cfg.batch_size,
                   "cpu_threads": governor.threads, "precision": precision}
    if ctx is not None:
        start_event["world_size"] = ctx.world_size
    emit(start_event)
    if main:
        log.info("training on %s (%s, %d CPU threads): %d parameters, %d windows, batch %d, %d steps/epoch", device,
                 precision, governor.threads, n_params, len(source), cfg.batch_size, steps_per_epoch)

    eval_batch = eval_batch_size(device)
    scorer = NeuralScorer(model, max_len, device, batch_size=eval_batch, output="torch")
    history: list[dict] = []
    best = {"val": -math.inf, "epoch": 0, "state": None, "metrics": {}}
    val_seconds = 0.0  # how long the last validation took: reserved at the end of a time budget
    stale = 0
    best_seen = -math.inf  # best validation so far (patience counts from it, whatever cfg.keep)
    reason: StopReason = "max_epochs"
    last_step_event = 0.0

    def elapsed() -> float:
        return time.perf_counter() - started

    def out_of_time() -> bool:
        return cfg.time_budget is not None and elapsed() + val_seconds * 1.1 >= cfg.time_budget

    def eta(epoch_done: float) -> float | None:
        per_epoch = elapsed() / max(epoch_done, 1e-9)
        est = per_epoch * (cfg.epochs - epoch_done)
        if cfg.time_budget is not None:
            est = min(est, max(0.0, cfg.time_budget - elapsed()))
        return round(est, 1)

    def check_stop() -> StopReason | None:
        """Why to stop before the next step, if at all; under DDP the same answer on every rank."""
        cancel = stop_requested()
        late = not cancel and main and out_of_time()
        if ctx is not None:
            cancel, late = distributed.any_rank(ctx, [cancel, late])  # any rank's cancel, rank 0's clock
        return "cancelled" if cancel else "time_budget" if late else None

    def validate(epoch: int, train_loss: float) -> None:
        """Rank 0 validates and decides; under DDP the other ranks follow its decision (keep these weights?
        how many validations without gain?) and snapshot their own, identical, weights."""
        nonlocal stale
        with averaged():  # validate and snapshot the averaged weights, if averaging
            if main:
                keep = _validate_main(epoch, train_loss)
            if ctx is not None:
                keep, stale, val = distributed.from_main(ctx, [keep if main else 0, stale, best["val"] if main else 0])
                stale = int(stale)
                if not main and keep:
                    best.update(val=val, epoch=epoch,
                                state={k: v.detach().clone() for k, v in model.state_dict().items()})

    def _validate_main(epoch: int, train_loss: float) -> bool:
        nonlocal val_seconds, stale, best_seen
        t0 = time.perf_counter()
        result = evaluate(scorer, data, "val", batch_size=eval_batch, max_users=cfg.val_users, seed=cfg.seed,
                          progress=lambda _done, _total: governor.tick())
        val_seconds = time.perf_counter() - t0
        ndcg = float(result.metrics["NDCG@10"])
        row = {"epoch": epoch, "train_loss": round(train_loss, 6), "val_NDCG@10": ndcg,
               "val_HR@10": float(result.metrics["HR@10"]), "seconds": round(elapsed(), 3)}
        history.append(row)
        improved = ndcg > best_seen
        best_seen = max(best_seen, ndcg)
        stale = 0 if improved else stale + 1
        keep = improved or cfg.keep == "last"
        if keep:
            best.update(val=ndcg, epoch=epoch, metrics=dict(result.metrics),
                        state={k: v.detach().clone() for k, v in model.state_dict().items()})
        emit({"event": "epoch", **row, "best_epoch": best["epoch"], "elapsed": round(elapsed(), 3),
              "eta_seconds": eta(epoch)})
        log.info("epoch %d: loss %.4f val NDCG@10 %.4f (best %.4f @ %d)", epoch, train_loss, ndcg, best["val"],
                 best["epoch"])
        return keep

    epoch = 0
    pending: tuple[int, float] | None = None  # (epoch, loss) trained but not yet validated
    stopped = False
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        loss_sum = torch.zeros((), device=device)
        n_steps = 0
        batches = batch_order(lengths, cfg.batch_size, rng)  # the same order on every rank (same seed)
        if ctx is not None:
            batches = distributed.shard_batches(batches, ctx.rank, ctx.world_size)
        for step, batch in enumerate(source.iterate(batches), start=1):
            inputs, targets = batch[0], batch[1]
            times = batch[2] if len(batch) > 2 else None
            why = check_stop()
            if why is not None:
                reason, stopped = why, True
                break
            if pin:
                inputs, targets = inputs.pin_memory(), targets.pin_memory()
            inputs = inputs.to(device, non_blocking=True)  # (B, W)
            targets = targets.to(device, non_blocking=True)  # (B, W)
            if times is not None:
                times = times.to(device, non_blocking=True)  # (B, W + 1)
            governor.tick()
            loss = train_step(net, optimizer, scaler, autocast, inputs, targets, times)
            if average is not None:
                average.update()
            loss_sum += loss.detach().float()
            n_steps += 1
            now = elapsed()
            if now - last_step_event >= STEP_EVENT_SECONDS or step == len(batches):
                last_step_event = now
                emit({"event": "step", "epoch": epoch, "step": step, "steps": len(batches),
                      "loss": round(float(loss.detach().float().cpu()), 6), "elapsed": round(now, 3),
                      "eta_seconds": eta(epoch - 1 + step / len(batches))})
        if ctx is None:
            train_loss = float(loss_sum.cpu()) / max(n_steps, 1)
        else:  # mean over every rank's steps
            total, n_steps = distributed.sum_over_ranks(ctx, [float(loss_sum.cpu()), n_steps])
            train_loss, n_steps = total / max(n_steps, 1), int(n_steps)
        if not math.isfinite(train_loss):  # diverged: its weights are NaN or inf and would rank nothing (every rank)
            raise InputError(f"training diverged at epoch {epoch}: the mean loss is {train_loss} instead of a "
                             f"finite number, so no model is kept; lower the learning rate (now {cfg.lr:g}; the "
                             "default is 0.001)")
        if stopped:
            if n_steps:
                pending = (epoch, train_loss)
            break
        pending = (epoch, train_loss)
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            validate(epoch, train_loss)
            pending = None
            if stale >= cfg.patience:
                reason = "converged"
                break
    if pending is not None and not (reason == "cancelled" and best["state"] is not None):
        if reason == "cancelled":
            raise TrainingCancelled("training was cancelled before the first validation; nothing to keep")
        validate(*pending)  # the partial (or unvalidated) last epoch may be the best one
    if best["state"] is None:
        raise TrainingCancelled("training stopped before any validation; nothing to keep")
    model.load_state_dict(best["state"])
    model.eval()
    seconds = elapsed()
    if main:
        log.info("training stopped (%s) after %.1f s; best epoch %d val NDCG@10 %.4f", reason, seconds,
                 best["epoch"], best["val"])
    return TrainResult(model=model, history=history, best_epoch=int(best["epoch"]), best_val=float(best["val"]),
                       train_seconds=seconds, device=str(device), stopped_reason=reason,
                       best_val_metrics=best["metrics"], config=cfg)

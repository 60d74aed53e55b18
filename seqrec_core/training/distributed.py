"""Multi-process data-parallel training (torchrun / DistributedDataParallel), CPU (gloo) or CUDA (nccl).

``python -m torch.distributed.run --nproc-per-node N -m seqrec_core train ...`` starts N copies of the CLI with
WORLD_SIZE / RANK / LOCAL_RANK in their environment. Every rank loads the same log, builds the same batch order
from the same seed and trains on its share (batches r::N); DDP averages the gradients, so all ranks hold the same
weights after every step. Decisions that must not diverge (stop on cancel or time budget, keep this checkpoint,
converged) are taken on rank 0 (cancel: on any rank) and shared through small host-side collectives on a gloo
group, so no rank ever waits in a collective the others skipped. Only rank 0 validates, reports progress, saves
the run and prints the CLI's JSON.

Without WORLD_SIZE in the environment nothing here touches ``torch.distributed``: single-process training is
exactly what it was.
"""
from __future__ import annotations

import datetime
import inspect
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from seqrec_core.errors import InputError

log = logging.getLogger(__name__)

# Workers wait in a host-side collective while rank 0 validates; full-ranking validation of a large catalogue can
# take minutes, so the control group's timeout is generous (a crashed rank is noticed by torchrun long before).
CONTROL_TIMEOUT = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job and the device it trains on."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str  # "nccl" (CUDA) or "gloo" (CPU)
    control: Any = None  # gloo process group for host-side decisions; None = the default group (already gloo)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_CONTEXT: DistContext | None = None


def launched_distributed() -> bool:
    """True when a launcher (torchrun) started this process as one rank of a job (WORLD_SIZE is set)."""
    return "WORLD_SIZE" in os.environ


def env_rank() -> int:
    """This process's rank from the environment (0 when not launched distributed); reads no process group."""
    return _env_int("RANK", 0) if launched_distributed() else 0


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise InputError(f"environment variable {name}={text!r} is not a whole number; start the job with "
                         "torchrun (python -m torch.distributed.run), which sets it") from None


def _device_for(name: str, local_rank: int) -> torch.device:
    """One device per rank: cuda:LOCAL_RANK when CUDA is asked for (or auto and present), else the CPU."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if name == "auto" or name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device '{name}' was asked for but this machine has no usable CUDA GPU; use --device "
                             "cpu or auto")
        if local_rank >= torch.cuda.device_count():
            raise InputError(f"LOCAL_RANK {local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                             "start at most that many processes per node (--nproc-per-node)")
        if name.startswith("cuda:"):
            log.warning("device %s ignored under torchrun: rank %d trains on cuda:%d", name, local_rank, local_rank)
        return torch.device("cuda", local_rank)
    raise InputError(f"device '{name}' cannot train with several processes; use --device cpu, cuda or auto")


def init_from_env(device: str = "auto") -> DistContext | None:
    """Join the job torchrun started (once per process; later calls return the same context).

    None without WORLD_SIZE in the environment (then torch.distributed is never touched). Initialises the default
    process group from the env:// rendezvous (MASTER_ADDR/MASTER_PORT) with nccl on CUDA, gloo on CPU; on CUDA
    the rank's device is cuda:LOCAL_RANK and becomes the current device.
    """
    global _CONTEXT
    if not launched_distributed():
        return None
    if _CONTEXT is not None:
        return _CONTEXT
    world, rank = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world or local_rank < 0:
        raise InputError(f"RANK {rank} / WORLD_SIZE {world} / LOCAL_RANK {local_rank} are inconsistent; start the "
                         "job with torchrun, which sets them")
    import torch.distributed as dist

    if not dist.is_available():
        raise InputError("this torch build has no torch.distributed; train with a single process")
    dev = _device_for(device, local_rank)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        # On CPU the default group also carries the control collectives (waits through rank 0's validation);
        # on CUDA it carries only gradients and keeps nccl's default timeout.
        kwargs = {"device_id": dev} if dev.type == "cuda" else {"timeout": CONTROL_TIMEOUT}
        dist.init_process_group(backend=backend, **kwargs)
    control = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT) if backend != "gloo" else None
    _CONTEXT = DistContext(rank=dist.get_rank(), local_rank=local_rank, world_size=dist.get_world_size(),
                           device=dev, backend=backend, control=control)
    log.info("rank %d of %d on %s (%s)", _CONTEXT.rank, _CONTEXT.world_size, dev, backend)
    return _CONTEXT


def shutdown() -> None:
    """Leave the process group (no-op when none was joined); call once a rank's share of the work is done."""
    global _CONTEXT
    if _CONTEXT is None:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    _CONTEXT = None


def wrap_model(model: nn.Module, ctx: DistContext) -> nn.Module:
    """DistributedDataParallel around a model already on ``ctx.device``; rank 0's weights are copied to all ranks.

    Buffers are not re-broadcast every step: ours (item counts, text vectors, rotary tables) are equal on every
    rank by construction, and there is no batch norm."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # torch >= 2.13 names the option forward_sync_buffers (broadcast_buffers warns); older torch has only the latter
    no_buffer_sync = ({"forward_sync_buffers": False}
                      if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                      else {"broadcast_buffers": False})
    return DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None, **no_buffer_sync)


def shard_batches(batches: Sequence[Any], rank: int, world_size: int) -> list[Any]:
    """Rank ``rank``'s share of one epoch's batch list: batches r, r + N, ...; every rank gets the same number.

    The list is first padded by wrapping around to a multiple of N (as DistributedSampler pads), so each step
    has a batch on every rank, a rank never waits for a gradient that will not come, and every window is
    still trained each epoch."""
    if world_size <= 1:
        return list(batches)
    if not batches:
        return []
    total = -(-len(batches) // world_size) * world_size
    padded = [batches[i % len(batches)] for i in range(total)]
    return padded[rank::world_size]


def _collective(ctx: DistContext, values: Sequence[float], op: str) -> list[float]:
    import torch.distributed as dist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64)  # (K,) on the CPU: a gloo collective
    if op == "broadcast":
        dist.broadcast(t, src=0, group=ctx.control)
    else:
        dist.all_reduce(t, op={"max": dist.ReduceOp.MAX, "sum": dist.ReduceOp.SUM}[op], group=ctx.control)
    return t.tolist()


def from_main(ctx: DistContext, values: Sequence[float]) -> list[float]:
    """Rank 0's values on every rank (the others' inputs are ignored)."""
    return _collective(ctx, values, "broadcast")


def any_rank(ctx: DistContext, flags: Sequence[bool]) -> list[bool]:
    """Each flag true on every rank when it is true on any rank."""
    return [v > 0 for v in _collective(ctx, [1.0 if f else 0.0 for f in flags], "max")]


def sum_over_ranks(ctx: DistContext, values: Sequence[float]) -> list[float]:
    return _collective(ctx, values, "sum")

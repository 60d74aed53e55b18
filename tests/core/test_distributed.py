"""Data-parallel training as two gloo processes on the CPU: the same code path torchrun runs on GPUs (nccl).

One pair of processes (spawned once for the module, ~10 s) checks that one DDP step on 2 ranks x b windows moves
the weights exactly as one single-process step on the 2b windows, then runs the CLI's ``train`` on both ranks
and records each rank's final weights; the assertions run here in the parent.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqrec_core.data import build_sequences
from seqrec_core.models import build_model
from seqrec_core.models.batches import build_window_source
from seqrec_core.training import TrainConfig, distributed, train_model, train_step

MAX_LEN = 8
HALF_BATCH = 6  # windows per rank in the one-step check; the union batch has twice as many
FAMILY = "gru4rec"  # no transformers import in the spawned ranks (seconds each); the DDP path is the same
TINY = {"hidden_size": 16, "num_layers": 1, "max_len": MAX_LEN, "dropout": 0.0}
SPAWN_TIMEOUT = 120  # seconds: a hung collective fails the test instead of hanging the suite


def equal_length_log(n_users: int = 2 * HALF_BATCH, seed: int = 0):
    """Every user has exactly one full training window (max_len + 1 events) and no masked targets, so each rank's
    mean loss has as many terms as the other's and their average is the union batch's mean."""
    rng = np.random.default_rng(seed)
    n = MAX_LEN + 1 + 2  # + validation and test events
    rows = [(f"u{u:02d}", f"i{int(i):02d}", t) for u in range(n_users) for t, i in enumerate(rng.integers(0, 20, n))]
    return build_sequences(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


def one_step_batches(data, rank: int | None):
    """(inputs, targets) of rank ``rank``'s half of the first 2b windows, or of all 2b (rank None)."""
    source = build_window_source([data.train_sequence(u) for u in range(data.n_users)], MAX_LEN)
    assert (source.lengths == MAX_LEN + 1).all() and (source.masked == 0).all()
    idx = np.arange(2 * HALF_BATCH) if rank is None else np.arange(rank * HALF_BATCH, (rank + 1) * HALF_BATCH)
    return next(source.iterate([idx]))


def sgd_step(model: torch.nn.Module, net: torch.nn.Module, batch) -> dict[str, torch.Tensor]:
    """One train_step with plain SGD (lr 1: the update is minus the gradient, so a wrong average would show;
    Adam's first step is nearly sign(gradient) and would hide it)."""
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    train_step(net, opt, torch.amp.GradScaler("cuda", enabled=False), contextlib.nullcontext, batch[0], batch[1])
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _rank_main(rank: int, port: int, out: str, data_path: str) -> None:
    """Body of each spawned rank (module level so the spawn start method can import it)."""
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2", "RANK": str(rank),
                       "LOCAL_RANK": str(rank), "OMP_NUM_THREADS": "1"})
    torch.set_num_threads(1)
    import seqrec_core.jobs.train as jobs
    import seqrec_core.training as training
    from seqrec_core import cli

    ctx = distributed.init_from_env("cpu")
    assert ctx is not None and ctx.rank == rank and ctx.world_size == 2 and ctx.backend == "gloo"
    data = equal_length_log()
    torch.manual_seed(rank)  # different initial weights per rank: DDP must copy rank 0's
    model = build_model(FAMILY, data.vocab.n_items, **TINY)
    net = distributed.wrap_model(model, ctx)
    torch.save(sgd_step(model, net, one_step_batches(data, rank)), f"{out}/step_rank{rank}.pt")

    recorded = training.train_model

    def record_final_weights(*args, **kwargs):  # the CLI keeps rank 1's model to itself: save it for the parent
        result = recorded(*args, **kwargs)
        torch.save(result.model.state_dict(), f"{out}/final_rank{rank}.pt")
        return result

    training.train_model = jobs.train_model = record_final_weights
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["train", "--data", data_path, "--model", "gru4rec", "--out", f"{out}/runs/ddp",
                         "--epochs", "2", "--max-len", "10", "--batch-size", "16", "--hidden-size", "16",
                         "--num-layers", "1", "--device", "cpu", "--progress", f"{out}/progress_rank{rank}.jsonl"])
    Path(f"{out}/stdout_rank{rank}.txt").write_text(stdout.getvalue())
    assert code == 0, f"rank {rank} exited {code}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch.multiprocessing as mp

    from seqrec_core.data.synthetic import make_demo_events

    out = tmp_path_factory.mktemp("ddp")
    events, _ = make_demo_events(n_users=60, seed=5)
    events.to_parquet(out / "log.parquet", index=False)
    procs = mp.start_processes(_rank_main, args=(_free_port(), str(out), str(out / "log.parquet")), nprocs=2,
                               join=False, start_method="spawn")
    deadline = time.monotonic() + SPAWN_TIMEOUT
    while not procs.join(timeout=1):
        if time.monotonic() > deadline:
            for p in procs.processes:
                p.kill()
            pytest.fail(f"two gloo ranks did not finish within {SPAWN_TIMEOUT} s")
    return out


def test_one_ddp_step_equals_one_step_on_the_union_batch(two_ranks: Path) -> None:
    data = equal_length_log()
    torch.manual_seed(0)
    model = build_model(FAMILY, data.vocab.n_items, **TINY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    single = sgd_step(model, model, one_step_batches(data, None))
    ranks = [torch.load(two_ranks / f"step_rank{r}.pt") for r in (0, 1)]
    moved = 0
    for name, ref in single.items():
        torch.testing.assert_close(ranks[0][name], ranks[1][name], rtol=0, atol=0)  # bit-identical on both ranks
        torch.testing.assert_close(ranks[0][name], ref, rtol=1e-5, atol=1e-6)
        moved += int(not torch.equal(ref, before[name]))
    assert moved >= 5  # the step really changed the weights (it is not two unchanged models agreeing)


def test_cli_train_under_two_ranks_writes_one_run_with_identical_weights(two_ranks: Path) -> None:
    from seqrec_core.evaluation import evaluate
    from seqrec_core.runs import load_run

    runs = [p for p in (two_ranks / "runs").iterdir()]
    assert [p.name for p in runs] == ["ddp"]  # exactly one run folder, no stray temp folder
    final = [torch.load(two_ranks / f"final_rank{r}.pt") for r in (0, 1)]
    assert final[0].keys() == final[1].keys()
    for name in final[0]:
        assert torch.equal(final[0][name], final[1][name]), name
    summary = json.loads((two_ranks / "stdout_rank0.txt").read_text())
    assert (two_ranks / "stdout_rank1.txt").read_text() == ""  # only rank 0 prints the JSON
    assert summary["run_dir"].endswith("ddp") and summary["epochs"] == 2
    events = [json.loads(line) for line in (two_ranks / "progress_rank0.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "start" and events[0]["world_size"] == 2 and events[-1]["event"] == "done"
    assert not (two_ranks / "progress_rank1.jsonl").exists()  # only rank 0 reports progress
    run = load_run(runs[0])
    for name, value in run.model.state_dict().items():
        assert torch.equal(value, final[0][name]), name
    data = build_sequences(pd.read_parquet(two_ranks / "log.parquet"))
    metrics = evaluate(run.scorer(), data, "test").metrics
    assert metrics["NDCG@10"] == pytest.approx(summary["metrics"]["test"]["NDCG@10"], abs=1e-6)


def test_shard_batches_gives_every_rank_as_many_batches_and_covers_all() -> None:
    batches = [np.array([i]) for i in range(7)]
    shards = [distributed.shard_batches(batches, r, 3) for r in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    assert sorted({int(b[0]) for s in shards for b in s}) == list(range(7))
    assert [int(b[0]) for b in shards[1]] == [1, 4, 0]  # r::N after wrapping around to a multiple of N
    assert distributed.shard_batches(batches, 0, 1) == batches
    assert [len(distributed.shard_batches(batches[:1], r, 2)) for r in (0, 1)] == [1, 1]


def test_without_world_size_torch_distributed_is_never_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist
    import torch.nn.parallel as parallel

    def forbidden(*_args, **_kwargs):
        raise AssertionError("torch.distributed was used by a single-process run")

    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    for name in ("init_process_group", "new_group", "all_reduce", "broadcast", "is_initialized", "get_rank",
                 "destroy_process_group"):
        monkeypatch.setattr(dist, name, forbidden)
    monkeypatch.setattr(parallel, "DistributedDataParallel", forbidden)
    assert distributed.init_from_env("cpu") is None and distributed.env_rank() == 0
    data = equal_length_log()
    torch.manual_seed(0)
    result = train_model(build_model(FAMILY, data.vocab.n_items, **TINY), data,
                         TrainConfig(epochs=1, batch_size=4, max_len=MAX_LEN, device="cpu", seed=0))
    assert result.stopped_reason == "max_epochs" and len(result.history) == 1
    distributed.shutdown()  # a no-op without a process group

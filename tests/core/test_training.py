"""The trainer: it learns, stops on budget / cancel / patience keeping the best checkpoint, and reports progress."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from seqrec_core.data import build_sequences
from seqrec_core.errors import InputError
from seqrec_core.evaluation import evaluate
from seqrec_core.models import NeuralScorer, build_model
from seqrec_core.training import TrainConfig, TrainingCancelled, resolve_device, train_model

TINY = {"hidden_size": 16, "num_layers": 1, "num_heads": 1, "max_len": 10}


def walk_log(n_users: int = 60, n_items: int = 24, length: int = 10, seed: int = 0):
    """Every user walks the catalogue in order from a random start: the next item is always learnable."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        start = int(rng.integers(0, n_items))
        rows += [(f"u{u}", f"i{(start + t) % n_items:02d}", t) for t in range(length)]
    return build_sequences(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


@pytest.fixture(scope="module")
def data():
    return walk_log()


def fresh_model(data, **kw):
    torch.manual_seed(0)
    return build_model("sasrec", data.vocab.n_items, **{**TINY, **kw})


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 8, "batch_size": 16, "lr": 5e-3, "max_len": 10, "device": "cpu", "seed": 0, **kw})


@pytest.mark.parametrize("positions", ["rotary", "learned"])
def test_training_learns_the_walk_and_reports_progress(data, positions: str) -> None:
    events: list[dict] = []
    result = train_model(fresh_model(data, positions=positions), data, cfg(epochs=12), on_event=events.append)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and "step" in kinds and kinds.count("epoch") == len(result.history)
    start = events[0]
    assert start["device"] == "cpu" and start["n_params"] > 0 and start["steps_per_epoch"] >= 1
    step = next(e for e in events if e["event"] == "step")
    assert {"epoch", "step", "steps", "loss", "elapsed", "eta_seconds"} <= set(step)
    assert {"epoch", "train_loss", "val_NDCG@10", "val_HR@10", "seconds"} <= set(result.history[0])
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.best_val > 0.5  # a walk is easy: the next item should be near the top
    assert result.stopped_reason in ("max_epochs", "converged")


def test_best_checkpoint_is_the_one_returned(data) -> None:
    result = train_model(fresh_model(data), data, cfg(epochs=6, eval_every=1))
    best_row = max(result.history, key=lambda r: r["val_NDCG@10"])
    assert result.best_epoch == best_row["epoch"]
    again = evaluate(NeuralScorer(result.model, 10), data, "val").metrics["NDCG@10"]
    assert again == pytest.approx(result.best_val, abs=1e-6)


def test_keep_last_returns_the_last_validated_epoch(data) -> None:
    result = train_model(fresh_model(data), data, cfg(epochs=5, keep="last", patience=50))
    assert result.best_epoch == result.history[-1]["epoch"] == 5
    again = evaluate(NeuralScorer(result.model, 10), data, "val").metrics["NDCG@10"]
    assert again == pytest.approx(result.history[-1]["val_NDCG@10"], abs=1e-6)


def test_time_budget_stops_and_keeps_a_validated_model(data) -> None:
    result = train_model(fresh_model(data), data, cfg(epochs=10_000, time_budget=1.5, patience=10_000))
    assert result.stopped_reason == "time_budget"
    assert result.train_seconds < 10
    assert result.history and result.best_val == max(r["val_NDCG@10"] for r in result.history)


def test_should_stop_cancels_after_a_validation_and_keeps_the_best(data) -> None:
    seen = {"epochs": 0}

    def on_event(e: dict) -> None:
        seen["epochs"] += e["event"] == "epoch"

    result = train_model(fresh_model(data), data, cfg(epochs=50, patience=50), on_event=on_event,
                         should_stop=lambda: seen["epochs"] >= 2)
    assert result.stopped_reason == "cancelled"
    assert len(result.history) == 2 and result.best_epoch in (1, 2)


def test_cancel_before_any_validation_raises(data) -> None:
    with pytest.raises(TrainingCancelled):
        train_model(fresh_model(data), data, cfg(), should_stop=lambda: True)


def test_patience_stops_a_model_that_cannot_improve(data) -> None:
    result = train_model(fresh_model(data), data, cfg(epochs=200, lr=1e-9, patience=2))
    assert result.stopped_reason == "converged" and len(result.history) < 200


def test_unset_patience_comes_from_the_log_and_is_stored(data) -> None:
    from seqrec_core.training.from_log import patience_from_log

    result = train_model(fresh_model(data), data, cfg(epochs=200, lr=1e-9))  # patience left unset
    assert result.config.patience == patience_from_log("sasrec", data)  # the run stores what stopped it
    assert result.stopped_reason == "converged" and len(result.history) == result.config.patience + 1


def test_same_seed_same_history(data) -> None:
    a = train_model(fresh_model(data), data, cfg(epochs=2))
    b = train_model(fresh_model(data), data, cfg(epochs=2))
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]


def test_log_without_training_pairs_is_an_input_error() -> None:
    one_each = build_sequences(pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "timestamp": [0, 0]}))
    with pytest.raises(InputError, match="nothing to learn"):
        train_model(build_model("sasrec", one_each.vocab.n_items, **TINY), one_each, cfg())


@pytest.mark.parametrize("kw", [{"epochs": 0}, {"lr": -1.0}, {"time_budget": 0}, {"device": "tpu"},
                                {"val_users": 0}, {"batch_size": 2.5}, {"keep": "first"}])
def test_bad_train_config_is_an_input_error(kw: dict) -> None:
    with pytest.raises(InputError):
        TrainConfig(**kw)


def test_devices_resolve() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA"):
            resolve_device("cuda")


def test_a_diverging_training_is_refused_and_keeps_no_model(data) -> None:
    with pytest.raises(InputError, match=r"diverged at epoch 1: the mean loss is nan.*lower the learning rate"):
        train_model(fresh_model(data), data, cfg(epochs=3, lr=1e308))


def test_cli_train_that_diverges_exits_2_with_one_line_and_no_run(tmp_path, capsys) -> None:
    from seqrec_core.cli import main

    rows = [(f"u{u}", f"i{(u + t) % 24:02d}", t) for u in range(60) for t in range(10)]
    log = tmp_path / "walk.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(log, index=False)
    out = tmp_path / "run"
    code = main(["train", "--data", str(log), "--model", "sasrec", "--lr", "1e308", "--epochs", "2", "--max-len", "10",
                 "--device", "cpu", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: training diverged"), err
    assert not out.exists()  # nothing half-written: the NaN model is not saved


def test_a_job_specs_seed_and_budget_are_checked_like_the_flags() -> None:
    """`train --spec` goes through TrainConfig, not the CLI's argparse types: the same ranges, one line each."""
    from seqrec_core.cli.common import SEED_LIMIT
    from seqrec_core.errors import InputError
    from seqrec_core.training.config import MAX_SEED, TrainConfig

    assert SEED_LIMIT == MAX_SEED
    for bad in ({"seed": -1}, {"seed": MAX_SEED + 1}, {"seed": 1.5}, {"time_budget": float("inf")},
                {"time_budget": float("nan")}):
        with pytest.raises(InputError) as info:
            TrainConfig(**bad)
        assert "\n" not in str(info.value)
    assert TrainConfig(seed=MAX_SEED, time_budget=1e-3).seed == MAX_SEED

"""Training verdicts say what a finished run is worth: converged, stopped by a limit while still learning, or
below the best baseline, each with what would help."""
from __future__ import annotations

import pytest

from seqrec_core.training.verdict import TrainingVerdict, get_training_verdict, verdict_from_run

BASELINES = {"popularity": 0.01, "markov": 0.04, "itemknn": 0.05}


def verdict(**kw: object) -> TrainingVerdict:
    args = {"stopped_reason": "converged", "epochs_trained": 60, "best_epoch": 20, "patience": 40,
            "model_score": 0.08, "baseline_scores": BASELINES, "on_gpu": False, **kw}
    return get_training_verdict(**args)  # type: ignore[arg-type]


def test_early_stopping_above_the_baselines_is_converged() -> None:
    v = verdict()
    assert v.ok and v.verdict == "converged" and v.best_baseline == "itemknn"
    assert "0.0800" in v.detail and "0.0500" in v.detail and "epoch 20" in v.detail


def test_a_budget_stop_while_still_improving_says_give_it_time_or_a_gpu() -> None:
    v = verdict(stopped_reason="time_budget", epochs_trained=12, best_epoch=12)
    assert v.verdict == "budget_stopped" and not v.ok
    assert v.headline == "stopped by the time budget before converging"
    assert "--time-budget" in v.detail and "GPU" in v.detail
    assert "GPU" not in verdict(stopped_reason="time_budget", epochs_trained=12, best_epoch=12, on_gpu=True).detail


def test_a_budget_stop_after_a_plateau_is_converged() -> None:
    assert verdict(stopped_reason="time_budget", epochs_trained=80, best_epoch=20).verdict == "converged"


def test_a_stop_inside_the_first_epoch_is_under_trained() -> None:
    v = verdict(stopped_reason="time_budget", epochs_trained=1, best_epoch=1)
    assert v.verdict == "under_trained" and "first epoch" in v.detail


def test_the_epoch_limit_while_improving_says_raise_epochs() -> None:
    v = verdict(stopped_reason="max_epochs", epochs_trained=200, best_epoch=190)
    assert v.verdict == "epoch_limit" and "--epochs" in v.detail


@pytest.mark.parametrize("reason", ["converged", "time_budget", "max_epochs"])
def test_below_the_best_baseline_comes_first(reason: str) -> None:
    v = verdict(stopped_reason=reason, model_score=0.045)
    assert v.verdict == "below_baseline" and v.headline == "below the best baseline"
    assert "itemknn" in v.detail and "0.0450" in v.detail and "0.0500" in v.detail


def test_round_trip_and_runs_without_a_training_record() -> None:
    v = verdict()
    assert TrainingVerdict.from_json(v.to_json()) == v
    assert TrainingVerdict.from_json({"verdict": "great"}) is None
    config = {"stopped_reason": "time_budget", "epochs_trained": 3, "best_epoch": 3, "train": {"patience": 10},
              "device": "cuda:0"}
    from_run = verdict_from_run(config, 0.08, BASELINES)
    assert from_run is not None and from_run.verdict == "budget_stopped" and "GPU" not in from_run.detail
    assert verdict_from_run({"family": "sasrec"}, 0.08, BASELINES) is None
    assert verdict_from_run({**config, "train": {"patience": "ten"}}, 0.08, BASELINES) is None


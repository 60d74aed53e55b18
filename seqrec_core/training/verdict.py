"""An honest one-word verdict on a finished training, with what would help: did it converge, did a limit stop it
while it was still learning, and does it beat the simple baselines at all?

Why: "Finished" in green after a run that stopped inside its first epoch, or below the popularity baseline, tells
a person the model is ready when it is not. The verdict is computed once, when the train job ends, stored in the
run's config (so the Evaluate page and the CLI's ``train`` JSON show the same words) and derived only from what the
run records: why training stopped, the validation history, and the test metrics of the model and the baselines.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

METRIC = "NDCG@10"
VERDICTS = ("converged", "below_baseline", "budget_stopped", "epoch_limit", "under_trained", "cancelled")
HEADLINES = {
    "converged": "converged",
    "below_baseline": "below the best baseline",
    "budget_stopped": "stopped by the time budget before converging",
    "epoch_limit": "stopped at the epoch limit before converging",
    "under_trained": "under-trained",
    "cancelled": "cancelled before converging",
}

# Why training stopped (``TrainResult.stopped_reason``), in the words pages and reports show
STOP_REASONS = {"converged": "early stopping: no validation gain for the patience",
                "time_budget": "the time budget ran out", "max_epochs": "the epoch limit was reached",
                "cancelled": "cancelled"}


def stop_reason_words(reason: object) -> str:
    """``stopped_reason`` in plain words (an unknown one as it is)."""
    return STOP_REASONS.get(str(reason), str(reason))


@dataclass(frozen=True)
class TrainingVerdict:
    verdict: str  # one of VERDICTS
    headline: str  # the verdict in words, for a page's title line
    detail: str  # the numbers behind it and what to do, one paragraph
    model_score: float  # test NDCG@10 of the kept weights
    best_baseline: str | None
    best_baseline_score: float | None

    @property
    def ok(self) -> bool:
        return self.verdict == "converged"

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: object) -> TrainingVerdict | None:
        """The stored verdict of a run, or None when it has none or it is not one (older or hand-made runs)."""
        if not isinstance(obj, dict) or obj.get("verdict") not in VERDICTS:
            return None
        try:
            return cls(verdict=str(obj["verdict"]), headline=str(obj["headline"]), detail=str(obj["detail"]),
                       model_score=float(obj["model_score"]),
                       best_baseline=None if obj.get("best_baseline") is None else str(obj["best_baseline"]),
                       best_baseline_score=None if obj.get("best_baseline_score") is None
                       else float(obj["best_baseline_score"]))
        except (KeyError, TypeError, ValueError):
            return None


def get_training_verdict(*, stopped_reason: str, epochs_trained: int, best_epoch: int, patience: int,
                         model_score: float, baseline_scores: dict[str, float], on_gpu: bool) -> TrainingVerdict:
    """The verdict: below the best baseline comes first (whatever else happened, the model is not worth using
    yet), then a limit that stopped training before early stopping declared it converged."""
    best_name, best_score = max(baseline_scores.items(), key=lambda kv: kv[1]) if baseline_scores else (None, None)
    faster = "" if on_gpu else ", or train on a GPU"
    stale = epochs_trained - best_epoch
    still_learning = stopped_reason in ("time_budget", "max_epochs", "cancelled") and stale < patience
    more = {"time_budget": f"give it a larger time budget (--time-budget, or none){faster}",
            "max_epochs": "raise the epoch limit (--epochs)",
            "cancelled": "let it run to the end"}.get(stopped_reason, "")
    if stopped_reason == "time_budget" and epochs_trained <= 1:
        verdict = "under_trained"
        why = f"the time budget ended training within its first epoch; {more}"
    elif still_learning:
        verdict = {"time_budget": "budget_stopped", "max_epochs": "epoch_limit"}.get(stopped_reason, "cancelled")
        why = (f"validation {METRIC} last improved at epoch {best_epoch} of {epochs_trained}: {stale} "
               f"epoch{'' if stale == 1 else 's'} without gain, fewer than the {patience} that count as converged, "
               f"so it may still improve; {more}")
    else:
        verdict = "converged"
        why = f"validation {METRIC} stopped improving after epoch {best_epoch} (patience {patience})"
    if best_score is not None and model_score < best_score:
        verdict, why = "below_baseline", (
            f"test {METRIC} {model_score:.4f} is below the {best_name} baseline's {best_score:.4f}; {why}. If it "
            f"converged, a sequence model may not suit this log: check the Patterns page, or try longer histories "
            f"(--max-len) or another family")
    elif best_score is not None:
        why = f"test {METRIC} {model_score:.4f} against the best baseline ({best_name}) {best_score:.4f}; {why}"
    return TrainingVerdict(verdict=verdict, headline=HEADLINES[verdict], detail=why[0].upper() + why[1:] + ".",
                           model_score=float(model_score), best_baseline=best_name,
                           best_baseline_score=None if best_score is None else float(best_score))


def verdict_from_run(config: dict, model_score: float, baseline_scores: dict[str, float]) -> TrainingVerdict | None:
    """The verdict from what a run's config records about its training and scores from an evaluation (the
    Evaluate page's, with its seen-items setting); None for runs that record no training (hand-made or baseline
    runs)."""
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    try:
        return get_training_verdict(stopped_reason=str(config["stopped_reason"]),
                                    epochs_trained=int(config["epochs_trained"]), best_epoch=int(config["best_epoch"]),
                                    patience=int(train["patience"]), model_score=float(model_score),
                                    baseline_scores={str(k): float(v) for k, v in baseline_scores.items()},
                                    on_gpu=str(config.get("device", "")).startswith("cuda"))
    except (KeyError, TypeError, ValueError, OverflowError):
        return None

"""The train job behind both ``python -m seqrec_core train`` and the dashboard's Train page.

One function does the whole job: build the model, train it, evaluate it on validation and test with full
ranking, save the run atomically, and append every event to a progress file as JSON lines (which the Train
page polls). Its return value is the CLI's ``train`` JSON document.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch

from seqrec_core.data.sequences import SequenceData
from seqrec_core.errors import InputError
from seqrec_core.jobs.claim import claim_run_dir
from seqrec_core.jobs.progress import ProgressFile
from seqrec_core.training import TrainConfig, TrainingCancelled, eval_batch_size, seed_everything, train_model
from seqrec_core.training.verdict import METRIC as VERDICT_METRIC
from seqrec_core.training.verdict import TrainingVerdict, get_training_verdict

log = logging.getLogger(__name__)


def job_options(model_options: dict, train_cfg: TrainConfig) -> dict:
    """The model options with ``max_len`` taken from the training history length (a different one is refused)."""
    options = dict(model_options)
    if options.get("max_len") is None:
        options["max_len"] = train_cfg.max_len
    elif options["max_len"] != train_cfg.max_len:
        raise InputError(f"model max_len {options['max_len']} differs from training max_len {train_cfg.max_len}; "
                         "set one history length")
    return options


def build_job_model(data: SequenceData, family: str, model_options: dict, train_cfg: TrainConfig,
                    text_progress: Callable[[int, int], None] | None = None) -> torch.nn.Module:
    """The untrained model a train job trains, the same on every DDP rank: seeded first, the options the person
    left unset that depend on the log filled in (:mod:`seqrec_core.training.from_log`), every option checked
    before a (slow) item-text encoding, text vectors set."""
    from seqrec_core.models import build_config, build_model
    from seqrec_core.models.text_features import with_item_text
    from seqrec_core.training.from_log import model_options_from_log

    options = model_options_from_log(family, data, job_options(model_options, train_cfg))
    seed_everything(train_cfg.seed)
    build_config(family, data.vocab.n_items, **options)
    options, text_matrix = with_item_text(options, data.vocab, device=train_cfg.device, progress=text_progress)
    model = build_model(family, data.vocab.n_items, **options)
    if text_matrix is not None:
        model.item_emb.text.set_matrix(text_matrix)
    return model


def run_training_job(data: SequenceData, family: str, model_options: dict, train_cfg: TrainConfig,
                     out_dir: str | Path, data_info: dict, progress_path: str | Path | None = None,
                     should_stop: Callable[[], bool] | None = None, exclude_seen: bool = False,
                     on_event: Callable[[dict], None] | None = None,
                     build: Callable[[Callable[[int, int], None]], torch.nn.Module] | None = None) -> dict:
    """Train ``family`` on ``data``, evaluate, save the run to ``out_dir``; returns the CLI's train JSON.

    Progress events go to ``progress_path`` (and ``on_event``), ending with ``done`` (run saved),
    ``cancelled`` (cancel before any validation: nothing saved, :class:`TrainingCancelled` raised) or
    ``error`` (the exception is re-raised; a time budget that ran out before the first validation is an
    :class:`InputError`). A cancel after a validation saves the best checkpoint and reports
    ``stopped_reason: "cancelled"``. ``out_dir`` is claimed first (:func:`~seqrec_core.jobs.claim.claim_run_dir`;
    an existing run there is replaced when the new one is saved), and left as it was found if nothing is saved.
    ``build(text_progress)``: the model to train instead of a fresh one (a warm start,
    :mod:`seqrec_core.training.warm_start`); ``data_info`` is stored as the run's ``data`` record as given.
    """
    job_options(model_options, train_cfg)  # refused before anything is claimed or a progress file exists
    with claim_run_dir(out_dir, replace_run=True) as out:
        return _train_evaluate_save(data, family, model_options, train_cfg, out, data_info, progress_path,
                                    should_stop, exclude_seen, on_event, build)


def _train_evaluate_save(data: SequenceData, family: str, model_options: dict, train_cfg: TrainConfig, out: Path,
                         data_info: dict, progress_path: str | Path | None, should_stop: Callable[[], bool] | None,
                         exclude_seen: bool, on_event: Callable[[dict], None] | None,
                         build: Callable[[Callable[[int, int], None]], torch.nn.Module] | None = None) -> dict:
    from seqrec_core.evaluation import evaluate
    from seqrec_core.models.neural import NeuralScorer
    from seqrec_core.runs import save_run

    progress = ProgressFile(Path(progress_path) if progress_path is not None else None)

    def emit(event: dict) -> None:
        progress(event)
        if on_event is not None:
            on_event(event)

    try:
        def text_progress(done: int, total: int) -> None:
            emit({"event": "text_encoding", "done": done, "total": total})
            if should_stop is not None and should_stop():
                raise TrainingCancelled("cancelled while encoding item texts; nothing was saved")

        model = (build(text_progress) if build is not None
                 else build_job_model(data, family, model_options, train_cfg, text_progress))
        result = train_model(model, data, train_cfg, on_event=emit, should_stop=should_stop)
        emit({"event": "evaluating", "parts": ["val", "test"]})
        device = torch.device(result.device)
        batch = eval_batch_size(device)
        scorer = NeuralScorer(model, model.config.max_len, device, batch_size=batch, output="torch")
        metrics = {part: evaluate(scorer, data, part, exclude_seen=exclude_seen, batch_size=batch).metrics
                   for part in ("val", "test")}
        metrics["exclude_seen"] = exclude_seen
        epochs_trained = max((row["epoch"] for row in result.history), default=0)
        emit({"event": "evaluating", "parts": ["baselines"]})
        verdict = _verdict(data, result, epochs_trained, metrics["test"], exclude_seen)
        # The last event's time: a later warm start on a grown log knows which events are new since this run.
        data_record = {**data_info, "last_time": last_event_time(data)}
        config = {"family": family, "model": model.config.to_dict(), "train": (result.config or train_cfg).to_dict(),
                  "data": data_record, "device": result.device, "train_seconds": round(result.train_seconds, 3),
                  "stopped_reason": result.stopped_reason, "best_epoch": result.best_epoch,
                  "epochs_trained": epochs_trained, "verdict": verdict.to_json(),
                  "exclude_seen": exclude_seen, "versions": _versions()}
        model.to("cpu")
        save_run(out, model=model, config=config, vocab=data.vocab, metrics=metrics, history=result.history,
                 progress_path=progress_path)
        lineage = {"resumed_from": data_info["resumed_from"]} if "resumed_from" in data_info else {}
        summary = {"run_dir": str(out), "model": family, **lineage, "epochs": config["epochs_trained"],
                   "best_epoch": result.best_epoch, "train_seconds": config["train_seconds"],
                   "device": result.device, "stopped_reason": result.stopped_reason, "verdict": verdict.to_json(),
                   "exclude_seen": exclude_seen, "metrics": {"val": metrics["val"], "test": metrics["test"]}}
        emit({"event": "done", **summary})
        return summary
    except TrainingCancelled as err:
        if train_cfg.time_budget is not None and not (should_stop is not None and should_stop()):
            # Nobody cancelled: the budget ran out before one epoch and its validation; that needs a bigger
            # budget, not a retry, and is bad input rather than a cancel (which the CLI reports as exit 130).
            message = (f"the time budget of {train_cfg.time_budget:g} s ran out before the first validation, so "
                       "there is no model to keep; give a larger time budget (--time-budget), enough for one "
                       "epoch and one validation, or none")
            emit({"event": "error", "message": message})
            raise InputError(message) from None
        emit({"event": "cancelled", "message": str(err)})
        raise
    except BaseException as err:
        emit({"event": "error", "message": str(err) or type(err).__name__})
        raise
    finally:
        progress.close()


def last_event_time(data: SequenceData) -> int | None:
    """The newest event's unix seconds in ``data`` (None for a log without times: its order says nothing of when)."""
    if not data.has_time:
        return None
    return int(max((int(t[-1]) for t in data.times if len(t)), default=0))


def _verdict(data: SequenceData, result, epochs_trained: int, test: dict,  # noqa: ANN001 - TrainResult
             exclude_seen: bool) -> TrainingVerdict:
    """How the training went, against the baselines' test scores under the same protocol (seconds: they are
    count tables, ~5 s on Beauty's 22,000 users)."""
    from seqrec_core.evaluation import evaluate
    from seqrec_core.models.baselines import fit_baselines

    baselines = {name: evaluate(scorer, data, "test", exclude_seen=exclude_seen).metrics[VERDICT_METRIC]
                 for name, scorer in fit_baselines(data).items()}
    return get_training_verdict(stopped_reason=result.stopped_reason, epochs_trained=epochs_trained,
                                best_epoch=result.best_epoch, patience=int(result.config.patience),  # set by training
                                model_score=float(test[VERDICT_METRIC]), baseline_scores=baselines,
                                on_gpu=str(result.device).startswith("cuda"))


def run_train_spec(spec, progress_path: str | Path | None = None,  # noqa: ANN001 - TrainSpec
                   should_stop: Callable[[], bool] | None = None, main_rank: bool = True,
                   on_valid_input: Callable[[], None] | None = None,
                   on_event: Callable[[dict], None] | None = None) -> dict | None:
    """The whole train job a spec describes: open its data (the prepared copy as it is), train, evaluate, save,
    then analyse the run if the spec asks (``spec.analyze``). Returns the CLI's train JSON (None on a torchrun rank
    other than 0, which only trains). ``on_valid_input`` is called once the data and options are accepted.

    A failed or cancelled analysis does not undo the training: the run is saved, the JSON's ``analysis`` says
    what happened, and the pages offer to compute what is missing."""
    from seqrec_core.evaluation import default_exclude_seen

    model_options = dict(spec.model_options)
    if not main_rank:  # rank 0 claims the run folder and saves the run
        ds = spec.data.open()
        if on_valid_input is not None:
            on_valid_input()
        train_worker(ds.sequences, spec.family, model_options, spec.train, should_stop=should_stop)
        return None
    job_options(model_options, spec.train)
    # Claimed before the data is read: a folder that cannot take the run (or that another job is writing) is
    # refused now, not after training. A job asked for a new run never replaces an existing one.
    with claim_run_dir(spec.out, replace_run=False):
        ds = spec.data.open()
        if on_valid_input is not None:
            on_valid_input()
        exclude = default_exclude_seen(ds.sequences) if spec.exclude_seen == "auto" else spec.exclude_seen == "on"
        summary = run_training_job(ds.sequences, spec.family, model_options, spec.train, spec.out, ds.info(),
                                   progress_path=progress_path, should_stop=should_stop, exclude_seen=exclude,
                                   on_event=on_event)
    if spec.analyze is not None:
        summary["analysis"] = _analyse_after_training(spec, ds, progress_path, should_stop, on_event)
        summary["context_reach"] = summary["analysis"].get("context_reach")
    elif spec.family not in ("popularity", "markov", "itemknn"):
        log.info("how far back the model looks (and whether it uses context beyond the last 20 events) is measured "
                 "by `train --analyze`, or later by `python -m seqrec_core analyze --run %s --parts longrange`",
                 spec.out)
    return summary


def _analyse_after_training(spec, ds, progress_path, should_stop, on_event) -> dict:  # noqa: ANN001
    from seqrec_core.analysis.job import run_analysis
    from seqrec_core.jobs.spec import AnalyzeSpec

    device = spec.train.device if spec.train.device in ("auto", "cpu", "cuda", "mps") else "auto"
    try:
        return run_analysis(AnalyzeSpec(run=spec.out, request=spec.analyze, device=device), dataset=ds,
                            progress_path=progress_path, should_stop=should_stop, on_event=on_event,
                            final_events=False)
    except Exception as err:  # noqa: BLE001 - the run is saved; the analysis can be computed again later
        log.exception("analysing %s failed", spec.out)
        return {"error": str(err) or type(err).__name__}


def train_worker(data: SequenceData, family: str, model_options: dict, train_cfg: TrainConfig,
                 should_stop: Callable[[], bool] | None = None) -> None:
    """What a torchrun rank other than 0 runs for ``train``: build the same model as the train job and take part
    in training; rank 0 runs the job itself (validation, evaluation, saving, progress, the JSON)."""
    model = build_job_model(data, family, model_options, train_cfg)
    train_model(model, data, train_cfg, should_stop=should_stop)


def _versions() -> dict:
    import transformers

    from seqrec_core import __version__

    return {"seqrec_core": __version__, "torch": torch.__version__, "transformers": transformers.__version__}

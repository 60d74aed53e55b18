"""Issue 15's property on a small planted log: a SASRec trained with the defaults a train job uses (nothing set but
the history length and the number of epochs) ranks the held-out planted responses high, and integrated gradients
put the trigger, 20-30 events back, among the 3 most attributed events.

The defaults are what the job derives from this dense log (seqrec_core.training.from_log: dropout 0.1, no item
dropout; auto batch 32); with the sparse-log settings they replace (dropout 0.4, item dropout 0.2, batch 128) the
same epochs leave the responses far down the ranking, which the second test checks so the first one cannot pass
by being too easy.
"""
from __future__ import annotations

import pytest
import torch

from seqrec_core.data.planted_log import PlantedLogConfig, make_planted_events
from seqrec_core.data.sequences import build_sequences
from seqrec_core.explain.planted import get_planted_recall
from seqrec_core.jobs.train import build_job_model
from seqrec_core.training import TrainConfig, train_model

LOG = PlantedLogConfig(n_users=600, n_fillers=120, n_categories=6, n_pairs=4, lag_range=(20, 30),
                       history_range=(40, 60), plantings=3.0, response_share=0.4, successor_share=0.3, seed=1)
EPOCHS = 12
SPARSE_LOG_SETTINGS = {"dropout": 0.4, "item_dropout": 0.2}


def trained(model_options: dict, batch_size: int | None = None):  # noqa: ANN201 - (run-like, data, truth)
    from types import SimpleNamespace

    events, truth = make_planted_events(LOG)
    data = build_sequences(events)
    cfg = TrainConfig(epochs=EPOCHS, patience=EPOCHS, max_len=64, device="cpu", seed=0, batch_size=batch_size)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on a busy 2-core machine wait on each other
    try:
        model = build_job_model(data, "sasrec", model_options, cfg)
        result = train_model(model, data, cfg)
    finally:
        torch.set_num_threads(threads)
    run = SimpleNamespace(model=result.model, vocab=data.vocab, max_len=64)
    return run, data, truth, result


@pytest.mark.slow
def test_the_defaults_learn_the_planted_pairs_and_ig_finds_the_trigger() -> None:
    run, data, truth, result = trained({})
    assert run.model.config.dropout == 0.1 and run.model.config.item_dropout == 0.0  # derived from the dense log
    assert result.config.batch_size == 32  # ~50 targets a window: auto batch
    recall = get_planted_recall(run, data, truth, top_k=10, top_attr=3, steps=20)
    assert recall["cases"] >= 200
    assert recall["recall"] >= 0.6, recall
    assert recall["trigger_found"] >= 0.8, recall


@pytest.mark.slow
def test_the_sparse_log_settings_do_not_learn_them_in_the_same_epochs() -> None:
    run, data, truth, _ = trained(SPARSE_LOG_SETTINGS, batch_size=128)
    recall = get_planted_recall(run, data, truth, top_k=10, top_attr=3, steps=20)
    assert recall["recall"] < 0.3, recall

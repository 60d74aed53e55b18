"""The Compare path with runs that use the newer SASRec options: a time-aware run (gBCE loss) is evaluated, ranked
and explained WITH its times (the held-out event's time as the query time, exactly as recommend.py and the trainer
do), a text run counts only its learned parameters, and the setup label and options table name what differs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from compare_runs import SECOND_RUN, TIMED_RUN, long_user, train_second_run, train_timed_run

from seqrec_core import compare
from seqrec_core.compare_options import describe_option, get_setup
from seqrec_core.errors import InputError
from seqrec_core.models.base import uses_time


@pytest.fixture(scope="module")
def runs(runs_dir, small_dataset, tiny_run):
    from seqrec_core.runs import load_run

    paths = (tiny_run, train_second_run(runs_dir, small_dataset), train_timed_run(runs_dir, small_dataset))
    return {p.name: load_run(p) for p in paths}


def heldout_scores(scorer, data, user: str) -> np.ndarray:  # noqa: ANN001
    """Scores of the user's history before the held-out event, asked at that event's time (written out here)."""
    u = data.vocab.user_index(user)
    seq, times = data.sequences[u], data.times[u]
    return scorer.score_histories([seq[:-1]], times=[np.asarray(times, dtype=np.int64)])[0]  # (N + 1,)


def test_time_aware_topk_is_scored_at_the_heldout_time(runs, small_dataset):
    from seqrec_core.recommend import get_recommendations

    data = small_dataset.sequences
    timed, plain = runs[TIMED_RUN].scorer(), runs["tiny-sasrec"].scorer()
    assert uses_time(timed) and not uses_time(plain)
    user = long_user(small_dataset)
    frame = compare.get_topk_comparison({TIMED_RUN: timed, "plain": plain}, data, user, 10, exclude_seen=False)
    mine = frame[frame["run"] == TIMED_RUN]
    served = get_recommendations(timed, data, user, 10, exclude_seen=False, holdout=True)
    assert list(mine["item_id"]) == list(served["item_id"])
    np.testing.assert_allclose(mine["score"], served["score"], rtol=1e-6)
    scores = heldout_scores(timed, data, user)
    top = np.argsort(-scores[1:], kind="stable")[:10] + 1
    assert list(mine["item_id"]) == [data.vocab.item_id(int(i)) for i in top]
    np.testing.assert_allclose(mine["score"], scores[top], rtol=1e-5)
    # the times reach the scores: the same history asked nine hours later ranks differently
    u = data.vocab.user_index(user)
    later = np.asarray(data.times[u], dtype=np.int64).copy()
    later[-1] += 9 * 3600
    moved = timed.score_histories([data.sequences[u][:-1]], times=[later])[0]
    assert np.abs(moved[1:] - scores[1:]).max() > 1e-5
    with pytest.raises(InputError):  # so no Compare path can quietly score it without times
        timed.score_histories([data.sequences[u][:-1]])


def test_time_aware_run_evaluates_as_the_trainer_did(runs, small_dataset):
    run = runs[TIMED_RUN]
    exclude = bool(run.config.get("exclude_seen", False))
    res = compare.evaluate_scorers({TIMED_RUN: run.scorer()}, small_dataset.sequences, exclude_seen=exclude)
    recorded = json.loads((run.path / "metrics.json").read_text())["test"]
    for m in compare.COMPARE_METRICS:
        assert res[TIMED_RUN].metrics[m] == pytest.approx(recorded[m], abs=1e-9)


def test_time_aware_and_plain_attributions_align_and_use_the_heldout_time(runs, small_dataset):
    data = small_dataset.sequences
    user = long_user(small_dataset)
    pair = {TIMED_RUN: runs[TIMED_RUN], SECOND_RUN: runs[SECOND_RUN]}
    aligned, targets = compare.get_attribution_comparison(pair, data, user, "heldout", steps=20)
    assert aligned[TIMED_RUN].notna().sum() == 16 and aligned[SECOND_RUN].notna().sum() == 12  # own windows
    row = targets.set_index("run").loc[TIMED_RUN]
    heldout = data.sequences[data.vocab.user_index(user)][-1]
    assert row["target_item"] == data.vocab.item_id(int(heldout))
    # the explained score is the one asked at the held-out event's time
    assert row["target_score"] == pytest.approx(float(heldout_scores(runs[TIMED_RUN].scorer(), data, user)[heldout]),
                                                rel=1e-4, abs=1e-5)
    gap = row["target_score"] - row["baseline_score"]  # IG completeness with the times held fixed
    assert aligned[TIMED_RUN].sum() == pytest.approx(gap, abs=abs(row["convergence_delta"]) + 1e-3)


def test_setup_and_options_name_what_differs(runs):
    metas = [compare.get_run_meta(run.path) for run in runs.values()]
    by_name = {m.name: m for m in metas}
    timed = by_name[TIMED_RUN].setup
    assert timed.startswith("sasrec · ") and "time features" in timed and "loss gbce" in timed
    assert "positions" not in timed and "gbce t" not in timed  # defaults are not named
    assert "time features" not in by_name["tiny-sasrec"].setup
    table = compare.get_options_table(metas)
    assert list(table["run"]) == list(runs) and (table["family"] == "sasrec").all()
    differing = compare.differing_options(table)
    assert {"time_features", "loss", "positions", "max_len", "train: seed"} <= set(differing)
    assert "dropout" not in differing and "family" not in differing
    assert table.set_index("run").loc[TIMED_RUN, "time_features"] == "yes"
    shown = compare.options_for_display(table, keep=("run", "family"))
    assert list(shown.columns[:2]) == ["run", "family"] and "dropout" not in shown and "loss" in shown
    assert "dropout" in compare.options_for_display(table, show_all=True)


def test_setup_of_old_and_unknown_configs():
    # a config written before time_features / gbce_t existed: the missing options are the defaults, except those
    # whose saved meaning differs from today's default (STORED_DEFAULTS: such runs had no item dropout)
    assert get_setup("sasrec", {"hidden_size": 64, "loss": "full", "item_dropout": 0.2}) == "sasrec"
    assert get_setup("sasrec", {"hidden_size": 64, "loss": "full"}) == "sasrec · item dropout 0"
    assert get_setup("sasrec", {"time_features": True, "loss": "bce", "text_encoder": "/enc/all-MiniLM-L6-v2",
                                "text_dim": 384, "tied_output": False, "item_dropout": 0.2}) == \
        "sasrec · time features · text all-MiniLM-L6-v2 · loss bce"  # switches, then choices, then sizes
    assert get_setup("gru4rec", {"hidden_size": 32, "dropout": 0.3}) == "gru4rec · hidden size 32"
    assert get_setup("from-a-newer-version", {"x": 1}) == "from-a-newer-version"
    # an option resolved from the others is named only when it differs from what they imply (SASRec's output
    # table follows the loss unless set), and a config that predates it means what the loader says it meant
    now = {"item_dropout": 0.2}
    assert get_setup("sasrec", {"loss": "gbce", "tied_output": False, **now}) == "sasrec · loss gbce"
    assert get_setup("sasrec", {"loss": "full", "tied_output": False, **now}) == "sasrec · no tied output"
    assert get_setup("sasrec", {"loss": "gbce", **now}) == "sasrec · tied output · loss gbce"  # old runs were tied
    assert describe_option("amp", False) == "no amp" and describe_option("lr", 0.001) == "lr 0.001"


def test_a_training_config_from_before_weight_averaging_reads_as_off():
    from seqrec_core.compare_options import get_train_options
    from seqrec_core.training import TrainConfig

    assert get_train_options({"lr": 0.001})["weight_average"] == 0.0  # saved before the option: trained without
    assert get_train_options({"weight_average": 0.999})["weight_average"] == 0.999
    assert TrainConfig().weight_average == 0.999  # what a new run stores


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, small_dataset):
    """A tiny text run: a 1-layer BERT built from a config (offline) reads the demo's titles."""
    from transformers import BertConfig, BertModel, BertTokenizer

    from seqrec_core.jobs import run_training_job
    from seqrec_core.models import text_features as tf
    from seqrec_core.runs import load_run
    from seqrec_core.training import TrainConfig

    base = tmp_path_factory.mktemp("text")
    words = sorted({w for t in small_dataset.sequences.vocab.item_titles.values() for w in str(t).lower().split()})
    tokenizer = BertTokenizer(vocab={w: i for i, w in
                                     enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])})
    import torch

    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=len(tokenizer.vocab), hidden_size=32, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=64, max_position_embeddings=64))
    tokenizer.save_pretrained(base / "tiny-title-bert")
    encoder.save_pretrained(base / "tiny-title-bert")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(tf.CACHE_ENV, str(base / "cache"))
        cfg = TrainConfig(epochs=1, batch_size=64, max_len=12, device="cpu", seed=0)
        run_training_job(small_dataset.sequences, "sasrec", {"hidden_size": 16, "num_layers": 1, "num_heads": 1,
                                                             "text_encoder": str(base / "tiny-title-bert")},
                         cfg, base / "tiny-sasrec-text", small_dataset.info())
    return load_run(base / "tiny-sasrec-text")


def test_text_run_on_the_compare_path(text_run, runs, small_dataset):
    meta = compare.get_run_meta(text_run.path)
    assert "text tiny-title-bert" in meta.setup and "text dim" not in meta.setup
    assert meta.n_params == sum(p.numel() for p in text_run.model.parameters())  # the frozen text matrix is data
    data = small_dataset.sequences
    exclude = bool(text_run.config.get("exclude_seen", False))
    res = compare.evaluate_scorers({meta.name: text_run.scorer()}, data, exclude_seen=exclude)[meta.name]
    recorded = json.loads((Path(text_run.path) / "metrics.json").read_text())["test"]
    assert res.metrics["NDCG@10"] == pytest.approx(recorded["NDCG@10"], abs=1e-9)
    user = long_user(small_dataset)
    pair = {meta.name: text_run, TIMED_RUN: runs[TIMED_RUN]}
    frame = compare.get_topk_comparison({n: r.scorer() for n, r in pair.items()}, data, user, 5)
    assert frame.groupby("run").size().to_dict() == {meta.name: 5, TIMED_RUN: 5}
    aligned, targets = compare.get_attribution_comparison(pair, data, user, None, steps=10)
    assert set(targets["run"]) == set(pair) and aligned[meta.name].notna().sum() == 12
    options = compare.get_options_table([meta, compare.get_run_meta(runs[TIMED_RUN].path)]).set_index("run")
    assert options.loc[meta.name, "text_dim"] == "32" and options.loc[TIMED_RUN, "text_encoder"] == "none"

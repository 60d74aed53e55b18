"""Item text for every non-SASRec neural family (bert4rec, gru4rec, lstm, lsi): the title vector is part of the
input item vector and of the tied output layer, runs train through the real job, save and reload without the
encoder, old configs load unchanged, titles lift never-trained items, and IG stays complete on a text model.

The scenario (a tiny offline BERT encoder, the cold re-listed-items log, the training options and the ranks) lives
in cold_log.py, shared with bench/cold_items.py, which prints the numbers bench/RESULTS.md reports. Training runs
on one thread: on a busy 2-core machine torch's two threads wait on each other and the tiny models train many
times slower."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from cold_log import MAX_LEN, cold_relisted_log, make_tiny_encoder, relisted_ranks, train_cold_run

from seqrec_core.data.sequences import build_sequences
from seqrec_core.errors import InputError
from seqrec_core.models import NeuralScorer, build_model, model_from_config
from seqrec_core.models import text_features as tf
from seqrec_core.models.text_features import TextAwareItemEmbedding, item_text_matrix

FAMILIES = ("bert4rec", "gru4rec", "lstm", "lsi")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Per family a run with titles and one without, trained through run_training_job on the cold log; the
    encoder folder is deleted before anything is loaded."""
    root = tmp_path_factory.mktemp("text_families")
    encoder = root / "encoder"
    make_tiny_encoder(encoder)
    data = cold_relisted_log()
    expected_text = None
    runs: dict[tuple[str, str], dict] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(tf.CACHE_ENV, str(root / "cache"))
            expected_text = item_text_matrix(data.vocab, encoder)  # (n_items + 1, 32)
            for family in FAMILIES:
                for name, text_encoder in (("plain", None), ("text", str(encoder))):
                    runs[family, name] = train_cold_run(data, family, root / f"{family}_{name}",
                                                        text_encoder=text_encoder)
    finally:
        torch.set_num_threads(threads)
    shutil.rmtree(encoder)
    return {"data": data, "runs": runs, "encoder": str(encoder), "text": expected_text}


def _load(trained, family: str, name: str = "text"):
    from seqrec_core.runs import load_run

    return load_run(trained["runs"][family, name]["run_dir"])


def _cold_ranks(trained, family: str, name: str) -> np.ndarray:
    """Rank (1 = top of the 45-item catalogue) of each cold user's held-out re-listed item."""
    return relisted_ranks(trained["data"], _load(trained, family, name).model, MAX_LEN)


# ------------------------------------------------------------------------------------------------ wiring
@pytest.mark.parametrize("family", FAMILIES)
def test_title_vector_reaches_inputs_and_tied_outputs(family: str) -> None:
    torch.manual_seed(0)
    model = build_model(family, 9, hidden_size=16, max_len=6, dropout=0.0, text_encoder="some-encoder", text_dim=8)
    assert isinstance(model.item_emb, TextAwareItemEmbedding)
    model.item_emb.text.set_matrix(torch.nn.functional.normalize(torch.randn(10, 8), dim=1))
    text = model.item_emb.text.item_matrix()  # (V + 1, D)
    assert text[1:].abs().sum() > 0 and not text[0].any()
    torch.testing.assert_close(model.output_weights(), model.item_emb.base.weight + text)
    torch.testing.assert_close(model.item_embeddings(), model.output_weights())  # tied
    ids = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    torch.testing.assert_close(model.item_emb(ids), model.output_weights()[ids])
    loss = model(ids, torch.tensor([[0, 2, 3, 4], [5, 6, 7, 8]]))
    loss.backward()
    assert torch.isfinite(loss) and model.item_emb.text.proj.weight.grad.abs().sum() > 0
    assert [n for n, _ in model.named_parameters() if n.startswith("item_emb.text")] == ["item_emb.text.proj.weight"]


@pytest.mark.parametrize("family", ("sasrec", *FAMILIES))
def test_training_holds_the_id_vectors_of_never_trained_items(family: str) -> None:
    """Items the training windows never show keep their initial id vectors (scored by title alone); every
    other item's id vector and the title projection train. Without text nothing is held."""
    from seqrec_core.training import TrainConfig, train_model

    rows = [(f"u{u}", f"i{(u + t) % 6}", t) for u in range(30) for t in range(6)]
    rows += [("u0", "late", 6)]  # the test target of u0 (its val target is i0): never in a training window
    data = build_sequences(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))
    late = data.vocab.item_index("late")
    cfg = TrainConfig(epochs=2, batch_size=8, lr=1e-2, max_len=6, device="cpu", patience=10)
    for text in (True, False):
        torch.manual_seed(0)
        extra = {"text_encoder": "offline-test", "text_dim": 8} if text else {}
        model = build_model(family, data.vocab.n_items, hidden_size=16, max_len=6, dropout=0.0, **extra)
        if text:
            model.item_emb.text.set_matrix(torch.nn.functional.normalize(torch.randn(data.vocab.n_items + 1, 8), dim=1))
        ids = model.item_emb.base.weight if text else model.item_emb.weight
        before = ids.detach().clone()
        train_model(model, data, cfg)
        moved = (ids.detach() - before).abs().sum(1)  # (V + 1,)
        assert bool((moved[1:late] > 0).all()) and bool((moved[late + 1:] > 0).all())
        assert (moved[late] == 0) == text, (text, float(moved[late]))
        if text:
            assert model.item_emb.text.proj.weight.grad is not None


def test_training_holds_the_untied_output_rows_of_never_trained_items() -> None:
    """SASRec with BCE has a separate output table (plus the same title part): its rows for never-trained items
    are held too, else they are pushed down as negatives and the title cannot lift a cold item."""
    from seqrec_core.training import TrainConfig, train_model

    rows = [(f"u{u}", f"i{(u + t) % 6}", t) for u in range(30) for t in range(6)] + [("u0", "late", 6)]
    data = build_sequences(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))
    late = data.vocab.item_index("late")
    torch.manual_seed(0)
    model = build_model("sasrec", data.vocab.n_items, hidden_size=16, max_len=6, dropout=0.0, loss="bce",
                        text_encoder="offline-test", text_dim=8)
    assert model.out_emb is not None
    model.item_emb.text.set_matrix(torch.nn.functional.normalize(torch.randn(data.vocab.n_items + 1, 8), dim=1))
    before = model.out_emb.weight.detach().clone()
    train_model(model, data, TrainConfig(epochs=2, batch_size=8, lr=1e-2, max_len=6, device="cpu", patience=10))
    moved = (model.out_emb.weight.detach() - before).abs().sum(1)  # (V + 1,)
    assert moved[late] == 0 and bool((moved[1:late] > 0).all()) and bool((moved[late + 1:] > 0).all())


@pytest.mark.parametrize("family", FAMILIES)
def test_old_config_without_text_fields_loads_the_plain_model(family: str) -> None:
    torch.manual_seed(0)
    model = build_model(family, 9, hidden_size=16, max_len=6)
    stored = {k: v for k, v in model.config.to_dict().items() if k not in ("text_encoder", "text_dim")}
    again = model_from_config(stored)
    assert isinstance(again.item_emb, torch.nn.Embedding)
    assert set(again.state_dict()) == set(model.state_dict()) and "item_emb.weight" in again.state_dict()
    assert again.config.text_encoder is None and again.config.text_dim == 0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("encoder", "dim", "match"), [("enc", 0, "go together"), (None, 8, "go together"),
                                                       ("", 0, "text_encoder"), (None, -1, "text_dim"),
                                                       (None, True, "text_dim")])
def test_bad_text_options_are_one_line_input_errors(family: str, encoder, dim, match: str) -> None:
    with pytest.raises(InputError, match=match) as err:
        build_model(family, 9, hidden_size=16, max_len=6, text_encoder=encoder, text_dim=dim)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------ through the job
@pytest.mark.parametrize("family", FAMILIES)
def test_text_run_reloads_without_the_encoder(trained, family: str, monkeypatch) -> None:
    """The config records the encoder and its width, the text matrix comes back from model.safetensors, and the
    reloaded model reproduces the metrics the job measured on the trained model (same scores)."""
    from seqrec_core.evaluation import evaluate

    def no_encoder(*args, **kwargs):
        raise AssertionError("loading a run must not load the text encoder")

    monkeypatch.setattr(tf, "load_encoder", no_encoder)
    run = _load(trained, family)
    assert run.config["model"]["text_encoder"] == trained["encoder"] and run.config["model"]["text_dim"] == 32
    torch.testing.assert_close(run.model.item_emb.text.text, trained["text"])
    scorer = NeuralScorer(run.model, MAX_LEN, torch.device("cpu"))
    again = evaluate(scorer, trained["data"], "test").metrics
    recorded = trained["runs"][family, "text"]["metrics"]["test"]
    for key in ("HR@10", "NDCG@10", "MRR"):
        assert again[key] == pytest.approx(recorded[key], abs=1e-6), key
    plain = _load(trained, family, "plain")
    assert isinstance(plain.model.item_emb, torch.nn.Embedding)
    assert plain.config["model"]["text_encoder"] is None and plain.config["model"]["text_dim"] == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_titles_lift_a_never_trained_item(trained, family: str) -> None:
    """The re-listed item (never a training positive) ranks higher for its group's users with titles than
    without, right after the group's eight items (rank <= 10) for most users, in every family (BERT4Rec too since
    its value / output projections start at 1/sqrt(d) and never-trained items leave its training softmax)."""
    plain = _cold_ranks(trained, family, "plain")
    text = _cold_ranks(trained, family, "text")
    hits = {"plain": float(np.mean(plain <= 10)), "text": float(np.mean(text <= 10))}
    assert np.mean(text < plain) >= 0.7, np.mean(text < plain)  # per user: higher with titles
    # rank 9 = right after the group's eight items, above every other group's
    assert np.median(text) <= 10 < np.median(plain), (np.median(plain), np.median(text))
    assert hits["text"] >= 0.5 and hits["text"] >= hits["plain"] + 0.3, hits


def test_ig_completeness_on_a_text_aware_lsi(trained) -> None:
    """Sum of IG attributions = score(target | history) - score(target | baseline) for a text-aware model: the
    explainers swap item_emb for a proxy reading item_emb.weight, which here includes the title part."""
    from seqrec_core.explain import attribute_batch_full

    model = _load(trained, "lsi").model
    hists = [np.array([3, 9, 4, 4, 12, 30]), np.arange(1, 17), np.array([7])]
    for baseline in ("mean", "padding"):
        res = attribute_batch_full(model, hists, np.array([5, 6, 7]), "ig", steps=100, batch_size=2,
                                   baseline=baseline)
        total = np.array([s.sum() for s in res.scores])
        gap = res.target_scores - res.baseline_scores
        assert np.abs(gap).max() > 1e-3
        np.testing.assert_allclose(total, gap, atol=0.01 * np.abs(gap).max() + 1e-3)
        np.testing.assert_allclose(res.deltas, total - gap, atol=1e-4)

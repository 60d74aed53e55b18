"""The output layer behind ``output_weights()``: tied for every family but SASRec with bce/gbce (its own
``out_emb`` table), scores and explanations read it, the input table stays what ``item_embeddings()`` maps,
and runs keep their module set across save/load (old configs without the field load as tied)."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from successor_log import fit_successor, successor_ranks

from seqrec_core.data.sequences import Vocab
from seqrec_core.errors import InputError
from seqrec_core.explain import attribute_batch_full
from seqrec_core.models import build_model, model_from_config
from seqrec_core.models.sasrec import SASRecConfig

N_ITEMS = 30
SMALL = {"hidden_size": 16, "num_layers": 1, "max_len": 12, "dropout": 0.0}
FAMILY_OPTIONS = {"sasrec": {"num_heads": 2}, "bert4rec": {"num_heads": 2}, "gru4rec": {}, "lstm": {}, "lsi": {}}


def small(family: str = "sasrec", seed: int = 0, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(family, N_ITEMS, **SMALL, **FAMILY_OPTIONS[family], **kw).eval()


IDS = torch.tensor([[0, 0, 3, 7, 9], [1, 2, 3, 4, 5]])  # (2, 5) left-padded


@pytest.mark.parametrize("family", sorted(FAMILY_OPTIONS))
def test_every_family_scores_with_its_output_weights(family: str) -> None:
    model = small(family)
    w = model.output_weights()
    assert w.shape == (N_ITEMS + 1, 16)
    assert w is model.item_emb.weight and model.item_embeddings() is model.item_emb.weight  # tied
    with torch.no_grad():
        hidden = model.forward_hidden(IDS).hidden[:, -1]  # (2, D)
        scores = model.score(IDS)
    torch.testing.assert_close(scores[:, 1:], hidden @ w[1:].T)
    assert torch.isinf(scores[:, 0]).all()


@pytest.mark.parametrize(("loss", "tied"), [("full", True), ("sampled", True), ("bce", False), ("gbce", False)])
def test_unset_tied_output_follows_the_loss(loss: str, tied: bool) -> None:
    assert SASRecConfig(n_items=N_ITEMS, loss=loss).tied_output is tied  # resolved: saved configs hold a bool
    model = small(loss=loss)
    assert ("out_emb.weight" in model.state_dict()) is not tied
    forced = small(loss=loss, tied_output=not tied)  # an explicit value wins
    assert forced.config.tied_output is (not tied) and ("out_emb.weight" in forced.state_dict()) is tied
    with pytest.raises(InputError, match="tied_output"):
        SASRecConfig(n_items=N_ITEMS, loss=loss, tied_output="yes")


def test_untied_scores_read_out_emb_and_inputs_read_item_emb() -> None:
    model = small(loss="gbce")
    assert model.output_weights() is model.out_emb.weight and model.item_embeddings() is model.item_emb.weight
    with torch.no_grad():
        before = model.score(IDS)
        model.out_emb.weight[11] += 1.0  # an output row: only that column moves
        after = model.score(IDS)
        assert not torch.allclose(after[:, 11], before[:, 11])
        torch.testing.assert_close(after[:, :11], before[:, :11])
        torch.testing.assert_close(after[:, 12:], before[:, 12:])
        model.item_emb.weight[20] += 1.0  # input row of an item in no history: scores unchanged (untied)
        torch.testing.assert_close(model.score(IDS), after)
        model.item_emb.weight[3] += 1.0  # input row of an item in both histories: every column can move
        moved = model.score(IDS)
    assert (moved[:, 1:] - after[:, 1:]).abs().min(1).values.gt(0).all()


@pytest.mark.parametrize("loss", ["bce", "gbce"])
def test_binary_losses_get_an_intercept_left_out_of_scores(loss: str) -> None:
    from seqrec_core.models.neural import gbce_beta

    model = small(loss=loss, num_negatives=16)
    k, t = (1, 0.0) if loss == "bce" else (16, 0.75)
    assert model.out_bias.item() == pytest.approx(np.log(gbce_beta(k, N_ITEMS, t) / k), rel=1e-6)
    assert "out_bias" in model.state_dict()
    with torch.no_grad():
        model.out_bias.fill_(-3.0)  # moves every item alike: scores stay hidden @ output_weights().T
        hidden = model.forward_hidden(IDS).hidden[:, -1]  # (2, D)
        torch.testing.assert_close(model.score(IDS)[:, 1:], hidden @ model.output_weights()[1:].T)
    for kw in ({"loss": loss, "tied_output": True}, {"loss": "full", "tied_output": False}):
        assert small(**kw).out_bias is None and "out_bias" not in small(**kw).state_dict()  # the old module sets


def test_untied_gbce_trains_and_ranks_the_successor_first() -> None:
    model = small(loss="gbce", num_negatives=16)
    losses = fit_successor(model, epochs=25)
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])
    assert model.out_emb.weight.grad[0].abs().max() == 0  # the padding row never learns
    assert successor_ranks(model).float().mean() <= 2.0


@pytest.mark.parametrize("baseline", ["mean", "padding"])
def test_ig_completeness_with_an_untied_output(baseline: str) -> None:
    model = small(loss="gbce", seed=1)
    with torch.no_grad():
        model.out_emb.weight.mul_(20.0)  # scores far from those of the input table: a wrong read would show
    hists = [np.array([3, 9, 4, 4, 12, 29]), np.arange(1, 13), np.array([7])]
    targets = np.array([5, 6, 7])
    res = attribute_batch_full(model, hists, targets, "ig", steps=100, batch_size=2, baseline=baseline)
    with torch.no_grad():
        direct = np.array([model.score(torch.as_tensor(h)[None])[0, t].item()
                           for h, t in zip(hists, targets, strict=True)])
    np.testing.assert_allclose(res.target_scores, direct, rtol=1e-4, atol=1e-4)  # the explained score is score()
    total = np.array([s.sum() for s in res.scores])
    gap = res.target_scores - res.baseline_scores
    np.testing.assert_allclose(total, gap, atol=0.01 * np.abs(gap).max() + 1e-3)
    np.testing.assert_allclose(res.deltas, total - gap, atol=1e-4)


def test_untied_text_aware_model_adds_the_title_vector_to_both_tables() -> None:
    model = small(loss="gbce", text_encoder="some-encoder", text_dim=8)
    torch.manual_seed(3)
    model.item_emb.text.set_matrix(torch.nn.functional.normalize(torch.randn(N_ITEMS + 1, 8), dim=1))
    text = model.item_emb.text.item_matrix()  # (V + 1, D)
    torch.testing.assert_close(model.output_weights(), model.out_emb.weight + text)
    torch.testing.assert_close(model.item_embeddings(), model.item_emb.base.weight + text)
    assert not any(k.startswith("out_emb.text") for k in model.state_dict())  # one copy of the text matrix
    twin = copy.deepcopy(model)  # the output's reference to the text module follows the copy's own module
    assert twin._output_text is twin.item_emb.text and twin._output_text is not model._output_text
    loss = model.train()(IDS, torch.tensor([[0, 0, 7, 9, 2], [2, 3, 4, 5, 6]]))
    loss.backward()
    assert model.out_emb.weight.grad.abs().sum() > 0 and model.item_emb.text.proj.weight.grad.abs().sum() > 0


def _save(tmp_path, model, name: str, drop: tuple[str, ...] = ()):
    from seqrec_core.runs import save_run

    cfg = {k: v for k, v in model.config.to_dict().items() if k not in drop}
    vocab = Vocab.from_json(_vocab_json())
    return save_run(tmp_path / name, model=model, config={"family": "sasrec", "model": cfg}, vocab=vocab,
                    metrics={}, history=[])


def _vocab_json() -> dict:
    import pandas as pd

    from seqrec_core.data.sequences import build_sequences

    ev = pd.DataFrame({"user_id": ["u"] * N_ITEMS, "item_id": [f"i{k:02d}" for k in range(N_ITEMS)],
                       "timestamp": pd.to_datetime(np.arange(N_ITEMS), unit="s", utc=True)})
    return build_sequences(ev).vocab.to_json()


@pytest.mark.parametrize("loss", ["full", "gbce"])
def test_save_and_load_keep_the_module_set_and_scores(tmp_path, loss: str) -> None:
    from seqrec_core.runs import load_run

    model = small(loss=loss)
    folder = _save(tmp_path, model, loss)
    stored = json.loads((folder / "config.json").read_text())["model"]
    assert stored["tied_output"] is (loss == "full")  # explicit in every new run
    run = load_run(folder)
    assert set(run.model.state_dict()) == set(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(run.model.eval().score(IDS), model.score(IDS))


def test_an_old_softmax_config_without_the_field_loads_tied_and_scores_identically(tmp_path) -> None:
    from seqrec_core.runs import load_run

    model = small(loss="full")
    run = load_run(_save(tmp_path, model, "old", drop=("tied_output",)))
    assert run.model.config.tied_output is True and run.model.out_emb is None
    with torch.no_grad():
        torch.testing.assert_close(run.model.eval().score(IDS), model.score(IDS))


def test_an_old_gbce_config_without_the_field_loads_tied(tmp_path) -> None:
    """Runs saved before the option existed were tied whatever their loss; their config lacks the field."""
    from seqrec_core.runs import load_run

    model = small(loss="gbce", tied_output=True)
    stored = {k: v for k, v in model.config.to_dict().items() if k != "tied_output"}
    assert model_from_config({"family": "sasrec", **stored}).config.tied_output is True
    run = load_run(_save(tmp_path, model, "old", drop=("tied_output",)))
    with torch.no_grad():
        torch.testing.assert_close(run.model.eval().score(IDS), model.score(IDS))

"""GRU4Rec, LSTM and LSI: shapes, causality, padding invariance, LSI's windowed attention and gate, config
errors, training with the shared trainer, run round trips and Captum attributions (IG completeness, occlusion)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from seqrec_core.errors import InputError
from seqrec_core.explain import attribute, attribute_batch, attribute_batch_full
from seqrec_core.explain.attention import get_attention
from seqrec_core.models import MODEL_FAMILIES, ModelFamily, NeuralScorer, pad_left
from seqrec_core.models.lsi import LSIConfig, LSIRec
from seqrec_core.models.rnn import GRU4RecConfig, LSTMConfig, RNNRec
from seqrec_core.runs import load_run, save_run
from seqrec_core.training import TrainConfig, train_model

N_ITEMS = 40
FAMILIES = {"gru4rec": ModelFamily(GRU4RecConfig, RNNRec), "lstm": ModelFamily(LSTMConfig, RNNRec),
            "lsi": ModelFamily(LSIConfig, LSIRec)}
NAMES = list(FAMILIES)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a busy 2-core machine two threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def registered():
    """The families in the registry (as the lead's MODEL_FAMILIES lines will put them) for run round trips."""
    with pytest.MonkeyPatch.context() as mp:
        for name, fam in FAMILIES.items():
            mp.setitem(MODEL_FAMILIES, name, fam)
        yield


def tiny(family: str, **kw):
    torch.manual_seed(0)
    config_cls, model_cls = FAMILIES[family]
    opts = {"hidden_size": 16, "num_layers": 2, "max_len": 12, **kw}
    if family == "lsi":
        opts.setdefault("short_window", 3)
    return model_cls(config_cls(n_items=N_ITEMS, **opts)).eval()


@pytest.mark.parametrize("family", NAMES)
def test_shapes_and_padding_column(family: str) -> None:
    model = tiny(family)
    x = torch.tensor([[0, 0, 3, 7, 9], [1, 2, 3, 4, 5], [0, 0, 0, 0, 6]])
    with torch.no_grad():
        out = model.forward_hidden(x, output_attentions=True)
        scores = model.score(x)
    assert out.hidden.shape == (3, 5, 16)
    assert scores.shape == (3, N_ITEMS + 1)
    assert torch.isinf(scores[:, 0]).all() and (scores[:, 0] < 0).all() and torch.isfinite(scores[:, 1:]).all()
    assert model.item_embeddings().shape == (N_ITEMS + 1, 16)
    if family == "lsi":
        assert len(out.attentions) == 1 and out.attentions[0].shape == (3, 1, 5, 5)
    else:
        assert out.attentions is None
    assert (out.hidden[x == 0] == 0).all()  # padding positions carry no state
    np.testing.assert_allclose(NeuralScorer(model, 12).score_histories([np.array([3, 7, 9])])[0, 1:],
                               scores[0, 1:].numpy(), atol=1e-5)


@pytest.mark.parametrize("family", NAMES)
def test_changing_a_later_item_never_changes_earlier_states(family: str) -> None:
    model = tiny(family)
    x = torch.tensor([[0, 0, 3, 7, 9, 11, 2, 5]])
    y = x.clone()
    y[0, 5:] = torch.tensor([30, 31, 32])
    with torch.no_grad():
        hx, hy = model.forward_hidden(x).hidden, model.forward_hidden(y).hidden
    assert torch.allclose(hx[:, :5], hy[:, :5], atol=1e-6)
    assert not torch.allclose(hx[:, 5:], hy[:, 5:], atol=1e-4)


@pytest.mark.parametrize("family", NAMES)
def test_more_left_padding_and_longer_input_give_the_same_scores(family: str) -> None:
    model = tiny(family)
    short = torch.tensor([[0, 4, 8, 15], [0, 0, 0, 16], [1, 2, 3, 4]])
    padded = torch.cat([torch.zeros(3, 6, dtype=torch.long), short], dim=1)
    with torch.no_grad():
        a, b = model.score(short), model.score(padded)
        ha, hb = model.forward_hidden(short).hidden, model.forward_hidden(padded).hidden[:, -4:]
        # a history longer than max_len is cut to its last max_len events
        long = torch.arange(1, 21)[None]  # (1, 20)
        c, d = model.score(long), model.score(long[:, -12:])
    assert torch.allclose(a[:, 1:], b[:, 1:], atol=1e-5)
    assert torch.allclose(ha, hb, atol=1e-5)
    assert torch.allclose(c[:, 1:], d[:, 1:], atol=1e-5)


@pytest.mark.parametrize("family", NAMES)
def test_loss_decreases_when_fitting_a_tiny_log(family: str) -> None:
    model = tiny(family, dropout=0.0, num_layers=1).train()
    starts = torch.arange(16)[:, None]
    x = (starts + torch.arange(8)[None, :]) % N_ITEMS + 1  # each user walks the catalogue in order
    y = x % N_ITEMS + 1  # ... so the next item is always the successor
    x[:4, :3] = 0  # some rows left-padded, their first targets unused
    y[:4, :3] = 0
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert model.item_emb.weight.grad[0].abs().max() == 0  # the padding vector never learns
    assert losses[-1] < 0.5 * losses[0]


def test_lsi_attention_stays_in_its_window_and_rows_sum_to_one() -> None:
    window = 3
    model = tiny("lsi", short_window=window)
    x = torch.tensor([[0, 0, 0, 5, 6, 7, 8, 9], [0] * 8, [1, 2, 3, 4, 5, 6, 7, 8]])
    with torch.no_grad():
        (att,) = model.forward_hidden(x, output_attentions=True).attentions
        parts = model.forward_parts(x)
    att = att[:, 0]  # (B, T, T)
    assert not torch.isnan(att).any() and not torch.isnan(parts.hidden).any()
    assert torch.allclose(att.sum(-1), torch.ones(3, 8), atol=1e-5)
    q, k = torch.arange(8)[:, None], torch.arange(8)[None, :]
    outside = (k > q) | (k <= q - window)  # the future and events older than the window
    assert att[:, outside].abs().max() == 0
    real = x != 0
    assert att[0][3:, :3].abs().max() == 0  # a real query never looks at padding
    inside = ~outside & real[0][None, :] & real[0][:, None]  # (T, T) real query, real key in its window
    assert (att[0][inside] > 0).all() and (att[2][~outside] > 0).all()  # ... and sees every event there
    assert torch.equal(att[1], torch.eye(8))  # an all-padding row attends to itself (no empty softmax)
    # the gate mixes the two parts per dimension, strictly between them
    assert (parts.gate > 0).all() and (parts.gate < 1).all()
    mix = parts.gate * parts.long + (1 - parts.gate) * parts.short
    assert torch.allclose(parts.hidden[real], mix[real], atol=1e-6)
    # the Explain page's attention map: one layer, one head over the real events only
    maps = get_attention(model, np.array([5, 6, 7, 8, 9]))
    assert maps.weights.shape == (1, 1, 5, 5)
    np.testing.assert_allclose(maps.last_row(), [0, 0, *att[0, -1, -3:].numpy()], atol=1e-6)


def test_lsi_with_a_window_of_one_reads_only_the_latest_event() -> None:
    model = tiny("lsi", short_window=1)
    x = torch.tensor([[0, 0, 4, 5, 6]])
    with torch.no_grad():
        (att,) = model.forward_hidden(x, output_attentions=True).attentions
    assert torch.equal(att[0, 0], torch.eye(5))


@pytest.mark.parametrize("family, options, word", [
    ("gru4rec", {"hidden_size": 0}, "hidden_size"), ("lstm", {"dropout": 1.5}, "dropout"),
    ("gru4rec", {"num_layers": "2"}, "num_layers"), ("lsi", {"short_window": 0}, "short_window"),
    ("lsi", {"max_len": True}, "max_len"), ("gru4rec", {"family": "lstm"}, "family"),
    ("lsi", {"family": "sasrec"}, "family"), ("lstm", {"item_dropout": 1.0}, "item_dropout"),
    ("lsi", {"item_dropout": -0.2}, "item_dropout"),
])
def test_bad_options_are_one_line_input_errors(family: str, options: dict, word: str) -> None:
    with pytest.raises(InputError, match=word) as err:
        FAMILIES[family].config_cls(n_items=N_ITEMS, **options)
    assert "\n" not in str(err.value)


def test_configs_name_their_family_and_options() -> None:
    assert GRU4RecConfig(n_items=5).family == "gru4rec" and LSTMConfig(n_items=5).family == "lstm"
    assert GRU4RecConfig.option_names() == ["hidden_size", "num_layers", "dropout", "item_dropout", "max_len",
                                            "text_encoder", "text_dim"]
    assert LSIConfig.option_names() == ["hidden_size", "num_layers", "dropout", "item_dropout", "max_len",
                                        "short_window", "text_encoder", "text_dim"]
    assert LSIConfig(n_items=5, short_window=7).to_dict() == {
        "n_items": 5, "hidden_size": 64, "num_layers": 1, "dropout": 0.3, "item_dropout": 0.0, "max_len": 50,
        "short_window": 7, "text_encoder": None, "text_dim": 0, "family": "lsi"}
    assert isinstance(RNNRec(LSTMConfig(n_items=5)).rnn, torch.nn.LSTM)
    assert isinstance(RNNRec(GRU4RecConfig(n_items=5)).rnn, torch.nn.GRU)


# ------------------------------------------------------------------------------ trained on the small demo log
@pytest.fixture(scope="module")
def trained(small_dataset, registered, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Each family trained 2 epochs by the shared trainer, saved as a run and loaded back."""
    data = small_dataset.sequences
    out = {}
    for family in NAMES:
        config_cls, model_cls = FAMILIES[family]
        torch.manual_seed(0)
        model = model_cls(config_cls(n_items=data.vocab.n_items, hidden_size=16, max_len=20))
        result = train_model(model, data,
                             TrainConfig(epochs=2, batch_size=32, lr=1e-2, max_len=20, device="cpu", seed=0))
        path = save_run(tmp_path_factory.mktemp(family) / "run", model=result.model, config={"train": {}},
                        vocab=data.vocab, metrics={}, history=result.history)
        out[family] = (result, path)
    return out


@pytest.mark.parametrize("family", NAMES)
def test_trainer_trains_and_runs_round_trip(family: str, trained, small_dataset) -> None:
    result, path = trained[family]
    data = small_dataset.sequences
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert all(np.isfinite(row["train_loss"]) for row in result.history)
    assert result.history[1]["train_loss"] < result.history[0]["train_loss"]
    run = load_run(path)
    assert run.family == family and type(run.model) is type(result.model)
    hists = [data.sequences[u][:-1] for u in range(8)]
    expected = NeuralScorer(result.model, 20).score_histories(hists)
    np.testing.assert_array_equal(run.scorer().score_histories(hists), expected)


@pytest.mark.parametrize("family", NAMES)
def test_ig_is_complete_and_occlusion_is_the_removal_drop(family: str, trained, small_dataset) -> None:
    model = trained[family][0].model.eval()
    data = small_dataset.sequences
    split = data.split("test")
    hists, targets = split.histories[:6], split.targets[:6]
    for baseline in ("mean", "padding"):
        res = attribute_batch_full(model, hists, targets, "ig", steps=64, baseline=baseline)
        assert [len(s) for s in res.scores] == [min(len(h), 20) for h in hists]
        total = np.array([s.sum() for s in res.scores])
        gap = res.target_scores - res.baseline_scores
        assert np.abs(gap).max() > 0.02  # the history moves the scores
        np.testing.assert_allclose(total, gap, atol=0.01 * np.abs(gap).max() + 1e-4)
        np.testing.assert_allclose(res.deltas, total - gap, atol=1e-3)
    shap = attribute_batch(model, hists[:2], targets[:2], "gradshap", steps=8)
    assert [len(s) for s in shap] == [min(len(h), 20) for h in hists[:2]] and all(np.isfinite(s).all() for s in shap)
    occ = attribute_batch(model, hists[:2], targets[:2], "occlusion")
    hist = np.asarray(hists[0])[-20:]
    with torch.no_grad():
        full = model.score(pad_left([hist], 20))[0, targets[0]].item()
        for pos in (0, len(hist) - 1):
            dropped = model.score(pad_left([np.delete(hist, pos)], 20))[0, targets[0]].item()
            assert occ[0][pos] == pytest.approx(full - dropped, abs=1e-4)
    run = SimpleNamespace(model=model, vocab=data.vocab, max_len=20)  # what attribute() needs of a Run
    user = data.vocab.user_ids[0]
    a = attribute(run, data, user, "heldout", "ig", steps=32)
    assert abs(a.convergence_delta) <= 0.01 * (abs(a.target_score - a.baseline_score) + 0.1) or a.steps == 800
    if family == "lsi":  # its short-window attention feeds the attention view
        att = attribute_batch(model, hists, targets, "attention")
        np.testing.assert_allclose([s.sum() for s in att], 1.0, atol=1e-5)
    else:
        with pytest.raises(InputError, match="no attention"):
            attribute_batch(model, hists[:1], targets[:1], "attention")


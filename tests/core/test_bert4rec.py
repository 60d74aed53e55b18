"""BERT4Rec: shapes and the score contract, the cloze mask really hides what it asks for, bidirectional but
padding-blind attention, training through the one trainer, runs, and explanations (IG, occlusion, attention)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seqrec_core.errors import InputError
from seqrec_core.models import MODEL_FAMILIES, ModelFamily, NeuralScorer, pad_left
from seqrec_core.models.batches import batch_order, iterate_batches, training_windows
from seqrec_core.models.bert4rec import BERT4Rec, BERT4RecConfig

N_ITEMS = 40


def _model(seed: int = 0, **kw) -> BERT4Rec:
    torch.manual_seed(seed)
    opts = {"hidden_size": 16, "num_layers": 2, "num_heads": 2, "dropout": 0.0, "max_len": 12} | kw
    return BERT4Rec(BERT4RecConfig(n_items=N_ITEMS, **opts)).eval()


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The family as the lead registers it (a no-op once seqrec_core.models lists it)."""
    monkeypatch.setitem(MODEL_FAMILIES, "bert4rec", ModelFamily(BERT4RecConfig, BERT4Rec))


def _tiny_log(n_users: int = 80, seed: int = 0) -> list[np.ndarray]:
    """Cyclic habits: each user walks item k -> k + 1 (mod 20) from a random start for 3-14 steps; easy to
    learn, and the varied lengths keep the model from reading the answer off absolute positions."""
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 20) + np.arange(rng.integers(3, 15))) % 20 + 1 for _ in range(n_users)]


def _fit(model: BERT4Rec, seqs: list[np.ndarray], steps: int) -> list[float]:
    windows, lengths, masked = training_windows(seqs, model.config.max_len)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    losses: list[float] = []
    model.train()
    while len(losses) < steps:
        for x, y in iterate_batches(windows, lengths, batch_order(lengths, 32, rng), masked):
            loss = model(x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    model.eval()
    return losses


@pytest.fixture(scope="module")
def trained() -> BERT4Rec:
    """A model that learned the cyclic habit (a few seconds); one thread: the test machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = _model(seed=1, mask_prob=0.2, mask_last_prob=0.5)  # inference case often: fewer steps needed
        torch.manual_seed(1)
        _fit(model, _tiny_log(), 200)
    finally:
        torch.set_num_threads(threads)
    return model


# ----------------------------------------------------------------------------------------------- config
def test_config_validates_and_lists_its_options() -> None:
    cfg = BERT4RecConfig(n_items=5)
    assert cfg.family == "bert4rec" and cfg.to_dict()["mask_prob"] == 0.6
    assert "mask_prob" in BERT4RecConfig.option_names() and "n_items" not in BERT4RecConfig.option_names()
    for bad in ({"mask_prob": 0.0}, {"mask_prob": 1.5}, {"mask_last_prob": -0.1}, {"dropout": 1.0},
                {"hidden_size": 10, "num_heads": 3}, {"max_len": 0}, {"family": "sasrec"}):
        with pytest.raises(InputError) as err:
            BERT4RecConfig(n_items=5, **bad)
        assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------ inference
def test_shapes_and_score_contract() -> None:
    model = _model()
    ids = pad_left([np.array([3, 4, 5]), np.arange(1, 30)], 12)  # (2, 12): the long one is cut to its tail
    out = model.forward_hidden(ids)
    assert out.hidden.shape == (2, 13, 16) and out.attentions is None  # 12 events + the appended mask
    assert out.hidden.shape[1] - ids.shape[1] == model.appended_tokens == 1 and not model.causal
    scores = model.score(ids)
    assert scores.shape == (2, N_ITEMS + 1)
    assert torch.isneginf(scores[:, 0]).all() and torch.isfinite(scores[:, 1:]).all()
    # the last hidden column scores the next item, as the explainers assume
    torch.testing.assert_close(scores[:, 1:], out.hidden[:, -1] @ model.item_emb.weight[1:].T)
    # longer inputs are cut to the last max_len columns
    torch.testing.assert_close(model.score(pad_left([np.arange(1, 30)], 40)), scores[1:])
    assert model.item_embeddings().shape == (N_ITEMS + 1, 16)
    np_scores = NeuralScorer(model, 12).score_histories([np.array([3, 4, 5])])
    assert np_scores.dtype == np.float32 and np.isneginf(np_scores[0, 0])


def test_left_padding_changes_nothing(trained: BERT4Rec) -> None:
    hists = [np.array([3, 4, 5]), np.array([9, 10, 11, 12, 13, 14, 15])]
    tight = trained.score(pad_left(hists, 12))  # (2, V + 1) width 7
    wide = trained.score(pad_left(hists, 12, width=12))  # (2, V + 1) more left padding
    single = trained.score(pad_left(hists[:1], 12))  # the short history alone: no padding at all
    torch.testing.assert_close(tight[:, 1:], wide[:, 1:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tight[:1, 1:], single[:, 1:], atol=1e-5, rtol=1e-5)
    # the same holds for the training states (cloze_hidden) of the real columns
    seq = pad_left([np.array([3, 4, 5, 6])], 12, width=4)
    masked = torch.tensor([[False, True, False, False]])
    h = trained.cloze_hidden(seq, masked)
    h_wide = trained.cloze_hidden(torch.cat([torch.zeros(1, 5, dtype=torch.long), seq], 1),
                                  torch.cat([torch.zeros(1, 5, dtype=torch.bool), masked], 1))
    torch.testing.assert_close(h, h_wide[:, 5:], atol=1e-5, rtol=1e-5)


def test_trained_model_ranks_the_habit(trained: BERT4Rec) -> None:
    """Most 4-step walks k..k+3 get k+4 as the top item (one walk alone flips with float rounding in training)."""
    walks = [(np.arange(k, k + 4) - 1) % 20 + 1 for k in range(1, 21)]  # the habit says k + 4 comes next
    top = trained.score(pad_left(walks, 12)).argmax(1)  # (20,)
    nexts = torch.tensor([(k + 3) % 20 + 1 for k in range(1, 21)])
    assert (top == nexts).float().mean() >= 0.5


# ---------------------------------------------------------------------------------------------- masking
def test_cloze_mask_hides_real_events_only() -> None:
    model = _model(mask_prob=0.3, mask_last_prob=0.0)
    seq = pad_left([np.arange(1, 1 + n) for n in np.random.default_rng(0).integers(1, 12, 2000)], 12)
    torch.manual_seed(0)
    masked = model.cloze_mask(seq)
    assert not masked[seq == 0].any()  # never padding
    assert masked.any(1).all()  # at least one event per row
    share = masked.sum().item() / (seq != 0).sum().item()
    assert 0.3 <= share <= 0.4  # mask_prob, plus the forced one in rows the dice left empty
    last_only = _model(mask_last_prob=1.0).cloze_mask(seq)
    assert last_only[:, -1].all() and not last_only[:, :-1].any()  # exactly the inference case
    half = _model(mask_last_prob=0.5).cloze_mask(seq)
    only_last = half[:, -1] & (half.sum(1) == 1)
    assert 0.45 <= only_last.float().mean().item() <= 0.65


def test_the_mask_hides_the_target_and_attention_is_bidirectional() -> None:
    model = _model(seed=2)
    seq = torch.tensor([[0, 0, 3, 4, 5, 6, 7]])  # (1, 7)
    masked = torch.zeros_like(seq, dtype=torch.bool)
    masked[0, 4] = True  # item 5 hidden
    base = model.cloze_hidden(seq, masked)[0, 4]
    changed_target = seq.clone()
    changed_target[0, 4] = 20
    torch.testing.assert_close(model.cloze_hidden(changed_target, masked)[0, 4], base)  # the target is invisible
    later = seq.clone()
    later[0, 6] = 20  # an unmasked LATER event changes the earlier masked column's state (not causal)
    assert (model.cloze_hidden(later, masked)[0, 4] - base).abs().max() > 1e-4
    earlier = seq.clone()
    earlier[0, 2] = 20
    assert (model.cloze_hidden(earlier, masked)[0, 4] - base).abs().max() > 1e-4
    # at inference too, the oldest event's state sees the latest one
    h = model.forward_hidden(pad_left([np.array([3, 4, 5])], 12)).hidden[0, 0]
    h2 = model.forward_hidden(pad_left([np.array([3, 4, 9])], 12)).hidden[0, 0]
    assert (h - h2).abs().max() > 1e-4


def test_forward_is_cross_entropy_of_the_masked_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(seed=3)
    x = torch.tensor([[0, 3, 4, 5], [6, 7, 8, 9]])
    y = torch.tensor([[0, 4, 5, 11], [7, 8, 9, 12]])  # next items; the window's full sequence ends with y[:, -1]
    seq = torch.tensor([[0, 3, 4, 5, 11], [6, 7, 8, 9, 12]])
    fixed = torch.zeros_like(seq, dtype=torch.bool)
    fixed[0, 4] = fixed[1, 1] = fixed[1, 3] = True
    monkeypatch.setattr(model, "cloze_mask", lambda s: (torch.equal(s, seq) or pytest.fail("wrong sequence"),
                                                        fixed)[1])
    loss = model(x, y)
    logits = model.cloze_hidden(seq, fixed)[fixed] @ model.item_emb.weight[1:].T  # (3, V)
    expected = torch.nn.functional.cross_entropy(logits, seq[fixed] - 1)
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)


def test_loss_decreases_on_a_tiny_log() -> None:
    torch.manual_seed(0)
    losses = _fit(_model(seed=4), _tiny_log(seed=4), 40)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5
    assert all(np.isfinite(losses))



# ------------------------------------------------------------------------------------ never-trained items
def test_a_masked_column_sees_its_context_from_the_start() -> None:
    """Value and attention-output projections start at LeCun scale (std 1 / sqrt(d)), queries and keys at BERT's
    0.02: at initialisation the mask's state already moves with its context (about 25-35% here; with 0.02
    everywhere it moved by about 0.5%, and small models learned their mask states slowly)."""
    model = _model(seed=5, hidden_size=32, num_layers=1)
    layer = model.backbone.encoder.layer[0]
    for linear in (layer.attention.self.value, layer.attention.output.dense):
        assert linear.weight.std().item() == pytest.approx(32 ** -0.5, rel=0.1)
        assert linear.bias.abs().max() == 0
    assert layer.attention.self.query.weight.std().item() == pytest.approx(0.02, rel=0.15)
    with torch.no_grad():
        a = model.forward_hidden(pad_left([np.array([3, 4, 5])], 12)).hidden[0, -1]  # (D,) the mask's state
        b = model.forward_hidden(pad_left([np.array([13, 14, 15])], 12)).hidden[0, -1]
    assert ((a - b).norm() / a.norm()).item() > 0.1


def _text_model(seed: int = 6) -> BERT4Rec:
    model = _model(seed=seed, text_encoder="offline-test", text_dim=8)
    model.item_emb.text.set_matrix(torch.nn.functional.normalize(torch.randn(N_ITEMS + 1, 8), dim=1))
    return model


def test_never_trained_items_are_no_candidates_of_the_text_models_training_loss() -> None:
    """With item text, items without training events leave the training softmax (only their title scores them,
    and a permanent negative would teach the shared projection that their title is never chosen); the loss is
    the cross-entropy over the trained items, scoring still ranks all items, nothing new is saved."""
    model = _text_model()
    keys = set(model.state_dict())
    counts = torch.ones(N_ITEMS)
    counts[29:] = 0  # items 30..40 never trained
    model.set_item_counts(counts)
    assert set(model.state_dict()) == keys  # the run format is unchanged
    x = torch.tensor([[0, 3, 4, 5], [6, 7, 8, 9]])
    y = torch.tensor([[0, 4, 5, 11], [7, 8, 9, 12]])
    seq = torch.tensor([[0, 3, 4, 5, 11], [6, 7, 8, 9, 12]])
    fixed = torch.zeros_like(seq, dtype=torch.bool)
    fixed[0, 4] = fixed[1, 1] = fixed[1, 3] = True
    model.cloze_mask = lambda s: fixed  # type: ignore[method-assign]
    loss = model(x, y)
    logits = model.cloze_hidden(seq, fixed)[fixed] @ model.item_emb.weight[1:30].T  # (3, 29) trained items only
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, seq[fixed] - 1), atol=1e-5, rtol=1e-5)
    loss.backward()
    assert model.item_emb.base.weight.grad[30:].abs().max() == 0  # no gradient reaches an untrained item's row
    assert model.item_emb.base.weight.grad[1:30].abs().sum(1).min() > 0
    with torch.no_grad():
        assert torch.isfinite(model.score(x)[:, 1:]).all()  # every item is still ranked
    model.set_item_counts(torch.ones(N_ITEMS))  # everything trained: the full softmax again
    assert model._candidates is None


def test_without_text_untrained_items_stay_candidates() -> None:
    """Without titles nothing changes: an item without training events is a negative like any other."""
    model = _model(seed=7)
    counts = torch.ones(N_ITEMS)
    counts[29:] = 0
    model.set_item_counts(counts)
    assert model._candidates is None
    x, y = torch.tensor([[0, 3, 4, 5]]), torch.tensor([[0, 4, 5, 11]])
    model(x, y).backward()
    assert model.item_emb.weight.grad[30:].abs().sum(1).min() > 0

# ---------------------------------------------------------------------------------------------- attention
def test_attention_rows_sum_to_one_over_real_columns(trained: BERT4Rec) -> None:
    ids = pad_left([np.array([3, 4, 5]), np.array([6, 7, 8, 9, 10])], 12)  # (2, 5)
    out = trained.forward_hidden(ids, output_attentions=True)
    assert len(out.attentions) == 2
    for att in out.attentions:
        assert att.shape == (2, 2, 6, 6)  # (B, H, T + 1, T + 1): the mask column included
        torch.testing.assert_close(att.sum(-1), torch.ones(2, 2, 6))
        assert att[0, :, 2:, :2].abs().max() == 0  # the real queries of the short row never look at padding
        assert att[1, :, 0, 1:].sum(-1).min() > 0  # bidirectional: the oldest event attends to later ones
    # the eager switch is temporary and changes no score
    torch.testing.assert_close(out.hidden, trained.forward_hidden(ids).hidden, atol=1e-5, rtol=1e-5)
    from seqrec_core.models.fast_attention import ATTENTION

    assert trained.backbone.config._attn_implementation == ATTENTION  # back to the training/scoring attention


# ---------------------------------------------------------------------------------- trainer, runs, explain
@pytest.fixture(scope="module")
def small_run(small_dataset, tmp_path_factory: pytest.TempPathFactory):
    """BERT4Rec trained by the one trainer for 2 epochs on the small demo log, saved as a run."""
    from seqrec_core.runs import save_run
    from seqrec_core.training import TrainConfig, train_model

    data = small_dataset.sequences
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = BERT4Rec(BERT4RecConfig(n_items=data.vocab.n_items, hidden_size=16, num_layers=1, num_heads=1,
                                        max_len=20))
        cfg = TrainConfig(epochs=2, batch_size=64, max_len=20, device="cpu", seed=0, lr=5e-3)
        result = train_model(model, data, cfg)
    finally:
        torch.set_num_threads(threads)
    path = save_run(tmp_path_factory.mktemp("runs") / "tiny-bert4rec", model=result.model,
                    config={"train": cfg.to_dict()}, vocab=data.vocab, metrics={}, history=result.history)
    return result, path, data


def test_train_model_runs_two_epochs(small_run) -> None:
    result, _, data = small_run
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert all(np.isfinite(h["train_loss"]) for h in result.history)
    assert result.history[1]["train_loss"] < result.history[0]["train_loss"]
    assert result.best_val > 0  # better than nothing on the planted demo
    assert not result.model.training


def test_run_round_trip_reproduces_scores(small_run, registered) -> None:
    from seqrec_core.runs import load_run

    result, path, data = small_run
    run = load_run(path)
    assert run.family == "bert4rec" and isinstance(run.model, BERT4Rec)
    hists = data.split("test").histories[:16]
    np.testing.assert_array_equal(run.scorer().score_histories(hists),
                                  NeuralScorer(result.model, 20).score_histories(hists))


def test_ig_completeness_and_occlusion(trained: BERT4Rec) -> None:
    from seqrec_core.explain import attribute_batch, attribute_batch_full

    hists = [np.array([5, 6, 7, 8]), np.array([12, 13, 14, 15, 16, 17, 18, 19, 20, 1, 2, 3, 4]), np.array([9])]
    targets = np.array([9, 5, 17])  # two habit continuations and one unlikely item
    for baseline in ("mean", "padding"):
        res = attribute_batch_full(trained, hists, targets, "ig", steps=64, baseline=baseline)
        assert [len(s) for s in res.scores] == [4, 12, 1]
        with torch.no_grad():
            full = trained.score(pad_left(hists, 12))[torch.arange(3), torch.as_tensor(targets)].numpy()
        np.testing.assert_allclose(res.target_scores, full, atol=1e-4)
        total = np.array([s.sum() for s in res.scores])
        gap = res.target_scores - res.baseline_scores
        assert np.abs(gap).max() > 1.0  # a real gap to explain, not a degenerate model
        np.testing.assert_allclose(total, gap, atol=0.02 * np.abs(gap).max() + 1e-3)
        np.testing.assert_allclose(res.deltas, total - gap, atol=1e-3)  # Captum's delta is the completeness gap
    occ = attribute_batch(trained, hists, targets, "occlusion")
    assert [len(s) for s in occ] == [4, 12, 1]
    with torch.no_grad():  # occlusion = the score drop when the event is removed
        dropped = trained.score(pad_left([hists[0][:-1]], 12))[0, 9].item()
    assert occ[0][-1] == pytest.approx(full[0] - dropped, abs=1e-4)
    assert occ[0][-1] > 0  # the latest event of the habit supports its continuation


def test_explain_attribute_on_a_trained_run(small_run, registered) -> None:
    """The user-facing verb on a run the trainer made: IG refined to a small convergence delta, occlusion."""
    from seqrec_core.explain import attribute
    from seqrec_core.runs import load_run

    _, path, data = small_run
    run = load_run(path)
    user = data.vocab.user_ids[int(data.split("test").users[0])]
    ig = attribute(run, data, user, "heldout", "ig", steps=32)
    assert abs(ig.convergence_delta) <= 0.01 * (abs(ig.target_score - ig.baseline_score) + 0.1) or ig.steps == 800
    occ = attribute(run, data, user, "heldout", "occlusion")
    assert len(occ.scores) == len(ig.scores) > 0 and np.isfinite(occ.scores).all()


def test_attention_views_and_the_attention_method_handle_the_appended_mask_token() -> None:
    from seqrec_core.explain.attention import get_attention
    from seqrec_core.explain.engines import run_attention

    model = _model()
    history = np.array([3, 7, 2, 9, 4], dtype=np.int64)
    maps = get_attention(model, history)
    assert maps.appended == 1 and maps.weights.shape[-2:] == (6, 6)  # 5 events + the mask (prediction point)
    row = maps.prediction_row(maps.rollout())
    assert row.shape == (5,) and row.sum() == pytest.approx(1.0, abs=1e-5) and (row >= 0).all()
    ids = torch.tensor([[0, 0, *history]])  # (1, 7) left-padded
    engine = run_attention(model, ids, torch.tensor([5]))
    scores = engine[0][0].numpy()  # (7,) attribution per column: padding 0, events = the prediction row
    assert scores[:2].tolist() == [0.0, 0.0] and scores[2:].sum() == pytest.approx(1.0, abs=1e-5)

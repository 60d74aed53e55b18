"""Item text features: a tiny BERT built from a config (offline) reads titles; vectors are mean-pooled over real
tokens, unit length, cached on disk, and the text matrix travels with a module's safetensors weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seqrec_core.data.sequences import Vocab
from seqrec_core.errors import InputError
from seqrec_core.models import text_features as tf
from seqrec_core.models.text_features import (
    TextAwareItemEmbedding,
    TextItemFeatures,
    check_text_options,
    encode_item_texts,
    item_text_matrix,
    item_texts,
)

WORDS = ("[PAD] [UNK] [CLS] [SEP] [MASK] red blue green lipstick matte shampoo for dry hair nail polish the a "
         "gel cream face mask eye shadow palette makeup skin").split()


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    """A 1-layer, 32-wide BERT with random weights and a word-level vocabulary, saved as a local checkpoint."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)})
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=64, max_position_embeddings=64))
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Every test starts with an empty encoding cache of its own."""
    monkeypatch.setenv(tf.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_shapes_unit_norm_and_empty_texts_are_zero(encoder_dir, own_cache):
    texts = ["red lipstick", "", "blue shampoo for dry hair", "   ", "nail polish"]
    vecs = encode_item_texts(texts, encoder_dir)
    assert vecs.shape == (5, 32) and vecs.dtype == np.float32
    norms = np.linalg.norm(vecs, axis=1)
    np.testing.assert_allclose(norms[[0, 2, 4]], 1.0, atol=1e-5)
    assert not vecs[[1, 3]].any()
    assert len(list(own_cache.rglob("*.npy"))) == 1


def test_same_title_same_vector_different_titles_differ_and_deterministic(encoder_dir, tmp_path, monkeypatch):
    texts = ["red lipstick", "green face mask", "red lipstick", "red  lipstick "]
    first = encode_item_texts(texts, encoder_dir)
    monkeypatch.setenv(tf.CACHE_ENV, str(tmp_path / "other_cache"))  # encode again from scratch
    second = encode_item_texts(texts, encoder_dir, batch_size=1)
    np.testing.assert_allclose(first, second, atol=1e-6)
    assert np.array_equal(first[0], first[2]) and np.array_equal(first[0], first[3])  # whitespace normalised
    assert np.abs(first[0] - first[1]).max() > 1e-3


def test_cache_hit_does_not_load_the_encoder(encoder_dir, monkeypatch):
    texts = ["eye shadow palette", "gel cream"]
    first = encode_item_texts(texts, encoder_dir)

    def no_load(*args, **kwargs):
        raise AssertionError("the encoder was loaded although the encodings were cached")

    monkeypatch.setattr(tf, "load_encoder", no_load)
    assert np.array_equal(encode_item_texts(texts, encoder_dir), first)
    with pytest.raises(AssertionError):  # other texts (or a longer max_length) are a miss
        encode_item_texts(texts + ["skin cream"], encoder_dir)
    with pytest.raises(AssertionError):
        encode_item_texts(texts, encoder_dir, max_length=8)


def test_corrupt_cache_is_recomputed(encoder_dir, own_cache):
    texts = ["matte lipstick"]
    first = encode_item_texts(texts, encoder_dir)
    (path,) = own_cache.rglob("*.npy")
    path.write_bytes(b"not a numpy file")
    np.testing.assert_allclose(encode_item_texts(texts, encoder_dir), first, atol=1e-6)


def test_progress_reports_and_a_raising_callback_stops_without_caching(encoder_dir, own_cache):
    texts = ["red lipstick", "blue shampoo", "green face mask", "nail polish", "red lipstick", ""]
    seen = []
    encode_item_texts(texts, encoder_dir, batch_size=2, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(2, 4), (4, 4)]  # distinct non-empty texts, one call per batch

    class Cancelled(Exception):
        pass

    def cancel(done, total):
        raise Cancelled

    with pytest.raises(Cancelled):
        encode_item_texts(texts + ["gel cream"], encoder_dir, batch_size=2, progress=cancel)
    assert len(list(own_cache.rglob("*.npy"))) == 1  # only the first, finished encoding


def test_mean_pooling_ignores_padding(encoder_dir):
    """A short text batched with a long one (so it is padded) gets the same vector as when it is alone, and that
    vector is the normalised mean of the encoder's outputs over the text's real tokens."""
    from transformers import AutoModel, AutoTokenizer

    short = "red lipstick"
    alone = encode_item_texts([short], encoder_dir)[0]
    long_text = "the blue shampoo for dry hair and a green face mask cream for skin makeup"
    padded = encode_item_texts([short, long_text], encoder_dir, batch_size=2)[0]
    np.testing.assert_allclose(alone, padded, atol=1e-5)

    tokenizer = AutoTokenizer.from_pretrained(encoder_dir, local_files_only=True)
    model = AutoModel.from_pretrained(encoder_dir, local_files_only=True).eval()
    with torch.no_grad():
        hidden = model(**tokenizer([short], return_tensors="pt")).last_hidden_state[0]  # (L, H) no padding
    expected = hidden.mean(0) / hidden.mean(0).norm()
    np.testing.assert_allclose(alone, expected.numpy(), atol=1e-5)


def test_truncation_to_max_length(encoder_dir):
    words = "red blue green lipstick matte shampoo for dry hair nail polish"
    vecs = encode_item_texts([words, words + " gel cream face mask"], encoder_dir, max_length=6)
    np.testing.assert_allclose(vecs[0], vecs[1], atol=1e-6)  # both cut to [CLS] + 4 words + [SEP]


def test_hub_name_offline_is_one_line_input_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError) as err:
        encode_item_texts(["red lipstick"], "seqrec-tests/no-such-encoder")
    msg = str(err.value)
    assert "\n" not in msg and "seqrec-tests/no-such-encoder" in msg
    assert "download it once or pass a local folder" in msg and "`make text-model` installs" in msg


def test_hub_name_unreachable_fails_fast_without_download(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(tf, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(InputError) as err:
        encode_item_texts(["red lipstick"], "seqrec-tests/no-such-encoder")
    msg = str(err.value)
    assert "\n" not in msg and "cannot be reached" in msg and "pass a local folder" in msg


@pytest.mark.parametrize("encoder", ["./no/such/encoder", "/no/such/encoder"])
def test_missing_folder_is_input_error(encoder):
    with pytest.raises(InputError, match="does not exist"):
        encode_item_texts(["red lipstick"], encoder)


def test_folder_without_a_model_is_input_error(tmp_path):
    (tmp_path / "enc").mkdir()
    with pytest.raises(InputError, match="save_pretrained") as err:
        encode_item_texts(["red lipstick"], tmp_path / "enc")
    assert "\n" not in str(err.value)


def test_all_texts_empty_is_input_error(encoder_dir):
    with pytest.raises(InputError, match="empty"):
        encode_item_texts(["", "  "], encoder_dir)


def _vocab() -> Vocab:
    return Vocab(item_ids=["a", "b", "c", "d"], user_ids=["u1"],
                 item_titles={"a": "Red Lipstick", "b": "Blue Shampoo", "d": "Red Lipstick"},
                 item_categories={"a": "Makeup|Lips", "c": "Hair"})


def test_item_texts_title_plus_category():
    assert item_texts(_vocab()) == ["Red Lipstick (Makeup, Lips)", "Blue Shampoo", "", "Red Lipstick"]


def test_item_text_matrix_aligned_with_item_indices(encoder_dir):
    vocab = _vocab()
    matrix = item_text_matrix(vocab, encoder_dir)
    assert isinstance(matrix, torch.Tensor) and matrix.dtype == torch.float32
    assert matrix.shape == (vocab.n_items + 1, 32)
    assert not matrix[0].any() and not matrix[3].any()  # padding; item "c" has a category but no title
    np.testing.assert_allclose(matrix[[1, 2, 4]].norm(dim=1).numpy(), 1.0, atol=1e-5)
    direct = encode_item_texts(["Blue Shampoo"], encoder_dir)[0]
    np.testing.assert_allclose(matrix[2].numpy(), direct, atol=1e-5)
    assert not torch.equal(matrix[1], matrix[4])  # the category is part of item a's text


def test_item_text_matrix_without_titles_is_input_error(encoder_dir):
    vocab = Vocab(item_ids=["a", "b"], user_ids=["u1"], item_categories={"a": "Hair"})
    with pytest.raises(InputError, match="no item titles"):
        item_text_matrix(vocab, encoder_dir)


def test_text_item_features_shapes_zero_padding_and_gradients():
    torch.manual_seed(0)
    feats = TextItemFeatures(n_items=5, d_text=8, hidden=4)
    matrix = torch.nn.functional.normalize(torch.randn(6, 8), dim=1)
    matrix[3] = 0  # an item without a title
    feats.set_matrix(matrix)
    assert not feats.text[0].any()  # row 0 forced to padding
    ids = torch.tensor([[0, 1, 2], [3, 4, 5]])
    out = feats(ids)  # (B, T, hidden)
    assert out.shape == (2, 3, 4)
    assert not out[0, 0].any() and not out[1, 0].any()  # padding and title-less items add nothing
    table = feats.item_matrix()
    assert table.shape == (6, 4)
    torch.testing.assert_close(out, table[ids])
    assert [n for n, _ in feats.named_parameters()] == ["proj.weight"]  # the text matrix is frozen
    out.sum().backward()
    assert feats.proj.weight.grad is not None and feats.proj.weight.grad.abs().sum() > 0
    with pytest.raises(InputError, match="shape"):
        feats.set_matrix(torch.zeros(7, 8))


def test_module_round_trip_through_safetensors(tmp_path):
    """The text matrix is a persistent buffer: a module rebuilt from (n_items, d_text, hidden) and loaded from
    the file reproduces the outputs with no encoder around."""
    from safetensors.torch import load_file, save_file

    torch.manual_seed(1)
    feats = TextItemFeatures(n_items=7, d_text=8, hidden=4)
    feats.set_matrix(torch.randn(8, 8))
    emb = TextAwareItemEmbedding(torch.nn.Embedding(8, 4, padding_idx=0), feats)
    save_file({k: v.contiguous() for k, v in emb.state_dict().items()}, str(tmp_path / "model.safetensors"))
    assert set(load_file(str(tmp_path / "model.safetensors"))) == {"base.weight", "text.text", "text.proj.weight"}

    fresh = TextAwareItemEmbedding(torch.nn.Embedding(8, 4, padding_idx=0), TextItemFeatures(7, 8, 4))
    fresh.load_state_dict(load_file(str(tmp_path / "model.safetensors")), strict=True)
    ids = torch.tensor([[0, 3, 7]])
    torch.testing.assert_close(fresh(ids), emb(ids))
    torch.testing.assert_close(fresh.weight, emb.weight)
    torch.testing.assert_close(emb(ids), emb.weight[ids])  # lookup and table agree (tied scoring)


def test_sasrec_with_text_aware_item_embedding(tmp_path):
    """The proposed SASRec wiring (replace item_emb by the text-aware one) trains, scores and reloads."""
    from safetensors.torch import load_file, save_file

    from seqrec_core.models import build_model

    def make(matrix=None):
        torch.manual_seed(0)
        model = build_model("sasrec", 9, hidden_size=16, num_layers=1, num_heads=2, max_len=6, dropout=0.0)
        model.item_emb = TextAwareItemEmbedding(model.item_emb, TextItemFeatures(9, 8, 16))
        if matrix is not None:
            model.item_emb.text.set_matrix(matrix)
        return model

    torch.manual_seed(2)
    model = make(torch.nn.functional.normalize(torch.randn(10, 8), dim=1))
    ids = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    targets = torch.tensor([[0, 2, 3, 4], [5, 6, 7, 8]])
    loss = model(ids, targets)
    loss.backward()
    assert torch.isfinite(loss) and model.item_emb.text.proj.weight.grad.abs().sum() > 0
    model.eval()
    scores = model.score(ids)
    assert scores.shape == (2, 10) and torch.isinf(scores[:, 0]).all()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "m.safetensors"))
    loaded = make()  # built from the config alone: the text matrix comes with the weights
    loaded.load_state_dict(load_file(str(tmp_path / "m.safetensors")), strict=True)
    loaded.eval()
    torch.testing.assert_close(loaded.score(ids), scores)


@pytest.mark.parametrize(("encoder", "dim"), [("", 0), (3, 0), ("x" * 2000, 0), (None, -1), (None, 1.5),
                                              (None, True)])
def test_check_text_options_refuses_bad_values(encoder, dim):
    with pytest.raises(InputError):
        check_text_options(encoder, dim)


def test_check_text_options_accepts_good_values():
    check_text_options(None, 0)
    check_text_options("sentence-transformers/all-MiniLM-L6-v2", 384)


def _sasrec_has_text_option() -> bool:
    from dataclasses import fields

    from seqrec_core.models import SASRecConfig

    return {"text_encoder", "text_dim"} <= {f.name for f in fields(SASRecConfig)}


@pytest.mark.skipif(not _sasrec_has_text_option(), reason="SASRec is not wired to text features yet")
def test_text_run_trains_saves_and_reloads_without_the_encoder(encoder_dir, tmp_path):
    """Through the real job: the run's config records the encoder and its width, the weights carry the text
    matrix, and load_run rebuilds the model from the config alone (the encoder folder is gone)."""
    import shutil

    import pandas as pd

    from seqrec_core.data.sequences import build_sequences
    from seqrec_core.jobs import run_training_job
    from seqrec_core.models import NeuralScorer
    from seqrec_core.runs import load_run
    from seqrec_core.training import TrainConfig

    titles = ["red lipstick", "blue shampoo", "green face mask", "nail polish", "eye shadow palette", "gel cream"]
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{k}", t, titles[k]) for u in range(30)
            for t, k in enumerate(rng.integers(0, len(titles), size=6))]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "item_title"])
    data = build_sequences(events)
    encoder = tmp_path / "encoder"
    shutil.copytree(encoder_dir, encoder)
    out = run_training_job(data, "sasrec", {"text_encoder": str(encoder), "hidden_size": 16, "num_layers": 1},
                           TrainConfig(epochs=1, max_len=8, device="cpu"), tmp_path / "run", {"name": "tiny"})
    shutil.rmtree(encoder)
    run = load_run(out["run_dir"])
    assert run.config["model"]["text_encoder"] == str(encoder) and run.config["model"]["text_dim"] == 32
    text = run.model.item_emb.text.text  # (n_items + 1, 32) restored from model.safetensors
    expected = item_text_matrix(data.vocab, encoder_dir)
    torch.testing.assert_close(text, expected)
    scorer = NeuralScorer(run.model, run.model.config.max_len, torch.device("cpu"))
    scores = scorer.score_histories([data.sequences[0][:-1]])
    assert scores.shape == (1, data.vocab.n_items + 1) and np.isfinite(scores[0, 1:]).all()


@pytest.mark.slow
@pytest.mark.skipif(not _sasrec_has_text_option(), reason="SASRec is not wired to text features yet")
def test_titles_place_a_never_trained_item_with_its_group(encoder_dir, tmp_path):
    """Five groups of items whose titles share a colour word; users stay in one group. Each group's ninth item
    is only ever a held-out test target (never trained on). With titles it should rank among its group's items
    for that group's users; without, it has no reason to."""
    import pandas as pd

    from seqrec_core.data.sequences import build_sequences
    from seqrec_core.jobs import run_training_job
    from seqrec_core.models import NeuralScorer
    from seqrec_core.training import TrainConfig

    colours = ["red", "blue", "green", "nail", "eye"]
    nouns = ["lipstick", "matte", "shampoo", "polish", "shadow", "palette", "gel", "cream", "mask", "skin"]
    rng = np.random.default_rng(0)
    rows = []
    for u in range(250):
        g = u % 5
        seq = [f"g{g}i{k}" for k in rng.integers(0, 8, size=int(rng.integers(6, 12)))]
        seq += [f"g{g}i8"] if u < 100 else []
        rows += [(f"u{u:03d}", item, t, f"{colours[g]} {nouns[int(item[3:])]}") for t, item in enumerate(seq)]
    data = build_sequences(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "item_title"]))
    test = data.split("test")
    cold = [i for i, u in enumerate(test.users) if int(data.vocab.user_ids[u][1:]) < 100]
    hits = {}
    for name, extra in (("plain", {}), ("text", {"text_encoder": str(encoder_dir)})):
        out = run_training_job(data, "sasrec", {"hidden_size": 32, "num_layers": 1, "dropout": 0.2, **extra},
                               TrainConfig(epochs=8, max_len=16, device="cpu", patience=100, keep="last"),
                               tmp_path / name, {"name": "cold"})
        from seqrec_core.runs import load_run

        run = load_run(out["run_dir"])
        scores = NeuralScorer(run.model, 16, torch.device("cpu")).score_histories([test.histories[i] for i in cold])
        ranks = np.array([(scores[j] > scores[j, test.targets[i]]).sum() + 1 for j, i in enumerate(cold)])
        hits[name] = float(np.mean(ranks <= 10))
    assert hits["text"] >= 0.25 and hits["text"] > hits["plain"] + 0.2, hits


def test_each_declared_pooling_mode_reads_only_real_tokens():
    """sentence-transformers' pooling modes on a hand-made right-padded batch: padding changes none of them, and
    several modes are concatenated in its order."""
    hidden = torch.tensor([[[1.0, 0.0], [3.0, 4.0], [9.0, 9.0]],  # second text: one real token, two pads
                           [[2.0, 2.0], [-5.0, 9.0], [-9.0, -9.0]]])  # (B=2, L=3, H=2)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    t = torch.tensor
    torch.testing.assert_close(tf.pool(hidden, mask, ("mean",)), t([[2.0, 2.0], [2.0, 2.0]]))
    torch.testing.assert_close(tf.pool(hidden, mask, ("max",)), t([[3.0, 4.0], [2.0, 2.0]]))
    torch.testing.assert_close(tf.pool(hidden, mask, ("cls",)), t([[1.0, 0.0], [2.0, 2.0]]))
    torch.testing.assert_close(tf.pool(hidden, mask, ("lasttoken",)), t([[3.0, 4.0], [2.0, 2.0]]))
    sqrt_len = t([[4.0, 4.0], [2.0, 2.0]]) / t([[2.0 ** 0.5], [1.0]])  # sum over real tokens / sqrt(count)
    torch.testing.assert_close(tf.pool(hidden, mask, ("mean_sqrt_len",)), sqrt_len)
    torch.testing.assert_close(tf.pool(hidden, mask, ("weightedmean",)), t([[7 / 3, 8 / 3], [2.0, 2.0]]))
    both = tf.pool(hidden, mask, ("cls", "mean"))
    assert both.shape == (2, 4) and torch.equal(both[:, :2], hidden[:, 0])


def test_a_plain_folder_or_hub_name_is_mean_pooled(encoder_dir):
    assert tf.declared_pooling(encoder_dir) == ("mean",)
    assert tf.declared_pooling("sentence-transformers/all-MiniLM-L6-v2") == ("mean",)

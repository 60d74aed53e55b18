"""The "cold re-listed items" scenario, shared by tests/core/test_text_families.py and bench/cold_items.py (pytest
puts this folder on sys.path; the bench script adds it): a tiny offline BERT encoder, a log whose groups of items
share a colour word in their titles, with one re-listed item per group that is never trained on, and the rank
each cold user gives that item. One definition, so the numbers bench/RESULTS.md reports are the test's numbers.

The encoder is a 1-layer, 32-wide BERT built from a config and saved locally (no download), as in
test_text_features.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seqrec_core.data.sequences import SequenceData, build_sequences

WORDS = ("[PAD] [UNK] [CLS] [SEP] [MASK] red blue green lipstick matte shampoo for dry hair nail polish the a "
         "gel cream face mask eye shadow palette makeup skin").split()
COLOURS = ("red", "blue", "green", "nail", "eye")
NOUNS = ("lipstick", "matte", "shampoo", "polish", "shadow", "palette", "gel", "cream")
N_COLD_USERS = 100  # users u000-u099 end on their group's re-listed item
MAX_LEN = 16


def make_tiny_encoder(folder: str | Path) -> None:
    """Save a tokenizer over WORDS and a seeded 1-layer, 32-wide BERT to ``folder``: a text encoder that loads
    offline, so titles can be encoded without a hub checkpoint."""
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)
    BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(folder)
    BertModel(BertConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(folder)


def cold_relisted_log() -> SequenceData:
    """Five groups of eight items; a group's titles share its colour word and users stay in one group. Each
    group's ninth item "g<g>i8" is a re-listed product: the same title as the group's "g<g>i0", a new id, and
    only ever a held-out test target (users u000-u099), so it is never trained on as a positive: only its title
    can tell a model where it belongs. 250 users, 45 items."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(250):
        g = u % 5
        seq = [f"g{g}i{k}" for k in rng.integers(0, 8, size=int(rng.integers(6, 12)))]
        seq += [f"g{g}i8"] if u < N_COLD_USERS else []
        rows += [(f"u{u:03d}", item, t, f"{COLOURS[g]} {NOUNS[int(item[3:]) % 8]}") for t, item in enumerate(seq)]
    return build_sequences(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "item_title"]))


def train_cold_run(data: SequenceData, family: str, out: str | Path, *, text_encoder: str | None = None,
                   epochs: int = 20, seed: int = 42, train_options: dict | None = None, **model_options) -> dict:
    """Train ``family`` on ``data`` through the real job into ``out`` (hidden 32, 1 layer, dropout 0.2, lr 5e-3,
    max_len 16, the last epoch kept: the cold item's rank is about training, not about early stopping); returns
    the job's summary. ``text_encoder`` adds titles; ``model_options`` (e.g. ``loss="bce"``) go to the model,
    ``train_options`` (e.g. ``{"weight_average": 0.0}``) to TrainConfig."""
    from seqrec_core.jobs import run_training_job
    from seqrec_core.training import TrainConfig

    options = {"hidden_size": 32, "num_layers": 1, "dropout": 0.2, **model_options}
    if text_encoder is not None:
        options["text_encoder"] = str(text_encoder)
    cfg = TrainConfig(**{"epochs": epochs, "lr": 5e-3, "max_len": MAX_LEN, "device": "cpu", "patience": 100,
                         "keep": "last", "seed": seed, **(train_options or {})})
    return run_training_job(data, family, options, cfg, out, {"name": "cold"})


def relisted_ranks(data: SequenceData, model: torch.nn.Module, max_len: int = MAX_LEN) -> np.ndarray:
    """(N_COLD_USERS,) rank (1 = top of the 45-item catalogue) of each cold user's held-out re-listed item, the
    whole history as input; ties count in the item's favour."""
    from seqrec_core.models import NeuralScorer

    test = data.split("test")
    cold = [i for i, u in enumerate(test.users) if int(data.vocab.user_ids[u][1:]) < N_COLD_USERS]
    assert all(data.vocab.item_ids[test.targets[i] - 1].endswith("i8") for i in cold)
    scores = NeuralScorer(model, max_len, torch.device("cpu")).score_histories([test.histories[i] for i in cold])
    return np.array([(scores[j] > scores[j, test.targets[i]]).sum() + 1 for j, i in enumerate(cold)])

"""Warm start (issue 17): `train --resume RUN --data NEW_LOG --out NEW_RUN` and ``resume_training``.

The vocabulary mapping is checked on untrained models of every family (no training needed: a kept item's row is
copied exactly, a new item's row is what a fresh model of the same seed has, every other weight is the old one);
the CLI on a tiny shifted demo log trained for one epoch; each refusal is exit 2, one line, no folder left."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cold_log import make_tiny_encoder  # noqa: E402

from seqrec_core.cli import main  # noqa: E402
from seqrec_core.data.sequences import Vocab  # noqa: E402
from seqrec_core.data.synthetic import make_demo_events  # noqa: E402
from seqrec_core.errors import InputError  # noqa: E402
from seqrec_core.models import build_model  # noqa: E402
from seqrec_core.runs import load_run  # noqa: E402
from seqrec_core.training.warm_start import (  # noqa: E402
    RESUME_LR_FACTOR,
    item_indexed_keys,
    map_vocab,
    resume_config,
    resume_training,
    warm_start_model,
)

OLD = Vocab(item_ids=["a", "b", "c", "d", "e"], user_ids=["u1", "u2"])
# "b" dropped, "c" and "a" moved, "x" and "y" new
NEW = Vocab(item_ids=["c", "x", "a", "d", "y", "e"], user_ids=["u2", "u3"])
FAMILIES = {"sasrec": {"hidden_size": 8, "num_layers": 1, "num_heads": 1, "tied_output": False},
            "bert4rec": {"hidden_size": 8, "num_layers": 1, "num_heads": 1},
            "gru4rec": {"hidden_size": 8}, "lstm": {"hidden_size": 8}, "lsi": {"hidden_size": 8}}
TINY = ["--max-len", "16", "--hidden-size", "16", "--num-layers", "1", "--num-heads", "1", "--batch-size", "64"]


def test_map_vocab_counts_kept_new_and_dropped_items_and_users() -> None:
    m = map_vocab(OLD, NEW)
    assert dict(zip(m.old_rows.tolist(), m.new_rows.tolist(), strict=True)) == {0: 0, 3: 1, 1: 3, 4: 4, 5: 6}
    assert m.to_json() == {"items_kept": 4, "items_new": 2, "items_dropped": 1, "users_kept": 1, "users_new": 1,
                           "items_imprinted": 0}
    with pytest.raises(InputError, match="shares no item"):
        map_vocab(OLD, Vocab(item_ids=["p", "q"], user_ids=["u1"]))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_kept_rows_are_copied_new_rows_fresh_other_weights_equal(family: str) -> None:
    torch.manual_seed(1)
    old = build_model(family, OLD.n_items, max_len=8, **FAMILIES[family])
    with torch.no_grad():  # distinctive weights: nothing can pass by accident as "initialised"
        for p in old.parameters():
            p.add_(torch.randn_like(p))
    model, mapping = warm_start_model(old, OLD, NEW, seed=7)
    torch.manual_seed(7)
    fresh = build_model(family, NEW.n_items, max_len=8, **FAMILIES[family])
    per_item = item_indexed_keys(model)
    assert "item_emb.weight" in per_item and (family != "sasrec" or "out_emb.weight" in per_item)
    old_state, new_state, fresh_state = old.state_dict(), model.state_dict(), fresh.state_dict()
    for key, value in new_state.items():
        if key in per_item:
            for new_id, old_id in (("c", "c"), ("a", "a"), ("d", "d"), ("e", "e")):
                j, i = NEW.item_ids.index(new_id) + 1, OLD.item_ids.index(old_id) + 1
                assert torch.equal(value[j], old_state[key][i]), (key, new_id)
            for new_id in ("x", "y"):  # new items: the family's own init (same seed, same draw)
                j = NEW.item_ids.index(new_id) + 1
                assert torch.equal(value[j], fresh_state[key][j]), (key, new_id)
            assert torch.equal(value[0], old_state[key][0])  # padding
        else:
            assert torch.equal(value, old_state[key]), key  # positions, attention, RNN, biases: kept
    assert mapping.items_new == 2 and model.config.n_items == NEW.n_items


def test_imprinting_points_a_new_items_output_row_at_the_states_before_it() -> None:
    """A new item's output row = the mean direction of the hidden states at the prefixes that preceded its training
    occurrences, at the kept rows' median norm; validation/test targets and items never seen after a first event are
    not read; the other rows do not move."""
    import numpy as np
    import pandas as pd

    from seqrec_core.data.dataset import dataset_from_events
    from seqrec_core.training.imprint import imprint_new_items

    rows = [("u1", ["a", "b", "x", "c", "d", "e"]), ("u2", ["c", "x", "a", "b", "d", "e"]),
            ("u3", ["d", "e", "a", "b", "c", "y"]), ("u4", ["y", "a", "b", "c", "d", "e"])]  # y: only a test target
    events = pd.DataFrame([(u, item, 1_700_000_000 + 60 * i) for u, items in rows for i, item in enumerate(items)],
                          columns=["user_id", "item_id", "timestamp"])
    data = dataset_from_events(events, "tiny").sequences
    torch.manual_seed(3)
    model = build_model("sasrec", data.vocab.n_items, max_len=8, hidden_size=8, num_layers=1, num_heads=1).eval()
    index = {item: i + 1 for i, item in enumerate(data.vocab.item_ids)}
    new = np.array([index["x"], index["y"]])
    kept = np.array([index[i] for i in "abcde"])
    before = model.output_weights().detach().clone()
    assert imprint_new_items(model, data, new, kept, seed=0) == 1  # y follows no training event: left alone
    after = model.output_weights().detach()
    with torch.no_grad():
        states = [model.forward_hidden(torch.tensor([[index[i] for i in prefix]])).hidden[0, -1]
                  for prefix in (["a", "b"], ["c"])]  # u1 and u2 before their x
    want = torch.nn.functional.normalize(torch.stack(states).sum(0), dim=0) * before[kept].norm(dim=1).median()
    assert torch.allclose(after[index["x"]], want, atol=1e-5)
    untouched = [i for i in range(data.vocab.n_items + 1) if i != index["x"]]
    assert torch.equal(after[untouched], before[untouched])


def test_text_runs_encode_new_items_from_their_titles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from seqrec_core.models.text_features import CACHE_ENV, item_text_matrix

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    encoder = tmp_path / "enc"
    make_tiny_encoder(encoder)
    titles = {"a": "red lipstick", "b": "blue gel", "c": "green cream", "d": "nail polish", "e": "eye shadow",
              "x": "red gel", "y": "blue face mask"}
    old_vocab = Vocab(item_ids=OLD.item_ids, user_ids=OLD.user_ids, item_titles=titles)
    new_vocab = Vocab(item_ids=NEW.item_ids, user_ids=NEW.user_ids, item_titles=titles)
    old = build_model("sasrec", 5, max_len=8, hidden_size=8, num_layers=1, num_heads=1, text_encoder=str(encoder),
                      text_dim=32)
    old.item_emb.text.set_matrix(item_text_matrix(old_vocab, str(encoder)))
    model, _ = warm_start_model(old, old_vocab, new_vocab)
    expected = item_text_matrix(new_vocab, str(encoder))
    assert torch.allclose(model.item_emb.text.text, expected)
    assert expected[NEW.item_ids.index("x") + 1].abs().sum() > 0  # the new item has its title's vector
    assert torch.equal(model.item_emb.text.proj.weight, old.item_emb.text.proj.weight)


def test_resume_config_keeps_the_runs_settings_with_a_short_default_budget() -> None:
    config = {"train": {"lr": 0.005, "batch_size": 16, "patience": 40, "max_len": 30, "seed": 3, "device": "cuda",
                        "time_budget": 300.0}, "train_seconds": 200.0, "epochs_trained": 15}
    cfg = resume_config(config)
    assert (cfg.batch_size, cfg.patience, cfg.max_len, cfg.seed) == (16, 40, 30, 3)
    assert cfg.lr == pytest.approx(RESUME_LR_FACTOR * 0.005)  # a short update moves faster than the run did
    assert cfg.epochs == 3 and cfg.time_budget is None and cfg.device == "auto"  # a fifth of 15 epochs
    assert resume_config({**config, "epochs_trained": 7}).epochs == 2  # rounded up
    assert resume_config({**config, "epochs_trained": 0}).epochs == 1  # at least one full pass
    assert resume_config(config, epochs=2).time_budget is None and resume_config(config, epochs=2).epochs == 2
    assert resume_config(config, time_budget=5.0).time_budget == 5.0
    assert resume_config(config, overrides={"lr": 0.01, "max_len": 30, "batch_size": None}).lr == 0.01
    with pytest.raises(InputError, match="history length"):
        resume_config(config, overrides={"max_len": 50})


# ------------------------------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The shifted demo, tiny: the old log (before the shift), the full one, one of another catalogue, and a run
    trained on the old log for one epoch."""
    root = tmp_path_factory.mktemp("warm")
    events, truth = make_demo_events(n_users=120, events_per_user=20, n_items=80, seed=2, shift_weeks=3)
    paths = {"old": root / "old.parquet", "full": root / "full.parquet", "other": root / "other.parquet"}
    events[events["timestamp"] < truth.shift_start].to_parquet(paths["old"], index=False)
    events.to_parquet(paths["full"], index=False)
    other = events.assign(item_id="z" + events["item_id"])
    other.to_parquet(paths["other"], index=False)
    paths["run"] = root / "old-run"
    code = main(["train", "--data", str(paths["old"]), "--model", "sasrec", "--out", str(paths["run"]),
                 "--epochs", "1", "--device", "cpu", "--seed", "0", *TINY])
    assert code == 0
    return paths


def test_resume_cli_writes_an_updated_run_that_records_where_it_came_from(logs: dict[str, Path], tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    out = tmp_path / "new-run"
    code = main(["train", "--resume", str(logs["run"]), "--data", str(logs["full"]), "--out", str(out),
                 "--epochs", "1", "--device", "cpu"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    old, new = load_run(logs["run"]), load_run(out)
    record = doc["resumed_from"]
    assert record["run"] == "old-run" and record["fingerprint"] == old.config["data"]["fingerprint"]
    added = [item for item in new.vocab.item_ids if item not in set(old.vocab.item_ids)]
    assert record["items_new"] == len(added) > 5 and all(item.startswith("s") for item in added)  # shift items
    assert record["items_kept"] == old.vocab.n_items and record["items_dropped"] == 0
    assert record["last_time"] == old.config["data"]["last_time"]
    assert new.config["data"]["resumed_from"] == record and not new.warnings
    assert new.config["model"] == {**old.config["model"], "n_items": old.vocab.n_items + len(added)}
    assert new.config["train"]["lr"] == pytest.approx(RESUME_LR_FACTOR * old.config["train"]["lr"])
    assert doc["epochs"] == 1
    assert load_run(logs["run"]).vocab.item_ids == old.vocab.item_ids  # the old run is untouched


REFUSALS = {  # name -> (argv after --resume RUN ..., fragments of the one line)
    "not_a_run": (["--resume", "{plain}", "--data", "{full}", "--out", "{out}"], ["lacks"]),
    "missing_run": (["--resume", "{tmp}/nowhere", "--data", "{full}", "--out", "{out}"], ["does not exist"]),
    "other_family": (["--resume", "{run}", "--data", "{full}", "--out", "{out}", "--model", "gru4rec"],
                     ["--model gru4rec", "sasrec"]),
    "other_width": (["--resume", "{run}", "--data", "{full}", "--out", "{out}", "--hidden-size", "32"],
                    ["--hidden-size 32", "16"]),
    "no_shared_item": (["--resume", "{run}", "--data", "{other}", "--out", "{out}"], ["shares no item"]),
    "out_is_the_run": (["--resume", "{run}", "--data", "{full}", "--out", "{run}"], ["--out", "resumed"]),
    "no_data": (["--resume", "{run}", "--out", "{out}"], ["--data"]),
    "other_max_len": (["--resume", "{run}", "--data", "{full}", "--out", "{out}", "--max-len", "32"],
                      ["--max-len 32", "16"]),
    "with_analyze": (["--resume", "{run}", "--data", "{full}", "--out", "{out}", "--analyze"], ["--analyze"]),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_resume_refusals_are_one_line_and_leave_no_folder(name: str, logs: dict[str, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "plain").mkdir()
    places = {"plain": tmp_path / "plain", "tmp": tmp_path, "out": tmp_path / "new-run", **logs}
    argv, fragments = REFUSALS[name]
    before = sorted(p.name for p in logs["run"].iterdir())
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        code = main(["train", *[a.format(**places) for a in argv], "--epochs", "1", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 2, (name, captured.err)
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (name, captured.err)
    assert all(f in lines[0] for f in fragments), (name, lines[0])
    assert "Traceback" not in captured.err and captured.out == ""
    assert not (tmp_path / "new-run").exists()
    assert sorted(p.name for p in logs["run"].iterdir()) == before  # the old run is untouched
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_resume_api_refuses_before_writing(logs: dict[str, Path], tmp_path: Path) -> None:
    from seqrec_core.data.dataset import DataSource, open_dataset

    other = open_dataset(DataSource(path=str(logs["other"])))
    with pytest.raises(InputError, match="shares no item"):
        resume_training(logs["run"], other.sequences, tmp_path / "x")
    with pytest.raises(InputError, match="resumed"):
        resume_training(logs["run"], other.sequences, logs["run"])
    assert not (tmp_path / "x").exists()

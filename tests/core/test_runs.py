"""Run folders: round trip, atomic writes, refusing unsafe or broken folders and archives, and the train job."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqrec_core.data import build_sequences
from seqrec_core.errors import InputError
from seqrec_core.jobs import run_training_job
from seqrec_core.models import NeuralScorer, build_model
from seqrec_core.runs import list_runs, load_run, runs_root, save_run, unpack_run_zip
from seqrec_core.training import TrainConfig, TrainingCancelled
from seqrec_core.training.verdict import VERDICTS


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        start = int(rng.integers(0, 20))
        rows += [(f"u{u}", f"i{(start + t) % 20}", t) for t in range(8)]
    return build_sequences(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


def tiny_model(data, positions: str = "rotary"):
    torch.manual_seed(0)
    return build_model("sasrec", data.vocab.n_items, hidden_size=16, num_layers=1, num_heads=2, max_len=8,
                       positions=positions).eval()


def write(tmp: Path, data, name: str = "run", positions: str = "rotary", **config) -> Path:
    model = tiny_model(data, positions)
    cfg = {"data": {"fingerprint": data.fingerprint}, **config}
    return save_run(tmp / name, model=model, config=cfg, vocab=data.vocab, metrics={"test": {"NDCG@10": 0.5}},
                    history=[{"epoch": 1, "train_loss": 1.0}])


@pytest.mark.parametrize("positions", ["rotary", "learned"])
def test_save_load_round_trip_gives_identical_scores(tmp_path: Path, data, positions: str) -> None:
    path = write(tmp_path, data, positions=positions)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "history.jsonl", "metrics.json",
                                                      "model.safetensors", "vocab.json"]
    run = load_run(path)
    hists = [data.sequences[u][:-1] for u in range(5)]
    expected = NeuralScorer(tiny_model(data, positions), 8).score_histories(hists)
    np.testing.assert_array_equal(run.scorer().score_histories(hists), expected)
    assert run.vocab.item_ids == data.vocab.item_ids and run.metrics["test"]["NDCG@10"] == 0.5
    assert run.history == [{"epoch": 1, "train_loss": 1.0}] and run.config["family"] == "sasrec"


def test_a_failing_save_leaves_no_partial_folder(tmp_path: Path, data, monkeypatch: pytest.MonkeyPatch) -> None:
    import safetensors.torch

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        write(tmp_path, data)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_a_foreign_folder_but_replaces_a_run(tmp_path: Path, data) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a run"):
        write(tmp_path, data, name="mine")
    assert (foreign / "notes.txt").read_text() == "keep me"
    first = write(tmp_path, data, name="r")
    write(tmp_path, data, name="r", stopped_reason="max_epochs")
    assert json.loads((first / "config.json").read_text())["stopped_reason"] == "max_epochs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "r"]  # no temp or old folders left


@pytest.mark.parametrize("bad", ["weights.pkl", "pytorch_model.bin", "model.pt"])
def test_load_refuses_pickles(tmp_path: Path, data, bad: str) -> None:
    path = write(tmp_path, data)
    (path / bad).write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(InputError, match="pickled"):
        load_run(path)


@pytest.mark.parametrize("change, word", [
    (lambda c: c.update(family="word2vec"), "unknown model"),
    (lambda c: c["model"].update(hidden_size=-4), "hidden_size"),
    (lambda c: c["model"].update(dropout="lots"), "dropout"),
    (lambda c: c["model"].update(n_items="many"), "n_items"),
    (lambda c: c.update(train={"epochs": 0}), "epochs"),
    (lambda c: c.update(train={"unknown_knob": 1}), "unknown field"),
    (lambda c: c["model"].update(n_items=c["model"]["n_items"] + 1), "items"),
])
def test_load_refuses_a_bad_config(tmp_path: Path, data, change, word: str) -> None:
    path = write(tmp_path, data)
    config = json.loads((path / "config.json").read_text())
    change(config)
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=word):
        load_run(path)


def test_load_refuses_missing_files_and_broken_json(tmp_path: Path, data) -> None:
    path = write(tmp_path, data)
    (path / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="config"):
        load_run(path)
    (path / "config.json").unlink()
    with pytest.raises(InputError, match="lacks config.json"):
        load_run(path)


def test_list_runs_newest_first_and_skips_broken(tmp_path: Path, data, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, data, name="old", created="2026-01-01T00:00:00+0000")
    write(tmp_path, data, name="new", created="2026-06-01T00:00:00+0000")
    broken = write(tmp_path, data, name="broken")
    (broken / "config.json").write_text("[")
    (tmp_path / ".jobs").mkdir()
    infos = list_runs(tmp_path)
    assert [i.name for i in infos] == ["new", "old"]
    assert infos[0].family == "sasrec" and infos[0].metrics["NDCG@10"] == 0.5
    assert infos[0].fingerprint == data.fingerprint
    monkeypatch.setenv("SEQREC_RUNS_DIR", str(tmp_path))
    assert runs_root() == tmp_path and [i.name for i in list_runs()] == ["new", "old"]


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, content in files.items():
            z.writestr(name, content)
    return buf.getvalue()


def test_unpack_run_zip_round_trip(tmp_path: Path, data) -> None:
    path = write(tmp_path / "src", data, name="gpu-run")
    files = {f"gpu-run/{p.name}": p.read_bytes() for p in path.iterdir()}
    dest = unpack_run_zip(zip_of(files), tmp_path / "runs")
    assert dest == tmp_path / "runs" / "gpu-run"
    assert load_run(dest).config["family"] == "sasrec"
    second = unpack_run_zip(zip_of(files), tmp_path / "runs")  # same name again: a new folder, no overwrite
    assert second.name == "gpu-run-2"


@pytest.mark.parametrize("extra, word", [
    ({"../evil/config.json": b"{}"}, "unsafe"), ({"run/model.pkl": b"x"}, "pickled"),
    ({"run/run.sh": b"rm -rf /"}, "unexpected"),
])
def test_unpack_run_zip_refuses_unsafe_archives(tmp_path: Path, data, extra: dict, word: str) -> None:
    path = write(tmp_path / "src", data, name="run")
    files = {f"run/{p.name}": p.read_bytes() for p in path.iterdir()} | extra
    with pytest.raises(InputError, match=word):
        unpack_run_zip(zip_of(files), tmp_path / "runs")
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []
    with pytest.raises(InputError, match="not a zip"):
        unpack_run_zip(b"plain bytes", tmp_path / "runs")


def test_train_job_saves_a_run_and_logs_progress(tmp_path: Path, data) -> None:
    progress = tmp_path / "jobs" / "progress.jsonl"
    cfg = TrainConfig(epochs=3, batch_size=16, lr=5e-3, max_len=8, device="cpu", seed=0)
    out = run_training_job(data, "sasrec", {"hidden_size": 16, "num_layers": 1, "num_heads": 1}, cfg,
                           tmp_path / "run", {"fingerprint": data.fingerprint, "name": "walk"},
                           progress_path=progress)
    assert {"run_dir", "model", "epochs", "train_seconds", "device", "stopped_reason", "verdict", "metrics"} <= set(out)
    verdict = out["verdict"]
    assert verdict["verdict"] in VERDICTS and verdict["best_baseline"] in ("popularity", "markov", "itemknn")
    assert set(out["metrics"]) == {"val", "test"} and "NDCG@10" in out["metrics"]["test"]
    events = [json.loads(line) for line in progress.read_text().splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    assert events[-1]["run_dir"] == str(tmp_path / "run")
    run = load_run(tmp_path / "run")
    assert run.config["data"]["fingerprint"] == data.fingerprint and run.config["train"]["epochs"] == 3
    assert run.config["model"]["max_len"] == 8 and (tmp_path / "run" / "progress.jsonl").exists()


def test_train_job_cancelled_early_saves_nothing(tmp_path: Path, data) -> None:
    progress = tmp_path / "progress.jsonl"
    cfg = TrainConfig(epochs=3, batch_size=16, max_len=8, device="cpu")
    with pytest.raises(TrainingCancelled):
        run_training_job(data, "sasrec", {"hidden_size": 16, "num_layers": 1}, cfg, tmp_path / "run",
                         {}, progress_path=progress, should_stop=lambda: True)
    assert not (tmp_path / "run").exists()
    assert json.loads(progress.read_text().splitlines()[-1])["event"] == "cancelled"

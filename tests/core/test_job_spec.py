"""The job spec: what the Train page writes is what `train --spec` reads (round trip), the flags build the same
spec, and a hostile or malformed spec file is one line of bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqrec_core.cli import main
from seqrec_core.data.dataset import DataSource
from seqrec_core.errors import InputError
from seqrec_core.jobs.spec import (
    AnalysisRequest,
    AnalyzeSpec,
    DataSpec,
    TrainSpec,
    load_spec,
    spec_from_json,
    write_spec,
)
from seqrec_core.training.config import TrainConfig


def test_train_and_analyze_specs_round_trip_through_a_file(tmp_path: Path) -> None:
    train = TrainSpec(data=DataSpec(source=DataSource(path="demo"), prepared=None, fingerprint="ab" * 8,
                                    name="Demo"), family="sasrec", out=str(tmp_path / "run"),
                      model_options={"hidden_size": 32, "tied_output": False, "positions": "learned"},
                      train=TrainConfig(epochs=3, lr=2e-3), exclude_seen="on",
                      analyze=AnalysisRequest(parts=("evaluation",), users=("u1",), sample=2))
    analyze = AnalyzeSpec(run=str(tmp_path / "run"), request=AnalysisRequest(
        units=({"kind": "longrange", "params": {"n_users": 20}},)), device="cpu")
    for spec in (train, analyze):
        path = write_spec(spec, tmp_path / f"{spec.KIND}.json")
        assert load_spec(path) == spec
        assert load_spec(path, expected=spec.KIND) == spec
    with pytest.raises(InputError, match="this is a 'train' job spec"):
        load_spec(tmp_path / "train.json", expected="analyze")


def test_the_flags_build_the_spec_the_file_holds(tmp_path: Path) -> None:
    from seqrec_core.cli import build_parser
    from seqrec_core.cli.train import spec_from_args

    args = build_parser().parse_args(["train", "--data", "demo", "--model", "gru4rec", "--out", str(tmp_path / "r"),
                                      "--epochs", "2", "--hidden-size", "16", "--analyze", "--analyze-users", "a,b"])
    spec = spec_from_args(args)
    assert spec.family == "gru4rec" and spec.train.epochs == 2 and spec.model_options == {"hidden_size": 16}
    assert spec.analyze == AnalysisRequest(users=("a", "b")) and spec.data.source.path == "demo"
    assert spec_from_json(json.loads(json.dumps(spec.to_json()))) == spec


@pytest.mark.parametrize(("obj", "message"), [
    ([], "must be a JSON object"),
    ({"kind": "rm -rf"}, "kind"),
    ({"kind": "train", "version": 99}, "version"),
    ({"kind": "train", "data": {"source": {"path": "demo"}}, "family": "nope", "out": "x"}, "unknown"),
    ({"kind": "train", "data": {"source": {"path": "demo"}}, "family": "sasrec", "out": "x",
      "train": {"epochs": -1}}, "epochs"),
    ({"kind": "train", "data": {"source": {"path": "demo"}}, "family": "sasrec", "out": "x",
      "train": {"exec": "boom"}}, "unknown training option"),
    ({"kind": "train", "data": {"source": {"path": "demo"}}, "family": "sasrec", "out": "x",
      "model_options": {"hidden_size": [1, 2]}}, "plain values"),
    ({"kind": "train", "data": "demo", "family": "sasrec", "out": "x"}, "source"),
    ({"kind": "analyze", "run": "r", "units": [{"kind": "x", "params": {}, "extra": 1}]}, "unit"),
    ({"kind": "analyze", "run": "r", "sample": -3}, "sample"),
    ({"kind": "analyze", "run": "r", "surprise": 1}, "unknown field"),
])
def test_malformed_specs_are_one_line_of_bad_input(obj: object, message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        spec_from_json(obj)
    assert "\n" not in str(err.value)


def test_cli_refuses_bad_spec_files_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    huge = tmp_path / "huge.json"
    huge.write_text(" " * (2 << 20))
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\xff\xfe{not json")
    good = write_spec(TrainSpec(data=DataSpec(source=DataSource(path="demo")), family="sasrec",
                                out=str(tmp_path / "r")), tmp_path / "good.json")
    for argv in (["train", "--spec", str(huge)], ["train", "--spec", str(garbage)],
                 ["train", "--spec", str(tmp_path / "missing.json")], ["analyze", "--spec", str(good)],
                 ["train", "--spec", str(good), "--model", "gru4rec"], ["train", "--model", "sasrec"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "r").exists()


def test_a_spec_whose_data_changed_is_refused(tmp_path: Path) -> None:
    from seqrec_core.data.synthetic import make_demo_events

    events, _ = make_demo_events(n_users=30, seed=1)
    path = tmp_path / "log.parquet"
    events.to_parquet(path, index=False)
    spec = DataSpec(source=DataSource(path=str(path), format="parquet"), fingerprint="0" * 16)
    with pytest.raises(InputError, match="changed since"):
        spec.open()
    opened = DataSpec(source=DataSource(path=str(path), format="parquet")).open()
    prepared = tmp_path / "prepared.parquet"
    opened.events.to_parquet(prepared, index=False)
    again = DataSpec(source=opened.source, prepared=str(prepared), fingerprint=opened.fingerprint, name="mine").open()
    assert again.fingerprint == opened.fingerprint and again.name == "mine"  # read as prepared, not cleaned again
    assert not again.report.steps

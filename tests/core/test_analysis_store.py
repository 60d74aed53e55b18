"""Stored analyses: units round-trip, are written atomically, go stale when the weights, the model config, the
data or the code version change, per-user units grow by merging, a cancel keeps what was finished, and the
`analyze` command keeps the CLI contract."""
from __future__ import annotations

import dataclasses
import io
import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from seqrec_core.analysis import kind, list_units, read_unit, weights_id, write_unit
from seqrec_core.analysis.job import run_analysis
from seqrec_core.analysis.lookup import find
from seqrec_core.cli import main
from seqrec_core.errors import InputError
from seqrec_core.jobs.spec import AnalysisRequest, AnalyzeSpec


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


def test_a_unit_round_trips_and_leaves_no_temp_folder(tmp_path: Path) -> None:
    frame = pd.DataFrame({"user": ["a", "b"], "x": [1.5, float("nan")]})
    unit = write_unit(tmp_path, "longrange", {"n_users": 5, "method": "ig"}, {"by_lag": frame},
                      info={"share": float("nan"), "users": 5}, fingerprint="f", weights="w", version=1, seconds=0.5)
    again = read_unit(tmp_path, "longrange", {"method": "ig", "n_users": 5})  # parameter order does not matter
    assert again is not None and again.folder == unit.folder and again.info == {"share": None, "users": 5}
    pd.testing.assert_frame_equal(again.table("by_lag"), frame)
    assert read_unit(tmp_path, "longrange", {"n_users": 6, "method": "ig"}) is None
    assert [p.name for p in (tmp_path / "analysis").iterdir()] == [unit.folder.name]
    with pytest.raises(InputError, match="no table"):
        again.table("../../config")


def test_a_failed_write_keeps_the_previous_unit(tmp_path: Path) -> None:
    params = {"k": 1}
    write_unit(tmp_path, "item_space", params, {"vectors": pd.DataFrame({"a": [1]})}, fingerprint="f", weights="w",
               version=1, seconds=0.1)

    class Boom(pd.DataFrame):
        def to_parquet(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_unit(tmp_path, "item_space", params, {"vectors": Boom({"a": [2]})}, fingerprint="f", weights="w",
                   version=1, seconds=0.1)
    unit = read_unit(tmp_path, "item_space", params)
    assert unit is not None and unit.table("vectors")["a"].tolist() == [1]
    assert len(list((tmp_path / "analysis").iterdir())) == 1  # no temp folder left behind


def test_stored_results_go_stale_with_the_model_the_data_and_the_code(run_copy: Path, small_dataset,
                                                                      monkeypatch) -> None:
    fp = small_dataset.fingerprint
    assert find(run_copy, "evaluation", {"exclude_seen": False}, fp).status == "fresh"
    assert find(run_copy, "evaluation", {"exclude_seen": False}, "0" * 16).why == "it was computed on other data"
    assert find(run_copy, "longrange", {"n_users": 3}, fp).status == "missing"
    from seqrec_core.analysis import KINDS

    monkeypatch.setitem(KINDS, "evaluation", dataclasses.replace(kind("evaluation"), version=99))  # new meaning
    assert find(run_copy, "evaluation", {"exclude_seen": False}, fp).status == "stale"
    monkeypatch.undo()
    config = json.loads((run_copy / "config.json").read_text())
    config["model"]["dropout"] = 0.33  # same weights read as another model
    (run_copy / "config.json").write_text(json.dumps(config))
    found = find(run_copy, "evaluation", {"exclude_seen": False}, fp)
    assert found.status == "stale" and "weights changed" in found.why


def test_analyze_cli_contract_reuses_what_is_fresh(run_copy: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["analyze", "--run", str(run_copy), "--parts", "evaluation,longrange", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run_dir"] == str(run_copy) and out["analysis_dir"] == str(run_copy / "analysis")
    assert set(out["parts"]) == {"evaluation", "longrange"}
    assert all({"seconds", "rows"} <= set(v) for v in out["parts"].values())
    assert {u["status"] for u in out["units"]} == {"reused"}  # the fixture's analysis is still fresh
    assert main(["analyze", "--run", str(run_copy), "--parts", "faithfulness", "--force", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [u["status"] for u in out["units"]] == ["computed"] and out["parts"]["faithfulness"]["rows"] > 0


@pytest.mark.parametrize("argv", [["analyze", "--run", "{run}", "--parts", "evaluation,teleport"],
                                  ["analyze", "--run", "{run}", "--users", "nobody-here"],
                                  ["analyze", "--run", "{missing}"], ["analyze"],
                                  ["analyze", "--run", "{run}", "--data", "{missing}"]])
def test_analyze_refuses_bad_input_with_one_line(argv: list[str], run_copy: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    before = sorted(p.name for p in (run_copy / "analysis").iterdir())
    argv = [a.format(run=run_copy, missing=tmp_path / "nope") for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error:") and captured.err.count("\n") == 1
    assert sorted(p.name for p in (run_copy / "analysis").iterdir()) == before


def test_per_user_units_grow_by_merging(run_copy: Path, small_dataset) -> None:
    users = small_dataset.sequences.vocab.user_ids
    spec = AnalyzeSpec(run=str(run_copy), device="cpu",
                       request=AnalysisRequest(parts=("explanations",), users=(users[7],), sample=0))
    run_analysis(spec, dataset=small_dataset)
    unit = read_unit(run_copy, "explanations", {"steps": 50})
    stored = set(unit.table("targets")["user"])
    assert users[7] in stored and len(stored) > 1  # the fixture's sample is kept, the new user added
    again = run_analysis(spec, dataset=small_dataset)
    assert {u["status"] for u in again["units"]} == {"reused"}  # nothing left to compute


def test_a_cancel_keeps_the_units_finished_before_it(run_copy: Path, small_dataset, tmp_path: Path) -> None:
    shutil.rmtree(run_copy / "analysis")

    def stop_after_a_while() -> bool:  # a cancel arrives once the first unit is stored
        return any(u.kind == "evaluation" for u in list_units(run_copy))

    progress = tmp_path / "progress.jsonl"
    report = run_analysis(AnalyzeSpec(run=str(run_copy), device="cpu", request=AnalysisRequest(
        parts=("evaluation", "longrange"), sample=0)), dataset=small_dataset, progress_path=progress,
        should_stop=stop_after_a_while)
    assert "cancelled" in report
    kinds = {u.kind for u in list_units(run_copy)}
    assert "evaluation" in kinds and "longrange" not in kinds
    events = [json.loads(line)["event"] for line in progress.read_text().splitlines()]
    assert events[0] == "analysis_start" and events[-1] == "cancelled" and "analysis_cancelled" in events


def test_a_zipped_run_travels_with_its_analysis_and_hostile_members_are_refused(run_copy: Path,
                                                                                tmp_path: Path) -> None:
    from seqrec_core.runs import unpack_run_zip

    def zipped(extra: dict[str, bytes] | None = None) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for path in run_copy.rglob("*"):
                if path.is_file() and path.name != ".lock":
                    zf.write(path, f"myrun/{path.relative_to(run_copy)}")
            for name, data in (extra or {}).items():
                zf.writestr(name, data)
        return buf.getvalue()

    target = unpack_run_zip(zipped(), tmp_path / "root")
    assert weights_id(target) == weights_id(run_copy)
    assert {u.kind for u in list_units(target)} == {u.kind for u in list_units(run_copy)}
    unit = next(u for u in list_units(run_copy) if u.kind == "evaluation")
    for name in (f"myrun/analysis/{unit.folder.name}/evil.pkl", "myrun/analysis/../../x.parquet",
                 f"myrun/analysis/{unit.folder.name}/notes.txt", "myrun/analysis/bad name/meta.json"):
        with pytest.raises(InputError):
            unpack_run_zip(zipped({name: b"x"}), tmp_path / "root2")
    assert not (tmp_path / "root2").exists() or not any(
        p for p in (tmp_path / "root2").iterdir() if not p.name.startswith("."))


def test_the_shipped_demo_runs_carry_a_fresh_analysis() -> None:
    """The demo's first views read these: a change of the analysis code (a kind's version) or of a shipped model
    must come with `python bench/make_demo_run.py --analyze-only`."""
    from seqrec_core.analysis import KINDS
    from seqrec_core.data.dataset import DataSource, open_dataset
    from seqrec_core.demo_run import SHIPPED_RUNS

    fingerprint = open_dataset(DataSource(path="demo")).fingerprint
    for name, folder in SHIPPED_RUNS.items():
        units = list_units(folder)
        assert {u.kind for u in units} >= {"evaluation", "longrange", "truncation", "faithfulness", "explanations",
                                           "attention", "embedding", "item_space", "recommendations", "model_ties",
                                           "time_mass", "planted"}, name
        for unit in units:
            assert unit.is_fresh(fingerprint, weights_id(folder), KINDS[unit.kind].version), (name, unit.folder.name)


def test_a_damaged_stored_table_reads_as_stale_not_as_a_crash(run_copy: Path, small_dataset) -> None:
    unit = read_unit(run_copy, "truncation", {"exclude_seen": False})
    pd.DataFrame({"k": ["all"], "surprise": [1]}).to_parquet(unit.folder / "ablation.parquet", index=False)
    (unit.folder / "meta.json").write_text((unit.folder / "meta.json").read_text().replace(
        unit.created, "2030-01-01T00:00:00"))  # another write time: nothing cached about it
    found = find(run_copy, "truncation", {"exclude_seen": False}, small_dataset.fingerprint)
    assert found.status == "stale" and "lacks NDCG@10" in found.why

"""Batch `recommend` / `explain` (`--users ... --out FILE`) and serving a run from its stored histories: a batch
gives each user exactly what the single command gives, files are written whole or not at all, refusals are one
line, and a run that stored its users' histories answers without opening its log."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from seqrec_core.analysis.kinds_serving import HISTORIES, load_sequences
from seqrec_core.analysis.store import read_unit, write_unit
from seqrec_core.cli import main
from seqrec_core.data.sequences import SequenceData, build_sequences


def call(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, dict | list | None, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"user_id": str,
                                                                                            "item_id": str})


def assert_same_sequences(got: SequenceData, want: SequenceData) -> None:
    assert got.n_users == want.n_users and got.has_time == want.has_time and got.fingerprint == want.fingerprint
    assert got.vocab.user_ids == want.vocab.user_ids and got.vocab.item_ids == want.vocab.item_ids
    assert got.vocab.item_titles == want.vocab.item_titles
    for a, b, ta, tb in zip(got.sequences, want.sequences, got.times, want.times, strict=True):
        assert a.dtype == b.dtype == np.int64 and np.array_equal(a, b)
        assert ta.dtype == tb.dtype == np.int64 and np.array_equal(ta, tb)


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_batch_recommend_gives_each_user_what_the_single_command_gives(tiny_run, small_dataset, tmp_path, capsys,
                                                                       suffix):
    ids = small_dataset.sequences.vocab.user_ids
    users = [ids[5], ids[0], ids[-1]]  # not in row order: the table follows the order asked for
    out = tmp_path / f"top.{suffix}"
    code, doc, err = call(capsys, "recommend", "--run", tiny_run, "--users", ",".join(users), "--k", 4, "--out", out)
    assert code == 0, err
    assert doc["out"] == str(out) and doc["users"] == 3 and doc["k"] == 4
    assert doc["exclude_seen"] is False  # this log has repeat consumption: auto keeps seen items, as evaluate does
    assert doc["seconds"] >= 0
    table = read_table(out)
    assert list(table.columns) == ["user_id", "rank", "item_id", "title", "score"]
    assert doc["rows"] == len(table) == 12
    assert list(dict.fromkeys(table["user_id"])) == users
    for user in users:
        code, single, err = call(capsys, "recommend", "--run", tiny_run, "--user", user, "--k", 4)
        assert code == 0, err
        rows = table[table["user_id"] == user]
        assert rows["rank"].tolist() == [1, 2, 3, 4]
        assert rows["item_id"].tolist() == [i["item"] for i in single["items"]]
        assert rows["score"].tolist() == pytest.approx([i["score"] for i in single["items"]], rel=1e-5, abs=1e-6)
        assert rows["title"].tolist() == [i.get("title") for i in single["items"]]
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp file left beside it


def test_batch_recommend_all_users_and_seen_items(tiny_run, small_dataset, tmp_path, capsys):
    data = small_dataset.sequences
    out = tmp_path / "all.parquet"
    code, doc, err = call(capsys, "recommend", "--run", tiny_run, "--users", "all", "--k", 3, "--include-seen",
                          "--out", out)
    assert code == 0, err
    table = pd.read_parquet(out)
    assert doc["users"] == data.n_users and doc["rows"] == len(table) == 3 * data.n_users
    assert doc["exclude_seen"] is False and set(table["user_id"]) == set(data.vocab.user_ids)


def test_recommend_decides_seen_items_as_evaluate_does(tiny_run, small_dataset, capsys):
    """One rule for every command and page: auto = the log's default (off where people repeat items), so the CLI's
    top-K is the list the run's own evaluation ranks; --include-seen still means off."""
    from seqrec_core.evaluation import default_exclude_seen

    data = small_dataset.sequences
    user = data.vocab.user_ids[0]
    seen = {data.vocab.item_id(int(i)) for i in data.sequences[0]}
    answers = {}
    for flags in ((), ("--exclude-seen", "on"), ("--exclude-seen", "off"), ("--include-seen",)):
        code, doc, err = call(capsys, "recommend", "--run", tiny_run, "--user", user, "--k", 10, *flags)
        assert code == 0, err
        answers[flags] = doc
    assert answers[()]["exclude_seen"] is default_exclude_seen(data)
    on, off = answers[("--exclude-seen", "on")], answers[("--exclude-seen", "off")]
    assert on["exclude_seen"] is True and not seen & {i["item"] for i in on["items"]}
    assert off["exclude_seen"] is False and answers[("--include-seen",)] == off


@pytest.mark.parametrize("argv, needle", [
    (["recommend", "--user", "{u}", "--users", "{u}", "--out", "{d}/top.csv"], "not both"),
    (["recommend", "--user", "{u}", "--out", "{d}/top.csv"], "--out"),
    (["recommend", "--users", "{u}"], "--out"),
    (["recommend"], "--user"),
    (["recommend", "--users", "{u},nobody-here,also-nobody", "--out", "{d}/top.csv"], "nobody-here"),
    (["recommend", "--users", "{u}", "--out", "{d}/top.xlsx"], ".csv or .parquet"),
    (["recommend", "--users", "{u}", "--out", "{d}/no-folder/top.csv"], "folder"),
    (["recommend", "--users", "{u}", "--out", "{d}/top.csv", "--at", "2024-03-01T09:00Z"], "--time-features"),
    (["recommend", "--users", "{u}", "--out", "{d}/top.csv", "--k", "0"], "--k"),
    (["recommend", "--users", "{u}", "--out", "{d}/top.csv", "--include-seen", "--exclude-seen", "on"], "contradict"),
    (["explain", "--users", "{u}", "--out", "{d}/ex.txt"], ".json"),
    (["explain", "--user", "{u}", "--users", "{u}", "--out", "{d}/ex.json"], "not both"),
    (["explain", "--users", "nobody-here", "--out", "{d}/ex.csv"], "nobody-here"),
    (["explain", "--user", "{u}", "--out", "{d}/ex.csv"], "--out"),
])
def test_batch_refusals_are_one_line_and_write_nothing(argv, needle, tiny_run, small_dataset, tmp_path, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    user = small_dataset.sequences.vocab.user_ids[0]
    argv = [a.format(u=user, d=folder) for a in argv] + ["--run", str(tiny_run)]
    code, doc, err = call(capsys, *argv)
    assert code == 2 and doc is None
    assert err.count("\n") == 1 and err.startswith("error: ") and needle in err, err
    assert list(folder.iterdir()) == []


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    from seqrec_core.cli.common import write_output

    target = tmp_path / "top.csv"
    write_output(pd.DataFrame({"a": [1]}), str(target), "csv")

    def disk_full(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    with pytest.raises(OSError, match="disk full"):
        write_output(pd.DataFrame({"a": [2]}), str(target), "csv")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["top.csv"]
    assert pd.read_csv(target)["a"].tolist() == [1]


def test_batch_explain_rows_match_the_single_command(tiny_run, small_dataset, tmp_path, capsys):
    ids = small_dataset.sequences.vocab.user_ids
    users = [ids[2], ids[1]]
    singles = {}
    for user in users:
        code, doc, err = call(capsys, "explain", "--run", tiny_run, "--user", user, "--steps", 8)
        assert code == 0, err
        singles[user] = doc
    out = tmp_path / "ex.csv"
    code, doc, err = call(capsys, "explain", "--run", tiny_run, "--users", ",".join(users), "--steps", 8,
                          "--out", out)
    assert code == 0, err
    table = pd.read_csv(out, dtype={"user": str, "target": str, "item": str})
    assert list(table.columns) == ["user", "target", "method", "position", "item", "timestamp", "lag", "attribution",
                                   "target_score", "baseline_score", "convergence_delta", "target_rank"]
    assert doc == {"out": str(out), "users": 2, "rows": len(table), "method": "ig", "seconds": doc["seconds"]}
    assert list(dict.fromkeys(table["user"])) == users
    for user, single in singles.items():
        rows = table[table["user"] == user]
        history = single["history"]
        assert rows["item"].tolist() == [h["item"] for h in history]
        assert rows["lag"].tolist() == [h["lag"] for h in history]
        assert rows["timestamp"].tolist() == [h["timestamp"] for h in history]
        assert rows["attribution"].tolist() == pytest.approx([h["attribution"] for h in history], abs=1e-6)
        assert set(rows["target"]) == {single["target"]} and set(rows["target_rank"]) == {single["target_rank"]}
        assert rows["convergence_delta"].iloc[0] == pytest.approx(single["convergence_delta"], abs=1e-6)

    out_json = tmp_path / "ex.json"
    code, doc, err = call(capsys, "explain", "--run", tiny_run, "--users", ",".join(users), "--steps", 8,
                          "--method", "occlusion", "--out", out_json)
    assert code == 0, err
    docs = json.loads(out_json.read_text())
    assert [d["user"] for d in docs] == users and all(d["method"] == "occlusion" for d in docs)
    assert doc["rows"] == sum(len(d["history"]) for d in docs)
    code, single, err = call(capsys, "explain", "--run", tiny_run, "--user", users[0], "--method", "occlusion")
    assert code == 0 and single["target"] == docs[0]["target"]
    assert [h["attribution"] for h in single["history"]] == pytest.approx(
        [h["attribution"] for h in docs[0]["history"]], abs=1e-6)


def test_stored_histories_rebuild_the_data_of_the_log(tiny_run, small_dataset):
    from seqrec_core.runs import read_run_files

    unit = read_unit(tiny_run, "histories", {})
    assert unit is not None and unit.info["has_time"] is True  # the analysis after training stored them
    files = read_run_files(tiny_run)
    fingerprint = small_dataset.fingerprint
    rebuilt = load_sequences(tiny_run, files.vocab, fingerprint)
    assert rebuilt is not None
    assert_same_sequences(rebuilt, small_dataset.sequences)
    assert load_sequences(tiny_run, files.vocab, "0" * 16) is None  # other data: stale
    assert load_sequences(tiny_run, files.vocab, None) is None


def test_histories_of_a_log_without_times_round_trip_and_damage_reads_as_missing(tmp_path):
    events = pd.DataFrame({"user_id": ["b", "b", "a", "a", "a", "c"], "item_id": ["x", "y", "y", "z", "x", "z"],
                           "timestamp": np.array([0, 1, 0, 1, 2, 0], dtype=np.int64)})
    data = build_sequences(events)
    assert data.has_time is False
    tables, info = HISTORIES.compute(SimpleNamespace(data=data), {}, None)
    write_unit(tmp_path, "histories", {}, tables, info=info, fingerprint=data.fingerprint, weights="w",
               version=HISTORIES.version, seconds=0.0)
    rebuilt = load_sequences(tmp_path, data.vocab, data.fingerprint)
    assert rebuilt is not None
    assert_same_sequences(rebuilt, data)
    other = build_sequences(events.assign(user_id=events["user_id"] + "2")).vocab  # other ids, same shape
    assert load_sequences(tmp_path, other, data.fingerprint) is None
    table = next((tmp_path / "analysis").glob("histories-*/events.parquet"))
    table.write_bytes(b"PAR1 not a table")
    assert load_sequences(tmp_path, data.vocab, data.fingerprint) is None  # the caller reads the log instead


def test_a_run_with_stored_histories_serves_without_its_log(run_copy, small_dataset, tmp_path, capsys, monkeypatch):
    user = small_dataset.sequences.vocab.user_ids[3]
    log_path = small_dataset.source.path
    with_log = {}
    for command in ("recommend", "explain"):
        code, with_log[command], err = call(capsys, command, "--run", run_copy, "--user", user, "--data", log_path,
                                            *(["--steps", "8"] if command == "explain" else []))
        assert code == 0, err
    config = json.loads((run_copy / "config.json").read_text())
    config["data"]["source"]["path"] = str(tmp_path / "moved-away.parquet")  # the log did not travel with the run
    (run_copy / "config.json").write_text(json.dumps(config))

    def no_log(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the log was opened")

    monkeypatch.setattr("seqrec_core.cli.common.open_dataset", no_log)
    monkeypatch.setattr("seqrec_core.data.dataset.open_dataset", no_log)
    code, served, err = call(capsys, "recommend", "--run", run_copy, "--user", user)
    assert code == 0, err
    assert [i["item"] for i in served["items"]] == [i["item"] for i in with_log["recommend"]["items"]]
    assert [i["score"] for i in served["items"]] == pytest.approx([i["score"] for i in with_log["recommend"]["items"]])
    code, served, err = call(capsys, "explain", "--run", run_copy, "--user", user, "--steps", 8)
    assert code == 0, err
    want = with_log["explain"]
    assert served["target"] == want["target"] and served["target_rank"] == want["target_rank"]
    assert [(h["item"], h["timestamp"], h["lag"]) for h in served["history"]] == [
        (h["item"], h["timestamp"], h["lag"]) for h in want["history"]]
    assert [h["attribution"] for h in served["history"]] == pytest.approx([h["attribution"] for h in want["history"]],
                                                                          abs=1e-6)
    code, doc, err = call(capsys, "recommend", "--run", run_copy, "--users", user, "--out", tmp_path / "t.csv")
    assert code == 0 and doc["rows"] == 10, err
    code, doc, err = call(capsys, "evaluate", "--run", run_copy)
    assert code == 0 and doc["users"] > 0, err
    monkeypatch.undo()

    shutil.rmtree(read_unit(run_copy, "histories", {}).folder)  # without them the run needs its log again
    code, doc, err = call(capsys, "recommend", "--run", run_copy, "--user", user)
    assert code == 2 and "moved-away.parquet" in err and err.count("\n") == 1

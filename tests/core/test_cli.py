"""The CLI contract: JSON on stdout, exit 2 + one line on stderr for bad input, nothing written on failure."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqrec_core", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def assert_clean_refusal(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert proc.stdout == ""


def test_validate_prints_counts(tmp_path):
    rows = ["user_id,item_id,timestamp"] + [f"u{u},i{(u + k) % 7},2024-01-0{1 + k % 9}T10:00:00Z"
                                            for u in range(5) for k in range(4)]
    path = tmp_path / "log.csv"
    path.write_text("\n".join(rows))
    proc = cli("validate", "--data", str(path))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["users"] == 5 and out["events"] == 20 and out["items"] == 7
    assert out["time_span"][0].startswith("2024-01-01")


def test_bad_inputs_exit_2_with_one_line(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert_clean_refusal(cli("validate", "--data", str(empty)), "empty.csv")
    assert_clean_refusal(cli("validate", "--data", str(tmp_path / "missing.csv")), "missing.csv")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1\x00\x00garbage")
    assert_clean_refusal(cli("validate", "--data", str(junk)), "junk.parquet")
    single = tmp_path / "single.csv"
    single.write_text("user,item,timestamp\n" + "\n".join(f"u{u},i{u},{1_700_000_000 + u}" for u in range(20)))
    assert_clean_refusal(cli("train", "--data", str(single), "--model", "sasrec", "--out", str(tmp_path / "r")))
    assert not (tmp_path / "r").exists()
    assert_clean_refusal(cli("train", "--data", "demo", "--model", "nosuchmodel", "--out", str(tmp_path / "r2")))
    assert not (tmp_path / "r2").exists()
    assert_clean_refusal(cli("train", "--data", "demo"))  # --model and --out missing
    assert_clean_refusal(cli("evaluate", "--run", str(tmp_path / "no-run")), "no-run")


@pytest.mark.slow
def test_train_evaluate_recommend_round_trip(tmp_path, small_dataset):
    data = tmp_path / "small.parquet"
    small_dataset.events.to_parquet(data, index=False)
    run = tmp_path / "run"
    proc = cli("train", "--data", str(data), "--model", "sasrec", "--out", str(run), "--epochs", "1",
               "--max-len", "20", "--hidden-size", "16", "--num-layers", "1", "--num-heads", "1", "--device", "cpu",
               "--item-dropout", "0.1")
    assert proc.returncode == 0, proc.stderr
    trained = json.loads(proc.stdout)
    assert trained["model"] == "sasrec" and Path(trained["run_dir"]) == run
    assert json.loads((run / "config.json").read_text())["model"]["item_dropout"] == 0.1
    assert 0 <= trained["metrics"]["test"]["NDCG@10"] <= 1
    assert {"config.json", "model.safetensors", "vocab.json", "metrics.json"} <= {p.name for p in run.iterdir()}

    proc = cli("evaluate", "--run", str(run))
    assert proc.returncode == 0, proc.stderr
    evaluated = json.loads(proc.stdout)
    assert evaluated["metrics"]["NDCG@10"] == pytest.approx(trained["metrics"]["test"]["NDCG@10"], abs=1e-6)
    assert set(evaluated["baselines"]) == {"popularity", "markov", "itemknn"}
    for metric in ("NDCG@10", "AUC", "GAUC"):  # every metric carries its 95% bootstrap interval
        lo, hi = evaluated["intervals_95"][metric]
        assert lo <= evaluated["metrics"][metric] <= hi
    assert 0.5 < evaluated["metrics"]["AUC"] <= 1  # a trained model ranks the next item above most of the catalogue
    assert evaluated["exclude_seen"] is False  # the demo log has repeat consumption, so auto keeps seen items

    user = small_dataset.sequences.vocab.user_ids[0]
    proc = cli("recommend", "--run", str(run), "--user", user, "--k", "5")
    assert proc.returncode == 0, proc.stderr
    recs = json.loads(proc.stdout)
    assert recs["user"] == user and len(recs["items"]) == 5
    assert recs["exclude_seen"] is evaluated["exclude_seen"]  # one rule: the top 5 is what the evaluation ranks
    proc = cli("recommend", "--run", str(run), "--user", user, "--k", "5", "--exclude-seen", "on")
    seen = {small_dataset.sequences.vocab.item_id(i) for i in small_dataset.sequences.sequences[0]}
    assert not seen & {r["item"] for r in json.loads(proc.stdout)["items"]}
    assert all("title" in r for r in recs["items"])
    assert_clean_refusal(cli("recommend", "--run", str(run), "--user", "nobody"), "nobody")


def test_explain_and_embed_follow_the_contract(tiny_run, small_dataset):
    user = small_dataset.sequences.vocab.user_ids[1]
    proc = cli("explain", "--run", str(tiny_run), "--user", user, "--steps", "16")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["user"] == user and out["method"] == "ig" and out["target"]
    history = out["history"]
    assert [h["lag"] for h in history] == list(range(len(history), 0, -1))  # oldest first, 1 = latest
    assert {"position", "item", "timestamp", "lag", "attribution"} <= set(history[0])
    # completeness: the attributions add up to the score difference up to the reported delta
    total = sum(h["attribution"] for h in history)
    assert total - (out["target_score"] - out["baseline_score"]) == pytest.approx(out["convergence_delta"], abs=1e-3)

    proc = cli("embed", "--run", str(tiny_run), "--method", "pca")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["what"] == "items" and out["method"] == "pca"
    assert len(out["points"]) == small_dataset.sequences.vocab.n_items
    assert_clean_refusal(cli("explain", "--run", str(tiny_run), "--user", user, "--target", "no-such-item"),
                         "no-such-item")


def test_recommend_at_parses_request_times_and_needs_a_time_aware_run(tiny_run, small_dataset):
    from seqrec_core.cli.run_commands import request_time as _request_time
    from seqrec_core.errors import InputError

    assert _request_time("2024-03-01T09:00Z") == _request_time("2024-03-01T09:00") == 1_709_283_600
    assert _request_time("1709283600") == 1_709_283_600
    with pytest.raises(InputError, match="not a time"):
        _request_time("next tuesday-ish")
    user = small_dataset.sequences.vocab.user_ids[1]
    proc = cli("recommend", "--run", str(tiny_run), "--user", user, "--at", "2024-03-01T09:00Z")
    assert_clean_refusal(proc, "--time-features")

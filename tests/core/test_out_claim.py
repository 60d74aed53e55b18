"""`train --out` is claimed before any data is read or a model trained (issue 16, item 4).

Two trainings aimed at the same folder: the second is refused with one line naming the first's pid, and the first's
run is saved intact. A place that cannot take the run is refused before the data is opened. A claim that ends
without a run (refused, failed, cancelled) leaves no folder it made behind; a folder the person made is kept.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_kill_training import TINY, events, write_log

from seqrec_core.cli import main
from seqrec_core.errors import InputError
from seqrec_core.jobs.claim import claim_run_dir
from seqrec_core.runs import list_runs, load_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_log(tmp_path_factory.mktemp("claim_log") / "log.csv")


def _one_line(capsys: pytest.CaptureFixture[str], code: int, *needles: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, captured.err)
    assert "Traceback" not in captured.err and captured.out == ""
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_a_second_training_on_the_same_out_is_refused_and_the_first_run_is_intact(
        log_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, progress = tmp_path / "run", tmp_path / "first.jsonl"
    first = subprocess.Popen([sys.executable, "-m", "seqrec_core", "train", "--data", str(log_csv), "--out", str(out),
                              "--progress", str(progress), *TINY], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 120
        while "epoch" not in events(progress) and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert "epoch" in events(progress), "the first training never validated"
        assert out.is_dir() and list(out.iterdir()) == []  # claimed: the run is not there yet

        started = time.perf_counter()
        code = main(["train", "--data", str(log_csv), "--out", str(out), *TINY])
        line = _one_line(capsys, code, "is being written by another job", str(out))
        assert time.perf_counter() - started < 5  # refused at once, not after reading the log and training
        if Path("/proc/locks").is_file():
            assert f"(pid {first.pid})" in line
    finally:
        first.send_signal(signal.SIGTERM)  # the first stops after its current step and keeps its best epoch
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr.decode()[-500:]
    summary = json.loads(stdout)
    run = load_run(out)
    assert summary["run_dir"] == str(out) and run.config["stopped_reason"] == "cancelled" and run.history
    assert [r.name for r in list_runs(tmp_path)] == ["run"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.jsonl", "run"]  # no temp or probe left


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the job gets as far as reading the data or training."""
    import seqrec_core.jobs.spec as spec
    import seqrec_core.jobs.train as jobs

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the --out problem was found only after the job started on the data")

    monkeypatch.setattr(spec.DataSpec, "open", refuse)
    monkeypatch.setattr(jobs, "train_model", refuse)


@pytest.mark.parametrize("case", ["under_a_file", "name_too_long", "permission_denied", "read_only"])
def test_an_out_that_cannot_take_the_run_is_refused_before_the_data_is_read(
        case: str, log_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a_file").write_text("x")
    out = {"under_a_file": tmp_path / "a_file" / "run", "name_too_long": tmp_path / ("n" * 250)}.get(
        case, tmp_path / "new" / "run")
    if case == "permission_denied":  # as chmod 500 would (root writes through it): the mkdir itself is refused
        real_mkdir = os.mkdir
        monkeypatch.setattr(os, "mkdir", lambda path, *a, **k: (_ for _ in ()).throw(
            PermissionError(errno.EACCES, "Permission denied", str(path))) if Path(path) == out.parent
            else real_mkdir(path, *a, **k))
    if case == "read_only":  # the folder can be made but not written (a read-only mount): the probe finds out
        import tempfile
        monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: (_ for _ in ()).throw(
            OSError(errno.EROFS, "Read-only file system")))
    _no_work(monkeypatch)
    progress = tmp_path / "progress.jsonl"
    code = main(["train", "--data", str(log_csv), "--out", str(out), "--progress", str(progress), *TINY])
    expect = {"under_a_file": "is a file, not a folder", "name_too_long": "250 bytes",
              "permission_denied": "permission denied", "read_only": "Read-only file system"}[case]
    _one_line(capsys, code, expect, "--out")
    assert not progress.exists()  # no progress (and so no epoch) was ever logged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing made here is left


def test_a_refused_or_failed_training_leaves_no_claimed_folder(
        log_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    single = tmp_path / "single.csv"  # loads, but no user has enough events: refused after the claim
    single.write_text("user,item,ts\n" + "\n".join(f"u{u},i{u},{1_700_000_000 + u}" for u in range(20)) + "\n")
    code = main(["train", "--data", str(single), "--out", str(tmp_path / "new" / "deeper" / "run"), *TINY])
    _one_line(capsys, code)
    code = main(["train", "--data", str(log_csv), "--out", str(tmp_path / "budget" / "run"), *TINY,
                 "--time-budget", "1e-9"])  # fails after training started: the budget ran out
    _one_line(capsys, code, "--time-budget")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["single.csv"]  # neither run folder nor its parents

    import seqrec_core.jobs.train as jobs

    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug in training")

    monkeypatch.setattr(jobs, "train_model", crash)
    with pytest.raises(RuntimeError, match="a bug in training"):
        main(["train", "--data", str(log_csv), "--out", str(tmp_path / "crash" / "run"), *TINY])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["single.csv"]


def _tiny_data():  # noqa: ANN202 - SequenceData
    import pandas as pd

    from seqrec_core.data import build_sequences

    return build_sequences(pd.DataFrame([(f"u{u}", f"i{(u + t) % 9}", t) for u in range(12) for t in range(6)],
                                        columns=["user_id", "item_id", "timestamp"]))


def test_library_claims_keep_what_they_did_not_make_and_never_take_a_run_unasked(tmp_path: Path) -> None:
    from seqrec_core.jobs import run_training_job
    from seqrec_core.models import build_model
    from seqrec_core.runs import save_run
    from seqrec_core.training import TrainConfig, TrainingCancelled

    data = _tiny_data()
    cfg = TrainConfig(epochs=1, batch_size=16, max_len=5, device="cpu")
    with pytest.raises(TrainingCancelled):  # cancelled before any validation: nothing saved, nothing made left
        run_training_job(data, "gru4rec", {"hidden_size": 8}, cfg, tmp_path / "a" / "b" / "run", {},
                         should_stop=lambda: True)
    assert list(tmp_path.iterdir()) == []

    mine = tmp_path / "mine"  # an empty folder the person made (or a killed job left): taken, and kept
    mine.mkdir()
    with claim_run_dir(mine) as claimed, claim_run_dir(mine):  # re-entrant: the train job inside a spec job
        assert claimed == mine
    assert mine.is_dir()

    run = save_run(tmp_path / "run", model=build_model("gru4rec", data.vocab.n_items, hidden_size=8, max_len=5),
                   config={}, vocab=data.vocab, metrics={}, history=[])
    with pytest.raises(InputError, match="exists and is not empty"):  # the CLI and the dashboard's jobs
        with claim_run_dir(run):
            pass
    with claim_run_dir(run, replace_run=True):  # the library's run_training_job replaces a run when it saves
        pass
    assert load_run(run).config["family"] == "gru4rec"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "run"]

"""No data loss: killing `python -m seqrec_core train` (SIGKILL) or cancelling it (SIGTERM) midway leaves either a
complete, loadable run or nothing, and never a temp folder; a save killed between its two renames gets the
previous run back. The three CLI processes run side by side so the module stays near 15 s on two cores."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from seqrec_core.runs import _HOST, STALE_SECONDS, clean_stale_temp, list_runs, load_run

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--model", "sasrec", "--epochs", "200", "--patience", "200", "--hidden-size", "8", "--num-layers", "1",
        "--num-heads", "1", "--max-len", "10", "--batch-size", "32", "--device", "cpu", "--seed", "0"]
# (name, signal, the progress event after which it is sent)
PLANS = {"kill": (signal.SIGKILL, "epoch"), "term": (signal.SIGTERM, "epoch"), "term_early": (signal.SIGTERM, "start")}


def write_log(path: Path) -> Path:
    lines = ["user,item,ts"] + [f"u{u},i{(u + 3 * t) % 50},{1_600_000_000 + 3600 * t + u}"
                                for u in range(300) for t in range(20)]
    path.write_text("\n".join(lines) + "\n")
    return path


def events(path: Path) -> list[str]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line)["event"])
        except (json.JSONDecodeError, KeyError):
            continue  # a line being written
    return out


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Start three trainings at once, signal each when its trigger event appears, and collect what is left."""
    base = tmp_path_factory.mktemp("kill")
    data = write_log(base / "log.csv")
    procs = {}
    for name in PLANS:
        root = base / name
        root.mkdir()
        cmd = [sys.executable, "-m", "seqrec_core", "train", "--data", str(data), "--out", str(root / "run"),
               "--progress", str(base / f"{name}.jsonl"), *TINY]
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       env={**os.environ, "OMP_NUM_THREADS": "1"})  # three at once on two cores
    sent: dict[str, float] = {}
    deadline = time.time() + 120
    while len(sent) < len(procs) and time.time() < deadline:
        for name, proc in procs.items():
            sig, trigger = PLANS[name]
            if name not in sent and trigger in events(base / f"{name}.jsonl"):
                proc.send_signal(sig)
                sent[name] = time.time()
            elif name not in sent and proc.poll() is not None:
                pytest.fail(f"{name} ended before it was signalled: {proc.stderr.read().decode()[-500:]}")
        time.sleep(0.02)
    result = {}
    for name, proc in procs.items():
        if name not in sent:
            proc.kill()
        stdout, stderr = proc.communicate(timeout=60)
        result[name] = {"rc": proc.returncode, "stdout": stdout.decode(), "stderr": stderr.decode(),
                        "root": base / name, "events": events(base / f"{name}.jsonl"),
                        "exit_after": time.time() - sent.get(name, time.time())}
    assert set(sent) == set(procs), "training never started"
    return result


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name != "run")


def test_sigkill_midway_leaves_nothing(outcomes: dict) -> None:
    out = outcomes["kill"]
    assert out["rc"] == -signal.SIGKILL
    assert "epoch" in out["events"] and "done" not in out["events"]  # it really was killed while training
    run = out["root"] / "run"
    assert not run.exists() or list(run.iterdir()) == []
    assert leftovers(out["root"]) == [] and list_runs(out["root"]) == []


def test_sigterm_after_a_validation_keeps_the_best_checkpoint(outcomes: dict) -> None:
    out = outcomes["term"]
    assert out["rc"] == 0, out["stderr"][-500:]
    summary = json.loads(out["stdout"])
    assert summary["stopped_reason"] == "cancelled" and summary["epochs"] < 200
    run = load_run(out["root"] / "run")
    assert run.config["stopped_reason"] == "cancelled" and run.history
    assert leftovers(out["root"]) == [] and [r.name for r in list_runs(out["root"])] == ["run"]


def test_sigterm_before_any_validation_saves_all_or_nothing(outcomes: dict) -> None:
    out = outcomes["term_early"]
    run = out["root"] / "run"
    if out["rc"] == 130:  # cancelled before the first validation: nothing was worth keeping
        assert not run.exists() and out["events"][-1] == "cancelled"
        assert out["stderr"].strip().splitlines()[-1].startswith("cancelled before the first validation")
    else:  # the first validation won the race: then it is a complete run
        assert out["rc"] == 0 and load_run(run).config["stopped_reason"] == "cancelled"
    assert leftovers(out["root"]) == []


SAVE_AND_DIE = textwrap.dedent("""
    import os, signal, sys
    import pandas as pd
    from seqrec_core.data import build_sequences
    from seqrec_core.models import build_model
    from seqrec_core.runs import save_run
    root, when = sys.argv[1], sys.argv[2]
    data = build_sequences(pd.DataFrame([(f"u{u}", f"i{(u + t) % 9}", t) for u in range(10) for t in range(5)],
                                        columns=["user_id", "item_id", "timestamp"]))
    model = build_model("gru4rec", data.vocab.n_items, hidden_size=8, max_len=5)
    def save(tag):
        save_run(f"{root}/r", model=model, config={}, vocab=data.vocab, metrics={"test": {"NDCG@10": tag}},
                 history=[])
    if when == "swap":
        save(1.0)
        real = os.rename
        def rename(src, dst):  # die right after the old run was set aside, before the new one is in place
            real(src, dst)
            if ".old-" in str(dst):
                os.kill(os.getpid(), signal.SIGKILL)
        os.rename = rename
    else:
        import safetensors.torch
        real_save = safetensors.torch.save_file
        def save_file(*args, **kwargs):  # die while the temp folder is half written
            real_save(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
        safetensors.torch.save_file = save_file
    save(2.0)
""")


def test_a_save_killed_between_renames_or_while_writing_loses_nothing(tmp_path: Path) -> None:
    procs = {when: subprocess.Popen([sys.executable, "-c", SAVE_AND_DIE, str(tmp_path / when), when], cwd=ROOT,
                                    stderr=subprocess.PIPE) for when in ("swap", "write")}
    for proc in procs.values():
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err.decode()[-500:]
    swap, write = tmp_path / "swap", tmp_path / "write"
    assert sorted(p.name.split("-")[0] for p in swap.iterdir()) == [".r.old", ".r.tmp"]  # the window is real
    assert [p.name.split("-")[0] for p in write.iterdir()] == [".r.tmp"]
    assert [r.name for r in list_runs(swap)] == ["r"]  # the previous run is back, complete
    run = load_run(swap / "r")
    assert run.metrics["test"]["NDCG@10"] == 1.0 and [p.name for p in swap.iterdir()] == ["r"]
    assert list_runs(write) == [] and list(write.iterdir()) == []


def test_stale_means_a_dead_writer_or_an_old_folder(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = tmp_path / f".r.tmp-{os.getpid()}-{_HOST}-live"
    old_live = tmp_path / f".r.tmp-{os.getpid()}-{_HOST}-ancient"
    gone = tmp_path / f".r.tmp-{dead.pid}-{_HOST}-gone"
    elsewhere = tmp_path / f".r.tmp-{dead.pid}-0badc0de-remote"  # another machine's writer: only age counts there
    mine = tmp_path / ".notes"  # not ours: hidden folders with other names are left alone
    for folder in (live, old_live, gone, elsewhere, mine):
        folder.mkdir()
    past = time.time() - STALE_SECONDS - 60
    os.utime(old_live, (past, past))
    removed = clean_stale_temp(tmp_path)
    assert sorted(removed) == sorted([old_live, gone])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, elsewhere.name, mine.name])


def test_the_train_page_says_a_killed_job_saved_nothing(tmp_path: Path) -> None:
    """The dashboard's job panel: a job whose process was killed names the signal instead of a stray log line."""
    from seqrec_core.jobs import runner as train_jobs

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    job = train_jobs.Job(name="j", folder=tmp_path, run_dir=tmp_path / "run", pid=proc.pid, started=time.time(),
                         dataset="d", fingerprint="f")
    assert train_jobs.status(job, []) == "running"
    proc.kill()
    deadline = time.time() + 10
    while train_jobs.is_alive(job) and time.time() < deadline:
        time.sleep(0.05)
    assert train_jobs.status(job, []) == "failed" and train_jobs.exit_info(job) == {"signal": signal.SIGKILL}
    assert "SIGKILL" in train_jobs.error_message(job, []) and "nothing was saved" in train_jobs.error_message(job, [])

"""Every file of the hostile corpus is refused by `validate` and `train` the way the CLI contract says: exit 2,
exactly one line on stderr naming the file, nothing on stdout, no traceback, and no run folder left behind.

All cases run in-process through ``cli.main`` (fast; the log records are checked too, since in-process the
logging handler may not be the real stderr); a few also run as real subprocesses so the process-level contract
(interpreter stderr, exit status) is seen end to end. Nothing here trains successfully.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_hostile_inputs import HOSTILE_EXPECT, make_hostile_corpus  # noqa: E402

from seqrec_core.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("validate", "train")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_hostile_corpus(tmp_path_factory.mktemp("hostile_cli"))


def _argv(command: str, name: str, path: Path, out: Path) -> list[str]:
    extra = ["--user-col", "visitor"] if name == "wrong_user_override.csv" else []
    argv = [command, "--data", str(path), *extra]
    if command == "train":  # tiny settings: should a refusal ever go missing, the test still ends quickly
        argv += ["--model", "sasrec", "--out", str(out), "--epochs", "1", "--time-budget", "5", "--device", "cpu"]
    return argv


def _check_refusal(name: str, code: int, stdout: str, stderr: str, out: Path | None,
                   expect: list[str] | None = None) -> None:
    """The contract for bad input: exit 2, nothing on stdout, one ``error:`` line holding ``name`` and each of
    ``expect`` (default: the corpus's fragments for the file ``name``), no traceback, no run folder at ``out``."""
    assert code == 2, (name, code, stderr)
    assert stdout == "", (name, stdout)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, (name, stderr)
    line = lines[0]
    assert line.startswith("error: ") and name in line, (name, line)
    assert all(fragment in line for fragment in (HOSTILE_EXPECT[name] if expect is None else expect)), (name, line)
    assert "Traceback" not in stderr
    assert out is None or not out.exists(), f"{name}: a run folder was written"


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", sorted(HOSTILE_EXPECT))
def test_cli_refuses_hostile_file(command: str, name: str, corpus: dict[str, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        code = main(_argv(command, name, corpus[name], out))
    captured = capsys.readouterr()
    _check_refusal(name, code, captured.out, captured.err, out)
    # Anything logged at WARNING would be a second stderr line in a real process.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], (name, caplog.text)


@pytest.mark.parametrize("name", ["latin1_bad_time.csv", "traversal.zip"])
def test_cli_refusal_in_a_real_process(name: str, corpus: dict[str, Path], tmp_path: Path) -> None:
    """End to end for a few files: the interpreter's own stderr holds one line, for validate and for train."""
    for command in COMMANDS:
        out = tmp_path / f"run_{command}"
        proc = subprocess.run([sys.executable, "-m", "seqrec_core", *_argv(command, name, corpus[name], out)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        _check_refusal(name, proc.returncode, proc.stdout, proc.stderr, out)


# ----------------------------------------------------------------------------- hostile options (issue 16, items 3-4)
# Each probe: (name, argv after the command's fixed part, fragments the one line must hold). Paths are written as
# {tmp}, {log}, {file}, {dangling}, {loop}; {out} is the run folder (or file) the probe aims at.
TRAIN = ["train", "--data", "{log}", "--model", "sasrec", "--epochs", "1", "--max-len", "10", "--hidden-size", "8",
         "--num-layers", "1", "--num-heads", "1", "--batch-size", "32", "--device", "cpu", "--seed", "0"]
OPTION_PROBES: dict[str, tuple[list[str], list[str]]] = {
    "seed_negative": ([*TRAIN, "--out", "{out}", "--seed", "-1"], ["--seed", "0 to 4,294,967,295"]),
    "seed_float": ([*TRAIN, "--out", "{out}", "--seed", "1e20"], ["--seed", "'1e20'"]),
    "seed_huge": ([*TRAIN, "--out", "{out}", "--seed", "99999999999999999999999"], ["--seed", "out of range"]),
    "out_is_a_file": ([*TRAIN, "--out", "{file}"], ["exists and is a file", "--out"]),
    "out_dangling_link": ([*TRAIN, "--out", "{dangling}"], ["symbolic link to a missing place", "--out"]),
    "out_under_a_file": ([*TRAIN, "--out", "{file}/run"], ["is a file, not a folder", "--out"]),
    "out_under_a_file_deeper": ([*TRAIN, "--out", "{file}/a/run"], ["is a file, not a folder"]),
    "out_name_too_long": ([*TRAIN, "--out", "{tmp}/" + "x" * 300], ["300 bytes", "shorter name"]),
    "out_name_too_long_for_temp": ([*TRAIN, "--out", "{tmp}/" + "y" * 240], ["240 bytes", "at most"]),
    "progress_is_a_folder": ([*TRAIN, "--out", "{out}", "--progress", "{tmp}"], ["--progress", "is a folder"]),
    "progress_missing_folder": ([*TRAIN, "--out", "{out}", "--progress", "{tmp}/nowhere/p.jsonl"],
                                ["--progress", "does not exist"]),
    "progress_inside_out": ([*TRAIN, "--out", "{tmp}", "--progress", "{tmp}/p.jsonl"], ["--progress", "inside"]),
    "data_symlink_loop": ([*TRAIN, "--out", "{out}", "--data", "{loop}"], ["--data", "symbolic link loop"]),
    "time_budget_too_small": ([*TRAIN, "--out", "{out}", "--time-budget", "1e-9"],
                              ["time budget", "before the first validation", "larger", "--time-budget"]),
    "time_budget_negative": ([*TRAIN, "--out", "{out}", "--time-budget", "-1"], ["--time-budget", "> 0"]),
    "time_budget_nan": ([*TRAIN, "--out", "{out}", "--time-budget", "nan"], ["--time-budget", "finite"]),
    "time_budget_inf": ([*TRAIN, "--out", "{out}", "--time-budget", "inf"], ["--time-budget", "finite"]),
    "epochs_zero": ([*TRAIN, "--out", "{out}", "--epochs", "0"], ["--epochs", "from 1"]),
    "lr_nan": ([*TRAIN, "--out", "{out}", "--lr", "nan"], ["--lr", "finite"]),
    "weight_decay_negative": ([*TRAIN, "--out", "{out}", "--weight-decay", "-0.1"], ["--weight-decay", ">= 0"]),
    "weight_average_inf": ([*TRAIN, "--out", "{out}", "--weight-average", "inf"], ["--weight-average"]),
    "batch_size_huge": ([*TRAIN, "--out", "{out}", "--batch-size", "1" + "0" * 30], ["--batch-size", "out of range"]),
    "patience_float": ([*TRAIN, "--out", "{out}", "--patience", "2.5"], ["--patience", "'2.5'"]),
    "model_too_big": ([*TRAIN, "--out", "{out}", "--hidden-size", "4096", "--num-layers", "48"],
                      ["48 layers x hidden 4096", "48.0 GB", "model-size limit", "SEQREC_MAX_MODEL_MB"]),
    "k_core_negative": ([*TRAIN, "--out", "{out}", "--k-core", "-1"], ["--k-core"]),
    "min_rating_nan": ([*TRAIN, "--out", "{out}", "--min-rating", "nan"], ["--min-rating", "finite"]),
    "embed_seed_negative": (["embed", "--run", "{out}", "--method", "pca", "--seed", "-1"], ["--seed"]),
    "recommend_at_nan": (["recommend", "--run", "{out}", "--user", "u1", "--at", "nan"], ["--at", "not a time"]),
    "recommend_at_inf": (["recommend", "--run", "{out}", "--user", "u1", "--at", "inf"], ["--at", "not a time"]),
    "recommend_at_negative": (["recommend", "--run", "{out}", "--user", "u1", "--at", "-1"], ["--at", "1970"]),
    "recommend_at_huge": (["recommend", "--run", "{out}", "--user", "u1", "--at", "9" * 30], ["--at", "2262"]),
    "recommend_at_far_future": (["recommend", "--run", "{out}", "--user", "u1", "--at", "9999999999999"],
                                ["--at", "out of range"]),
    "recommend_k_zero": (["recommend", "--run", "{out}", "--user", "u1", "--k", "0"], ["--k", "from 1"]),
    "explain_steps_negative": (["explain", "--run", "{out}", "--user", "u1", "--steps", "-5"], ["--steps"]),
    "analyze_sample_negative": (["analyze", "--run", "{out}", "--sample", "-1"], ["--sample", "from 0"]),
}


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A valid tiny log and the awkward places the probes aim at, made once."""
    from test_kill_training import write_log

    base = tmp_path_factory.mktemp("probe_places")
    (base / "a_file").write_text("not a folder\n")
    (base / "dangling").symlink_to(base / "nowhere")
    (base / "loop").symlink_to("loop")
    return {"log": write_log(base / "log.csv"), "file": base / "a_file", "dangling": base / "dangling",
            "loop": base / "loop"}


def _snapshot(folder: Path) -> set[tuple[str, str]]:
    """Every path under ``folder`` with its kind, symlinks not followed."""
    return {(str(p.relative_to(folder)), "link" if p.is_symlink() else "dir" if p.is_dir() else "file")
            for p in folder.rglob("*")}


@pytest.mark.parametrize("probe", sorted(OPTION_PROBES))
def test_cli_refuses_hostile_options(probe: str, places: dict[str, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """Exit 2 with one line naming the option, before anything is written: the folders involved hold exactly
    what they held before (no run folder, no claimed empty folder, no temp folder, no progress file)."""
    argv_template, expect = OPTION_PROBES[probe]
    fill = {"tmp": str(tmp_path), "out": str(tmp_path / "run"), **{k: str(v) for k, v in places.items()}}
    argv = [part.format(**fill) for part in argv_template]
    before = _snapshot(tmp_path), _snapshot(places["file"].parent)
    with caplog.at_level(logging.WARNING):
        code = main(argv)
    captured = capsys.readouterr()
    _check_refusal("error", code, captured.out, captured.err, tmp_path / "run", expect)
    assert (_snapshot(tmp_path), _snapshot(places["file"].parent)) == before, probe
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], (probe, caplog.text)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 500")
def test_cli_refuses_an_unwritable_out_folder(places: dict[str, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code = main([part.format(log=places["log"]) for part in TRAIN] + ["--out", str(locked / "run")])
        captured = capsys.readouterr()
        _check_refusal("error", code, captured.out, captured.err, locked / "run", ["permission denied", "--out"])
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_probes_in_a_real_process_end_in_one_line(places: dict[str, Path], tmp_path: Path) -> None:
    """End to end, for a parse-time probe and a claim-time one: the interpreter's stderr holds one line."""
    for probe in ("seed_negative", "out_under_a_file"):
        argv_template, expect = OPTION_PROBES[probe]
        fill = {"tmp": str(tmp_path), "out": str(tmp_path / "run"), **{k: str(v) for k, v in places.items()}}
        proc = subprocess.run([sys.executable, "-m", "seqrec_core", *(p.format(**fill) for p in argv_template)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        _check_refusal("error", proc.returncode, proc.stdout, proc.stderr, tmp_path / "run", expect)

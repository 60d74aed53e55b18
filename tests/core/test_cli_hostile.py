"""Every file of the hostile corpus is refused by `validate` and `train` the way the CLI contract says: exit 2,
exactly one line on stderr naming the file, nothing on stdout, no traceback, and no run folder left behind.

All cases run in-process through ``cli.main`` (fast; the log records are checked too, since in-process the
logging handler may not be the real stderr); a few also run as real subprocesses so the process-level contract
(interpreter stderr, exit status) is seen end to end. Nothing here trains successfully.
"""
from __future__ import annotations

import logging
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


def _check_refusal(name: str, code: int, stdout: str, stderr: str, out: Path) -> None:
    assert code == 2, (name, code, stderr)
    assert stdout == "", (name, stdout)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, (name, stderr)
    line = lines[0]
    assert line.startswith("error: ") and name in line, (name, line)
    assert all(fragment in line for fragment in HOSTILE_EXPECT[name]), (name, line)
    assert "Traceback" not in stderr
    assert not out.exists(), f"{name}: a run folder was written"


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

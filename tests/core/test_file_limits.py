"""The size cap on files opened by path (``SEQREC_MAX_FILE_MB``): checked before the file is read, refused with
one line that names the file, its size, the cap and how to raise it; the CLI exits 2 without a traceback. Also
the values of the bounds checked while a file streams (line length, inflate ratio, memory budget) and how their
refusals read; ``test_bounded_memory.py`` checks when they come."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqrec_core.cli import main
from seqrec_core.data.dataset import DataSource, open_dataset
from seqrec_core.data.limits import (
    DEFAULT_MAX_FILE_MB,
    DEFAULT_MAX_LINE_MB,
    MAX_FILE_ENV,
    MAX_INFLATE_RATIO,
    MAX_LINE_ENV,
    MEMORY_ENV,
    check_file_size,
    check_parse_memory,
    max_file_mb,
    max_inflate_ratio,
    max_line_bytes,
    refuse_if_larger,
    size_text,
)
from seqrec_core.data.loaders import load_events
from seqrec_core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    """A valid CSV log of 60 events (about 2 KB)."""
    rows = ["user_id,item_id,timestamp"] + [f"u{u},i{(u * 3 + k) % 11},{1_700_000_000 + 3600 * k}"
                                            for u in range(12) for k in range(5)]
    path = tmp_path / "log.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cli_validate_over_a_tiny_cap_exits_2_with_one_line(log_file: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(MAX_FILE_ENV, "0.001")  # about 1 KB
    assert main(["validate", "--data", str(log_file)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    size = size_text(log_file.stat().st_size)
    for needle in (str(log_file), size, "limit of 0.001 MB", f"{MAX_FILE_ENV}=", "0 = no limit"):
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in err


def test_cli_subprocess_refusal_has_no_traceback(log_file: Path) -> None:
    env = dict(os.environ) | {MAX_FILE_ENV: "0.0005"}
    proc = subprocess.run([sys.executable, "-m", "seqrec_core", "validate", "--data", str(log_file)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and MAX_FILE_ENV in proc.stderr


def test_the_cap_is_checked_before_reading(log_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the cap is memory: the file must never be read when it is over."""
    monkeypatch.setenv(MAX_FILE_ENV, "0.001")

    def no_reading(self: Path) -> bytes:
        raise AssertionError(f"{self} was read")

    monkeypatch.setattr(Path, "read_bytes", no_reading)
    with pytest.raises(InputError, match="over the data-file size limit"):
        load_events(log_file)


def test_raising_or_switching_off_the_cap_loads_the_file(log_file: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    for value in ("1", "0", "-5"):  # 1 MB is above the file; 0 or less switches the cap off
        monkeypatch.setenv(MAX_FILE_ENV, value)
        assert len(load_events(log_file)) == 60
    monkeypatch.setenv(MAX_FILE_ENV, "1")
    assert main(["validate", "--data", str(log_file)]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 60


def test_limit_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_FILE_ENV, raising=False)
    assert max_file_mb() == DEFAULT_MAX_FILE_MB >= 10_000  # the 10M-event bench log must still load by default
    monkeypatch.setenv(MAX_FILE_ENV, "  ")
    assert max_file_mb() == DEFAULT_MAX_FILE_MB
    monkeypatch.setenv(MAX_FILE_ENV, "0")
    assert max_file_mb() == math.inf
    monkeypatch.setenv(MAX_FILE_ENV, "250.5")
    assert max_file_mb() == 250.5
    for junk in ("abc", "nan", "20 GB"):  # a typo must not silently restore the default
        monkeypatch.setenv(MAX_FILE_ENV, junk)
        with pytest.raises(InputError, match=f"{MAX_FILE_ENV}='{junk}' is not a number"):
            max_file_mb()


def test_open_dataset_and_a_run_source_are_capped_too(log_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``evaluate --run`` reopens the recorded data path through open_dataset: the same cap applies."""
    monkeypatch.setenv(MAX_FILE_ENV, "0.001")
    with pytest.raises(InputError, match=r"log\.csv' is .* KB, over the data-file size limit"):
        open_dataset(DataSource(path=str(log_file)))


def test_missing_file_is_still_reported_as_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_FILE_ENV, "0.001")
    check_file_size(tmp_path / "nope.csv")  # no size to check: the reader reports the missing file
    with pytest.raises(InputError, match="does not exist"):
        load_events(tmp_path / "nope.csv")


def test_shared_refusal_reads_like_the_upload_one() -> None:
    """ui/uploads' upload check and the path check share refuse_if_larger: one sentence shape for both."""
    with pytest.raises(InputError) as info:
        refuse_if_larger("big_log.csv", 3686, 0.001, limit_name="this dashboard's upload limit", fix="compress it")
    assert str(info.value) == "big_log.csv is 3.6 KB, over this dashboard's upload limit of 0.001 MB; compress it"
    refuse_if_larger("ok.csv", 10**12, math.inf, limit_name="x", fix="y")  # no cap: never refuses
    refuse_if_larger("ok.csv", 2**20, 1.0, limit_name="x", fix="y")  # exactly at the cap is allowed
    assert [size_text(n) for n in (512, 3686, 5 * 2**20, 3 * 2**30)] == ["512 bytes", "3.6 KB", "5.0 MB", "3.0 GB"]


def test_a_titles_file_beside_a_ratings_file_is_capped_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MovieLens titles are read from a file beside the ratings: opened by path, so under the same cap."""
    from seqrec_core.data.metadata import titles_file_beside

    ratings = tmp_path / "ratings.csv"
    ratings.write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n" + "1,Toy Story (1995),Comedy\n" * 200)
    assert titles_file_beside(ratings)[0] == "movies.csv"
    monkeypatch.setenv(MAX_FILE_ENV, "0.001")
    with pytest.raises(InputError, match=r"movies\.csv' is .* KB, over the data-file size limit"):
        titles_file_beside(ratings)


# ------------------------------------------------------------------- the bounds checked while the bytes stream

def test_the_cap_is_checked_before_the_file_is_even_opened(log_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bounded reader opens files itself (not through Path.read_bytes): the cap still comes first."""
    from seqrec_core.data import containers

    monkeypatch.setenv(MAX_FILE_ENV, "0.001")
    monkeypatch.setattr(containers.os, "open", lambda *a, **k: (_ for _ in ()).throw(AssertionError("opened")))
    with pytest.raises(InputError, match="over the data-file size limit"):
        load_events(log_file)


@pytest.mark.parametrize(("env", "read", "default"), [
    (MAX_LINE_ENV, max_line_bytes, DEFAULT_MAX_LINE_MB * 2**20),
    ("SEQREC_MAX_INFLATE_RATIO", max_inflate_ratio, MAX_INFLATE_RATIO),
])
def test_stream_limit_values(env: str, read, default: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(env, raising=False)
    assert read() == default
    monkeypatch.setenv(env, "0")
    assert read() == math.inf  # 0 switches the check off
    monkeypatch.setenv(env, "many")
    with pytest.raises(InputError, match=f"{env}='many' is not a number"):  # a typo is not the default
        read()


def test_cli_memory_budget_refusal_is_one_line_naming_the_budget(log_file: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The estimate has a 16 MB constant, so a budget of 16 MB refuses even a 1 KB log: before parsing, one line
    with the size, the estimate, the budget and the variable to raise."""
    monkeypatch.setenv(MEMORY_ENV, "16")
    assert main(["validate", "--data", str(log_file)]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and "Traceback" not in err, err
    for needle in (f"{log_file.name} is {size_text(log_file.stat().st_size)} (61 lines)",
                   "reading it as csv needs about", f"the memory budget {MEMORY_ENV}=16 (16.0 MB)", "0 = no check"):
        assert needle in lines[0], (needle, lines[0])
    monkeypatch.setenv(MEMORY_ENV, "0")
    assert main(["validate", "--data", str(log_file)]) == 0


def test_machine_budget_refusal_names_the_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    from seqrec_core.data import limits

    monkeypatch.delenv(MEMORY_ENV, raising=False)
    monkeypatch.setattr(limits, "available_memory", lambda: 80 * 2**20)  # a machine with 80 MB free: 60 MB budget
    with pytest.raises(InputError) as info:
        check_parse_memory("log.csv", "csv", 10 * 2**20, 400_000)
    msg = str(info.value)
    assert "log.csv is 10.0 MB (400,000 lines)" in msg and "3/4 of the 80.0 MB this machine has available" in msg
    check_parse_memory("log.csv", "csv", 1000, 10)  # a small log fits

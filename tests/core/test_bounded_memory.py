"""Hostile and odd input files are refused early, in bounded memory, with one clear line (issue 16, item 4).

Sizes are small and the limits lowered through their environment variables, so every test is fast; the point
each one makes is *when* the refusal comes: ``tracemalloc`` (Python's allocations, where the bytes of a log
live) shows the bytes were never held, and a CLI run started by a lean launcher shows the process's own peak
RSS. ``bench/bounded_memory.py`` runs the full-size probes (a 2 GB line, an 11 MB gzip, /dev/zero).
"""
from __future__ import annotations

import codecs
import gzip
import io
import json
import os
import subprocess
import sys
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from test_hostile_inputs import zip_bytes

from seqrec_core.cli import main
from seqrec_core.data.containers import unwrap
from seqrec_core.data.limits import CHUNK, available_memory, memory_budget, parse_memory, size_text
from seqrec_core.data.loaders import load_events, load_events_bytes
from seqrec_core.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
HEADER = "user_id,item_id,timestamp\n"
T0 = 1_700_000_000


def _log(n_users: int = 12, per_user: int = 5) -> str:
    return HEADER + "".join(f"u{u},i{(u * 3 + k) % 11},{T0 + 3600 * k}\n" for u in range(n_users)
                            for k in range(per_user))


def _rows(n_bytes: int) -> bytes:
    """Distinct-looking CSV rows, about ``n_bytes`` of them (compresses ~5x: no inflate-ratio refusal)."""
    block = "".join(f"u{k % 9973},i{(k * 7919) % 99991},{T0 + 37 * k}\n" for k in range(40_000)).encode()
    return HEADER.encode() + block * max(1, n_bytes // len(block))


def _peak_python_bytes(fn: Callable[[], object]) -> tuple[int, BaseException | None]:
    """Peak bytes Python allocated while ``fn`` ran (the log's bytes, text and table all count), and what it
    raised."""
    tracemalloc.start()
    try:
        fn()
        raised = None
    except Exception as err:  # noqa: BLE001 - returned for the test to judge
        raised = err
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


def _one_line(err: BaseException | None, *fragments: str) -> str:
    assert isinstance(err, InputError), repr(err)
    msg = str(err)
    assert "\n" not in msg and "Traceback" not in msg, msg
    for fragment in fragments:
        assert fragment in msg, (fragment, msg)
    return msg


# ---------------------------------------------------------------------------------- refused while streaming

def test_gzip_over_the_memory_budget_is_refused_before_it_is_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """40 MB of rows in a gzip, a 100 MB budget: refused while streaming, never more than a few chunks in memory."""
    monkeypatch.setenv("SEQREC_MEMORY_BUDGET_MB", "100")
    packed = gzip.compress(_rows(40 * 2**20), compresslevel=1)
    peak, err = _peak_python_bytes(lambda: load_events_bytes("big.csv.gz", packed))
    msg = _one_line(err, "big.csv.gz unpacks to at least", "needs about", "SEQREC_MEMORY_BUDGET_MB=100", "extract")
    assert peak < 8 * CHUNK, (peak, msg)


def test_plain_file_over_the_budget_is_judged_by_its_size_and_first_lines(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(_rows(30 * 2**20))
    monkeypatch.setenv("SEQREC_MEMORY_BUDGET_MB", "64")
    peak, err = _peak_python_bytes(lambda: load_events(path))
    _one_line(err, f"big.csv is {size_text(path.stat().st_size)} (", "lines); reading it as csv needs about",
              "SEQREC_MEMORY_BUDGET_MB")
    assert peak < 4 * CHUNK, peak  # the first 64 KB decided it: the rest was never read
    monkeypatch.setenv("SEQREC_MEMORY_BUDGET_MB", "0")  # 0 = no check: the same file loads
    assert len(load_events(path)) > 500_000


def test_gzip_of_zeros_is_refused_from_its_first_chunk() -> None:
    packed = gzip.compress(bytes(64 * 2**20), compresslevel=9)  # 64 MB of zeros in ~64 KB
    peak, err = _peak_python_bytes(lambda: load_events_bytes("zeros.gz", packed))
    _one_line(err, "zeros.gz line 1: NUL bytes", "binary data")
    assert peak < 4 * CHUNK, peak


def test_line_without_a_break_is_refused_while_streaming(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQREC_MAX_LINE_MB", "1")
    path = tmp_path / "one_line.csv"
    path.write_bytes(b"x" * (24 * 2**20))
    peak, err = _peak_python_bytes(lambda: load_events(path))
    _one_line(err, "one_line.csv: its first line runs over 1.0 MB without a line break", "SEQREC_MAX_LINE_MB")
    assert peak < 6 * CHUNK, peak
    # later in the file, inside a gzip, and in a zip member too
    later = (_log() + "y" * (3 * 2**20)).encode()
    for name, data in (("later.csv", later), ("later.csv.gz", gzip.compress(later)),
                       ("up.zip", zip_bytes({"later.csv": later}))):
        with pytest.raises(InputError, match=r"a line runs over 1\.0 MB without a line break"):
            load_events_bytes(name, data)


def test_long_lines_of_a_json_array_are_not_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """``json.dumps(records)`` writes one line: a JSON array is exempt from the line limit (its memory is not)."""
    monkeypatch.setenv("SEQREC_MAX_LINE_MB", "0.01")
    records = [{"user": f"u{k % 4}", "item": f"i{k % 7}", "ts": T0 + k} for k in range(400)]
    assert len(load_events_bytes("log.json", json.dumps(records).encode())) == 400


def test_a_hundredfold_compression_is_a_bomb(monkeypatch: pytest.MonkeyPatch) -> None:
    block = "".join(f"u{k % 500},i{k % 100},{T0 + 60 * (k % 500)}\n" for k in range(500)).encode()
    packed = gzip.compress(HEADER.encode() + block * 2_000)  # 20 MB of rows that repeat every 500 lines
    peak, err = _peak_python_bytes(lambda: load_events_bytes("rows.csv.gz", packed))
    _one_line(err, "rows.csv.gz unpacks to more than 100 times its", "compression bomb", "SEQREC_MAX_INFLATE_RATIO")
    assert peak < 4 * CHUNK, peak
    monkeypatch.setenv("SEQREC_MAX_INFLATE_RATIO", "0")  # switched off, the container opens (and the rows would load)
    assert len(unwrap("rows.csv.gz", packed).data) == len(HEADER) + len(block) * 2_000


def test_the_bounds_hold_for_a_gzip_inside_a_zip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQREC_MEMORY_BUDGET_MB", "100")
    data = zip_bytes({"log.csv.gz": gzip.compress(_rows(40 * 2**20), compresslevel=1)})
    peak, err = _peak_python_bytes(lambda: load_events_bytes("up.zip", data))
    _one_line(err, "up.zip: log.csv unpacks to at least", "SEQREC_MEMORY_BUDGET_MB")
    assert peak < 8 * CHUNK + len(data), peak


# ----------------------------------------------------------------------------------------- the CLI, measured

LAUNCHER = r"""
import json, os, resource, subprocess, sys
code = subprocess.call(sys.argv[1:], stdout=open(os.environ["OUT"], "wb"), stderr=open(os.environ["ERR"], "wb"))
print(json.dumps({"exit": code, "peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def _cli_validate(path: Path, tmp_path: Path, **env: str) -> tuple[int, str, str, float]:
    """``validate --data path`` started by a lean launcher (Linux starts a child's ru_maxrss at its parent's
    RSS, and pytest's is large): exit code, stdout, stderr and the CLI process's own peak RSS in MB."""
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    cmd = [sys.executable, "-S", "-c", LAUNCHER, sys.executable, "-m", "seqrec_core", "validate", "--data", str(path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
                          env=dict(os.environ) | env | {"OUT": str(out), "ERR": str(err)})
    launched = json.loads(proc.stdout)
    return launched["exit"], out.read_text(), err.read_text(), launched["peak_kb"] / 1024


def test_cli_refuses_a_gzip_bomb_of_rows_in_bounded_rss(tmp_path: Path) -> None:
    """150 MB of rows (parsing them took ~2 GB before) in a 30 MB gzip, with a 200 MB budget: exit 2, one line,
    and the process stays near the interpreter's own size."""
    path = tmp_path / "rows.csv.gz"
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as gz:
        rows = _rows(2**20)
        for _ in range(150):
            gz.write(rows)
    code, out, err, peak_mb = _cli_validate(path, tmp_path, SEQREC_MEMORY_BUDGET_MB="200")
    assert code == 2 and out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "rows.csv.gz unpacks to at least" in err, err
    assert peak_mb < 400, peak_mb


def test_cli_refuses_devices_and_fifos_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "is a named pipe (FIFO), not a regular file"),
                       (Path("/dev/zero"), "is a character device, not a regular file")):
        code, out, err, peak_mb = _cli_validate(path, tmp_path)  # a read of the FIFO would block: timeout fails
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
        assert kind in err and str(path) in err and "does not exist" not in err, err
        assert peak_mb < 400, peak_mb


# ------------------------------------------------------------------------------------ odd files, clear lines

def test_special_files_and_link_loops_are_named(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"'.*pipe' is a named pipe \(FIFO\), not a regular file"):
        load_events(fifo)
    with pytest.raises(InputError, match="is a character device"):
        load_events("/dev/zero")
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(InputError, match=r"'.*a' is a symbolic link loop"):
        load_events(tmp_path / "a")
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    with pytest.raises(InputError, match=r"is a symbolic link to '.*gone\.csv', which does not exist"):
        load_events(tmp_path / "dangling.csv")
    (tmp_path / "log.csv").write_text(_log())
    (tmp_path / "link.csv").symlink_to(tmp_path / "log.csv")
    assert len(load_events(tmp_path / "link.csv")) == 60  # a link to a real log is just that log


def test_zip_holding_a_gzipped_log_loads_it() -> None:
    data = zip_bytes({"export/log.csv.gz": gzip.compress(_log().encode()), "README.md": b"hi"})
    assert len(load_events_bytes("export.zip", data)) == 60
    nested = zip_bytes({"inner.zip": zip_bytes({"log.csv": _log().encode()})})
    with pytest.raises(InputError, match=r"export\.zip holds 0 data files \(none\); it holds archives \(inner\.zip\)"):
        load_events_bytes("export.zip", nested)
    twice = gzip.compress(gzip.compress(_log().encode()))
    with pytest.raises(InputError, match=r"log\.csv\.gz is compressed twice"):
        load_events_bytes("log.csv.gz", twice)
    zipped_zip = zip_bytes({"log.csv": zip_bytes({"log.csv": _log().encode()})})
    with pytest.raises(InputError, match=r"up\.zip: log\.csv is itself an archive"):
        load_events_bytes("up.zip", zipped_zip)


@pytest.mark.parametrize("encoding", ["utf-32", "utf-16", "utf-32-be", "utf-16-be"])
def test_utf16_and_utf32_with_a_byte_order_mark_load(encoding: str) -> None:
    bom = {"utf-32-be": codecs.BOM_UTF32_BE, "utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    data = bom + _log().encode(encoding)
    events = load_events_bytes("log.csv", data)
    assert len(events) == 60 and events["user_id"].iloc[0] == "u0"


@pytest.mark.parametrize("encoding", ["utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be"])
def test_utf16_and_utf32_without_a_mark_are_named(encoding: str) -> None:
    with pytest.raises(InputError) as info:
        load_events_bytes("log.csv", _log().encode(encoding))
    _one_line(info.value, f"log.csv looks like {encoding.upper()} text without a byte-order mark", "binary",
              "save it as UTF-8")


def test_old_mac_line_breaks_load_and_keep_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes(_log().replace("\n", "\r").encode())
    assert len(load_events(path)) == 60
    bad = HEADER + "u1,i1,1700000000\nu1,i2,1700000100,extra\nu2,i3,1700000200\n"
    with pytest.raises(InputError, match=r"mac\.csv line 3: 4 fields where the first row has 3"):
        load_events_bytes("mac.csv", bad.replace("\n", "\r").encode())
    (tmp_path / "seq.txt").write_bytes(b"1 10 11 12\r2 20 21 10\r3 30 11 21 31\r")
    assert load_events(tmp_path / "seq.txt")["user_id"].nunique() == 3  # sequence text with CR breaks too


# --------------------------------------------------------------------------------- prose is not sequence text

PROSE = b"hello world\nthis is not a sequence file\n"


def test_two_lines_of_english_are_not_a_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "note.txt"
    path.write_bytes(PROSE)
    with pytest.raises(InputError) as info:
        load_events(path)
    _one_line(info.value, "note.txt reads like prose, not a behaviour log", "common English words",
              "--format seqtxt")
    train = ["train", "--model", "sasrec", "--out", str(tmp_path / "run"), "--epochs", "1", "--device", "cpu"]
    for command in (["validate"], train):
        assert main([*command, "--data", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "reads like prose" in err, err
    assert not (tmp_path / "run").exists()
    assert len(load_events(path, "seqtxt")) == 6  # asked for explicitly, well-formed text is read as it is


@pytest.mark.parametrize("text", [
    "The quick brown fox jumps over the lazy dog.\nIt was the best of times and the worst of times.\n",
    "Call me Ishmael. Some years ago never mind how long\nprecisely having little or no money in my purse\n"
    "and nothing particular to interest me on shore\nI thought I would sail about a little and see the\n",
    "Alles hat ein Ende.\nNur die Wurst hat zwei.\nDer Apfel fällt nicht weit vom Stamm.\n",  # no English words
    "hello world\nsecond line here\n",  # no common word, no sentence: but no word appears twice either
])
def test_prose_of_any_length_is_refused(text: str) -> None:
    with pytest.raises(InputError) as info:
        load_events_bytes("notes.txt", text.encode())
    _one_line(info.value, "notes.txt reads like prose, not a behaviour log", "--format seqtxt")


def test_prose_with_commas_is_refused_as_a_ragged_table() -> None:
    """Commas make it a table to the format guess; its rows do not line up, which is refused as well."""
    with pytest.raises(InputError, match=r"notes\.txt line 2: 2 fields where the first row has 1"):
        load_events_bytes("notes.txt", b"It was the best of times\nit was the worst of times, it was\n")


def test_text_id_logs_still_load() -> None:
    """What tells a log apart: ids recur across users, and none of them is a common word."""
    logs = [b"alice apple banana cherry\nbob banana cherry\ncarol apple cherry banana\n",
            b"A1X B00ABC 0123456789 B00XYZ\nA2Y 0123456789 B00QQQ\nA3Z B00ABC B00QQQ B00XYZ 0987654321\n",
            "".join(f"user{u} " + " ".join(f"sku{(u * 7 + j) % 50:03d}" for j in range(5 + u % 3)) + "\n"
                    for u in range(30)).encode()]
    for data in logs:
        assert len(load_events_bytes("seqs.txt", data)) >= 7


def test_real_sequence_text_is_not_prose() -> None:
    beauty = ROOT.parent / "shared" / "data" / "amazon-beauty-s3" / "Beauty.txt"
    if not beauty.exists():
        pytest.skip("shared Beauty.txt not available")
    lines = beauty.read_bytes().splitlines()[:2000]
    as_text = b"\n".join(b" ".join(b"B" + t.zfill(9) for t in ln.split()) for ln in lines)  # ASIN-like ids
    assert load_events_bytes("beauty_text.txt", as_text)["user_id"].nunique() == 2000


# ------------------------------------------------------------------------------------------ the memory model

def test_memory_budget_comes_from_the_machine_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEQREC_MEMORY_BUDGET_MB", raising=False)
    avail = available_memory()
    assert avail is not None and avail > 2**26  # this is Linux: /proc/meminfo is there
    budget, source = memory_budget()
    assert 0 < budget <= avail and "available" in source
    monkeypatch.setenv("SEQREC_MEMORY_BUDGET_MB", "512")
    assert memory_budget() == (512 * 2**20, "the memory budget SEQREC_MEMORY_BUDGET_MB=512")
    monkeypatch.setenv("SEQREC_MEMORY_BUDGET_MB", "lots")
    with pytest.raises(InputError, match="SEQREC_MEMORY_BUDGET_MB='lots' is not a number"):
        memory_budget()


def test_estimates_grow_with_size_and_order_the_formats() -> None:
    n, lines = 100 * 2**20, 4_000_000
    for fmt in ("csv", "tsv", "movielens", "jsonl", "json", "seqtxt", "parquet"):
        assert parse_memory(fmt, n, lines, lines) < parse_memory(fmt, 2 * n, 2 * lines, 2 * lines)
    assert parse_memory("jsonl", n, lines) > parse_memory("csv", n, lines)  # one dict per line costs most


def test_an_accepted_log_loads_the_same_through_every_container() -> None:
    text = _log().encode()
    plain = load_events_bytes("log.csv", text)
    for name, data in (("log.csv.gz", gzip.compress(text)), ("up.zip", zip_bytes({"log.csv": text})),
                       ("up.zip", zip_bytes({"log.csv.gz": gzip.compress(text)})),
                       ("log.zip.gz", gzip.compress(zip_bytes({"log.csv": text})))):
        assert load_events_bytes(name, data).equals(plain), name
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("log.csv", text)
    assert load_events_bytes("stored.zip", buf.getvalue()).equals(plain)
